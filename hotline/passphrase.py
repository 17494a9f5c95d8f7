"""Where a command gets the passphrase of a private key: ``HOTLINE_PASSPHRASE`` if set, else a
hidden prompt at a terminal, else a refusal (``ceremony.no_passphrase``) that says what to do.
A new key may go unencrypted only when the person says so (``--no-passphrase``)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import click

from hotline.ceremony import CeremonyError, is_encrypted, load_member_private, read_private
from hotline.errorcodes import Code
from hotline.hybrid import MemberSigningKey

VARIABLE = "HOTLINE_PASSPHRASE"
Prompt = Callable[[str, bool], str]  # (text, confirm) -> what was typed


def _prompt(text: str, confirm: bool) -> str:
    value: str = click.prompt(text, hide_input=True, confirmation_prompt=confirm, err=True)
    return value


def _interactive() -> bool:
    return sys.stdin.isatty()


def env_passphrase(*variables: str, env: Mapping[str, str] | None = None) -> bytes | None:
    """The passphrase in the first of the environment ``variables`` set and not empty."""
    values = os.environ if env is None else env
    return next((values[v].encode() for v in variables if values.get(v)), None)


def new_passphrase(what: str, *, no_passphrase: bool, env: Mapping[str, str] | None = None,
                   prompt: Prompt = _prompt, interactive: Callable[[], bool] = _interactive,
                   variables: tuple[str, ...] = (VARIABLE,)) -> bytes | None:
    """The passphrase to encrypt a new private key with (None: unencrypted, only if
    ``no_passphrase``), from the first of ``variables`` set, else a prompt that asks twice (an
    empty answer is refused)."""
    if no_passphrase:
        return None
    value = env_passphrase(*variables, env=env)
    if value:
        return value
    if not interactive():
        raise CeremonyError(f"{what} needs a passphrase: set {' or '.join(variables)}, run this "
                            "at a terminal to be asked, or pass --no-passphrase to keep it unencrypted (only "
                            "on a machine no one else uses)", code=Code.CEREMONY_NO_PASSPHRASE)
    typed = prompt(f"Passphrase for {what}", True)
    if not typed:
        raise CeremonyError("an empty passphrase: pass --no-passphrase if you mean no passphrase",
                            code=Code.CEREMONY_NO_PASSPHRASE)
    return typed.encode()


def existing_passphrase(path: Path, *, env: Mapping[str, str] | None = None,
                        prompt: Prompt = _prompt, interactive: Callable[[], bool] = _interactive,
                        variables: tuple[str, ...] = (VARIABLE,)) -> bytes | None:
    """The passphrase to open the key in ``path`` (the first of ``variables`` set, else a
    prompt): None if it is not encrypted."""
    if not is_encrypted(read_private(path)):
        return None
    value = env_passphrase(*variables, env=env)
    if value:
        return value
    if not interactive():
        raise CeremonyError(f"{path} is encrypted: set {' or '.join(variables)} or run this at a terminal to "
                            "be asked for its passphrase", code=Code.CEREMONY_NO_PASSPHRASE)
    return prompt(f"Passphrase for {path}", False).encode()


def open_key(path: Path) -> tuple[MemberSigningKey, bytes | None]:
    """The key in ``path`` (an authority's: Ed25519 or hybrid) and the passphrase that opened it
    (a wrong one: crypto.bad_key_file)."""
    passphrase = existing_passphrase(path)
    return load_member_private(path, passphrase), passphrase


def open_member_key(path: Path) -> MemberSigningKey:
    """A member's key in ``path``, Ed25519 or hybrid (errors as ``open_key``)."""
    return load_member_private(path, existing_passphrase(path))
