"""The options of every command that talks to a server, defined once: ``--as NAME``
(``HOTLINE_AS``) and ``--server URL`` (``HOTLINE_SERVER``). Each command takes the server the same
way: the same variable, the same failover order, the same check of the URL's form (a malformed
one is a usage error, exit 2, before anything is loaded or connected)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any

import click

from hotline.display import shown

WEBSOCKET = ("ws", "wss")
ANY = (*WEBSOCKET, "http", "https")
EXAMPLE = "ws://127.0.0.1:8470/v1/ws"

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def url_problem(url: str, schemes: tuple[str, ...] = ANY) -> str | None:
    """What is wrong with the form of the server URL ``url`` (None: nothing). Whether the
    profile may use it (a pinned CA takes only TLS URLs) is the profile's check."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises on a port that is not a number in range)
    except ValueError as exc:
        return f"not a URL ({exc})"
    scheme = parts.scheme.lower()
    if scheme not in schemes:
        if scheme in ANY:  # http(s) to a command that speaks WebSocket
            return f"this command speaks WebSocket: give the ws:// or wss:// URL, e.g. {EXAMPLE}"
        return f"not a {', '.join(s + '://' for s in schemes)} URL (e.g. {EXAMPLE})"
    if not parts.hostname:
        return f"names no host (e.g. {EXAMPLE})"
    return None


def _checked(schemes: tuple[str, ...]) -> Callable[[click.Context, click.Parameter, Any], Any]:
    def check(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        for url in (value,) if isinstance(value, str) else value or ():
            problem = url_problem(url, schemes)
            if problem is not None:
                raise click.BadParameter(f"{shown(url, limit=200)!r}: {problem}")
        return value
    return check


def server_option(*, websocket: bool = True) -> Decorator:
    """``--server URL`` (repeatable, failover order; ``HOTLINE_SERVER``, several separated by
    spaces) into the parameter ``servers`` (a tuple, empty: the profile's list). ``websocket``:
    the command speaks WebSocket (ws://, wss://); else it speaks HTTP and takes those too."""
    schemes = WEBSOCKET if websocket else ANY
    forms = "ws:// or wss://" if websocket else "ws://, wss://, http:// or https://"
    return click.option(
        "--server", "servers", multiple=True, envvar="HOTLINE_SERVER", metavar="URL",
        callback=_checked(schemes),
        help=f"Server URL ({forms}), overriding the profile's list; repeat for failover "
             "(env HOTLINE_SERVER). A profile that pins a CA (tls_ca) takes only TLS URLs.")


def as_option(*, required: bool = True,
              help: str = "Member profile to act as (HOME/profiles/NAME.toml).") -> Decorator:
    """``--as NAME`` (``HOTLINE_AS``) into the parameter ``name``."""
    return click.option("--as", "name", required=required, envvar="HOTLINE_AS", help=help)


def member_options(*, websocket: bool = True, required: bool = True,
                   as_help: str = "Member profile to act as (HOME/profiles/NAME.toml).") -> Decorator:
    """``--as NAME`` and ``--server URL``, for a command acting as a member."""
    def apply(command: Callable[..., Any]) -> Callable[..., Any]:
        return as_option(required=required, help=as_help)(server_option(websocket=websocket)(command))
    return apply
