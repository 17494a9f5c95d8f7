"""The ``hotline`` command (docs/ARCHITECTURE.md "Command line"). Exit codes: 0 ok, 1 refused (typed error
printed),
2 usage error."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import click

from hotline.display import shown
from hotline.errors import HotlineError, UsageProblem

T = TypeVar("T")
CONTEXT = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "HOTLINE",
           "max_content_width": 100}


def home_of(ctx: click.Context) -> Path:
    return Path(ctx.obj["home"])


def run_coroutine(coro: Awaitable[T]) -> T:
    """Run a command's coroutine (a typed error escapes to ``Commands``)."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except KeyboardInterrupt:
        sys.exit(130)


class Failed(click.ClickException):
    """A typed error that escaped a command, as the terminal shows it: ``error: CODE: message``
    (sanitized: it may quote the host); exit 1, a refusal."""

    exit_code = 1

    def __init__(self, error: HotlineError) -> None:
        super().__init__(error.message)
        self.error = error

    def show(self, file: Any = None) -> None:
        ref = f" (ref {self.error.ref})" if self.error.ref else ""
        click.echo(self.error.diagnostics() + shown(ref), err=True)


class FailedUsage(Failed):
    """A ``UsageProblem`` (an unknown profile, a malformed URL): exit 2, like click's usage errors."""

    exit_code = 2


# The commands and groups kept in modules of their own, by name: each is imported when it is run (or
# listed by --help), so a command pays only for the imports it uses (a process started by a
# ceremony or a script starts in a fraction of the time it took with all of them).
GROUPS = {"agreement": "hotline.agreement_cli:agreement", "templates": "hotline.agreement_cli:templates",
          "audit": "hotline.audit.commands:audit", "authority": "hotline.authority_cli:authority",
          "backup": "hotline.backup.commands:backup", "restore": "hotline.backup.commands:restore_command",
          "console": "hotline.console.command:console", "client": "hotline.console.command:client_alias",
          "keys": "hotline.keys_cli:keys", "roster": "hotline.roster_cli:roster",
          "server": "hotline.server_cli:server", "join": "hotline.server_cli:join",
          "tls": "hotline.tls_cli:tls", "store": "hotline.store_cli:store",
          **{name: f"hotline.member_cli:{name}"
             for name in ("send", "listen", "ack", "fetch", "witness", "agent", "doctor", "disclose")}}


class Commands(click.Group):
    """The root group: every subcommand, nested groups included, runs inside its ``invoke``,
    so a ``HotlineError`` escaping any of them ends as ``Failed``, never as a traceback. The
    groups of ``GROUPS`` are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *GROUPS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in GROUPS and cmd_name not in self.commands:
            module, _, attr = GROUPS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            assert isinstance(command, click.Command) and command.name == cmd_name
            self.add_command(command)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except HotlineError as exc:
            raise (FailedUsage if isinstance(exc, UsageProblem) else Failed)(exc) from None


@click.group(cls=Commands, context_settings=CONTEXT)
@click.option("--home", type=click.Path(file_okay=False, path_type=Path), default="hotline-data",
              show_default=True, envvar="HOTLINE_HOME",
              help="Deployment folder: hotline.toml, keys/, roster/, profiles/, the database.")
@click.version_option(package_name="hotline")
@click.pass_context
def main(ctx: click.Context, home: Path) -> None:
    """hotline: signed, logged, agreement-enforced channels between parties to a crisis.

    Start with `hotline init`, then `hotline serve`; liaisons use `send`, `listen` and `ack`.
    """
    ctx.ensure_object(dict)
    ctx.obj["home"] = home


@main.command()
@click.option("--parties", default="north,south,mediator", show_default=True,
              help="Comma-separated party ids; all join the channel north-south.")
@click.option("--heartbeat-interval", type=click.IntRange(1, 86400), default=10, show_default=True,
              help="Seconds between agent heartbeats, written into the agreement.")
@click.option("--port", type=click.IntRange(0, 65535), default=8470, show_default=True,
              help="Port the server will listen on (written to hotline.toml and the profiles).")
@click.option("--origin", default="hotline.local", show_default=True,
              help="Name of this deployment; clients refuse a server presenting another one.")
@click.option("--force", is_flag=True, help="Replace an existing deployment in --home (deletes it).")
@click.option("--tls", "use_tls", is_flag=True,
              help="Serve wss:// only: make a deployment CA and a server certificate in HOME/tls; "
                   "every profile pins the CA (tls_ca) and refuses plain ws://.")
@click.option("--tls-name", "tls_names", multiple=True, metavar="NAME",
              help="With --tls: a DNS name or IP address clients reach the server by; repeat for "
                   "each (the first is the one profiles use). The CA may vouch for these only "
                   "(a DNS name with its subdomains). Default: 127.0.0.1, localhost, ::1.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Listen address written to hotline.toml; off loopback (0.0.0.0, ::, a real "
                   "address or name) only with --tls.")
@click.option("--hybrid", is_flag=True,
              help="Post-quantum signatures: authorities, liaisons and the auditor get Ed25519 + "
                   "ML-DSA-65 keys, and every roster document, agreement and message they sign "
                   "needs both (agents keep Ed25519: they cosign checkpoints).")
@click.pass_context
def init(ctx: click.Context, parties: str, heartbeat_interval: int, port: int, origin: str,
         force: bool, use_tls: bool, tls_names: tuple[str, ...], host: str, hybrid: bool) -> None:
    """Create a complete demo deployment: keys, enrollments, an agreement, profiles, config.

    Private keys are encrypted with HOTLINE_PASSPHRASE when it is set (the log key with
    HOTLINE_LOG_KEY_PASSPHRASE if that is set); the server and every member command then need
    the same variable. With --tls the deployment serves wss:// (`hotline tls --help`).
    """
    from hotline.deployment import CHANNEL, init_deployment
    from hotline.passphrase import env_passphrase
    from hotline.tlsca import DEFAULT_NAMES
    if tls_names and not use_tls:
        raise click.UsageError("--tls-name needs --tls")
    home = home_of(ctx)
    deployment = init_deployment(home, parties=[p.strip() for p in parties.split(",") if p.strip()],
                                 heartbeat_interval=heartbeat_interval, port=port,
                                 origin=origin, force=force,
                                 passphrase=env_passphrase("HOTLINE_PASSPHRASE"),
                                 log_passphrase=env_passphrase("HOTLINE_LOG_KEY_PASSPHRASE"),
                                 host=host, hybrid=hybrid,
                                 tls_names=list(tls_names or DEFAULT_NAMES) if use_tls else None)
    click.echo(f"Deployment created in {home}/ (channel {CHANNEL}, server port {port}).")
    if deployment.tls_ca is not None:
        from hotline.tls_cli import fingerprint
        click.echo(shown(f"TLS: deployment CA {home}/tls/ca.pem, SHA-256 "
                         f"{fingerprint(deployment.tls_ca)}, pinned by every profile; server "
                         f"certificate for {', '.join(deployment.tls_names)}; profiles connect "
                         f"to {deployment.servers[0]}"))
    click.echo("Members:")
    for name, (party, role) in deployment.members.items():
        click.echo(f"  {name:<16} {role.value:<8} of {party}")
    h = f" --home {home}" if str(home) != "hotline-data" else ""
    click.echo("\nNext:")
    click.echo(f"  hotline{h} serve")
    click.echo(f"  hotline{h} listen --as bob")
    click.echo(f"  hotline{h} send --as alice --channel {CHANNEL} --template message "
               "--field text='Test message'")
    click.echo(f"  hotline{h} agent --as {next(iter(deployment.members.values()))[0]}-agent"
               "   # one per party: heartbeats, echoes, witness")
    click.echo(f"  hotline{h} templates   # what the agreement allows")


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Config file (default: HOME/hotline.toml, which `hotline init` writes; a "
                   "setting it leaves out takes the built-in default).")
@click.option("--host", help="Listen address (overrides the config).")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen port (overrides the config).")
@click.option("--insecure", is_flag=True,
              help="Listen off loopback without TLS anyway (server.insecure): only where the "
                   "network is protected otherwise. Without it, a non-loopback host needs TLS.")
@click.pass_context
def serve(ctx: click.Context, config_path: Path | None, host: str | None, port: int | None,
          insecure: bool) -> None:
    """Run the hotline server on the deployment's config until interrupted.

    Off loopback (anything but 127.0.0.0/8, ::1 and localhost) it serves only with TLS
    (`hotline init --tls`, or server.tls_cert and server.tls_key), unless --insecure.
    """
    import dataclasses
    import faulthandler

    import structlog

    from hotline.config import load_config
    from hotline.deployment import check_config_file
    from hotline.operator_log import configure
    from hotline.server.app import serve_forever
    home = home_of(ctx)
    check_config_file(home, config_path or home / "hotline.toml")
    config = load_config(config_path or home / "hotline.toml", home=home)
    configured = config.server.port
    if host is not None or port is not None or insecure:
        server = dataclasses.replace(config.server, host=host or config.server.host,
                                     port=config.server.port if port is None else port,
                                     insecure=insecure or config.server.insecure)
        config = dataclasses.replace(config, server=server)
    configure(level=config.log.level, fmt=config.log.format)
    if port and port != configured:  # the profiles `init` wrote name the configured port
        structlog.get_logger("hotline.server").warning(
            "server.port_overridden", port=port, configured=configured,
            fix=f"members reach this server with --server ws://HOST:{port}/v1/ws (or "
                "HOTLINE_SERVER); or set server.port in hotline.toml and the profiles' servers")
    faulthandler.enable()  # a fatal error (a crash in a C extension) leaves its stack in the log
    run_coroutine(serve_forever(config))


if __name__ == "__main__":
    main()
