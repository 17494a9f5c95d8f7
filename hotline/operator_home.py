"""The operator's server home (docs/deployment.md): the log key, the TLS material, the config
and the protocol templates; never a party's private key.

- ``new_server_home``: ``hotline server new``.
- ``read_pin_file`` + ``pin_authority``: ``hotline server pin`` (a party's authority public key
  into [roster.authorities]; the pin grants nothing without the parties' signatures).
- ``home_descriptor``: ``hotline server descriptor`` (what members join with).
Explicit arguments only: no prompts, no environment (the CLI asks and reads those).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.mldsa import MLDSA65PrivateKey

from hotline import tlsfiles
from hotline.canonical import parse
from hotline.cli_options import WEBSOCKET, url_problem
from hotline.config import (
    ServerSection,
    check_listen,
    load_config,
    parse_authority_key,
    with_authority_pin,
    write_deployment_config,
)
from hotline.descriptor import make_descriptor
from hotline.errorcodes import Code
from hotline.errors import ConfigError, HotlineError
from hotline.hybrid import MemberKey
from hotline.keyfiles import load_mldsa_log_key, save_private_key
from hotline.keys import SigningKey, safety_number, same_safety_number
from hotline.norms.files import install_templates
from hotline.privatefiles import private_folder
from hotline.publicfiles import BadPublicFile, read_authority_key
from hotline.tlog.mldsa_note import MLDSANoteSigner, MLDSANoteVerifier
from hotline.tlog.note import NoteVerifier
from hotline.tlsca import names_of, parse_name, parse_names, url_host

LOG_KEY = "keys/log.pem"
MLDSA_LOG_KEY = "keys/log-mldsa.pem"
MLDSA_LOG_VKEY = "keys/log-mldsa.vkey"  # its public verifier key (C2SP note form)
URLS_FILE = "servers.json"  # the public URLs `server new --url` named, for the descriptor
MAX_URLS_FILE = 16 * 1024


class PinRefused(ConfigError):
    """An authority key that is not pinned: nothing was written."""

    code = Code.SERVER_PIN_REFUSED


@dataclass(frozen=True)
class ServerHome:
    home: Path
    origin: str
    servers: list[str]  # what the descriptor names by default
    log_key: str  # the note verifier key text members pin
    tls_ca: x509.Certificate | None
    tls_names: list[str]


def default_servers(*, host: str, port: int, tls_name: str | None) -> list[str]:
    """Where members reach a server listening on ``host:port`` (with TLS, by its first name)."""
    if tls_name is not None:
        return [f"wss://{tls_name}:{port}/v1/ws"]
    shown = f"[{host}]" if ":" in host else host
    return [f"ws://{shown}:{port}/v1/ws"]


def check_urls(urls: list[str], *, tls: bool) -> None:
    for url in urls:
        problem = url_problem(url, WEBSOCKET)
        if problem is None and tls and not url.lower().startswith("wss://"):
            problem = "a deployment with TLS is reached over wss:// only"
        if problem is not None:
            raise ConfigError(f"--url {url!r}: {problem}")


def new_server_home(home: Path, *, origin: str, host: str, port: int,
                    tls_names: list[str] | None, urls: list[str], now: datetime,
                    log_passphrase: bytes | None, tls_passphrase: bytes | None,
                    post_quantum: bool = False) -> ServerHome:
    """Create an operator's home: ``keys/log.pem``, with ``tls_names`` the deployment CA and
    server certificate (``tls/``), ``hotline.toml`` pinning no authority yet, ``protocols/``
    and, with ``urls``, ``servers.json``; with ``post_quantum`` also an ML-DSA-65 log key
    (``keys/log-mldsa.pem`` and its verifier key ``keys/log-mldsa.vkey``) that signs every
    checkpoint beside the Ed25519 key.

    Raises:
        ConfigError: ``home`` already holds a deployment or keys, a bad origin, listen address,
            TLS name or URL; each before anything is written.
    """
    if (home / "hotline.toml").exists() or (home / "keys").exists():
        raise ConfigError(f"{home} already holds a deployment or keys: give a new folder",
                          file=str(home))
    try:
        NoteVerifier(name=origin, public_key=bytes(32))
    except HotlineError as exc:
        raise ConfigError(f"--origin: {exc.message}") from None
    names = parse_names(tls_names) if tls_names is not None else None
    tls = (tlsfiles.SERVER_CERT, tlsfiles.SERVER_KEY) if names is not None else None
    check_listen(ServerSection(host=host, port=port, origin=origin,
                               tls_cert=tls[0] if tls else None, tls_key=tls[1] if tls else None))
    check_urls(urls, tls=names is not None)
    private_folder(home)
    os.chmod(home, 0o700)
    log_key = SigningKey.generate()
    save_private_key(home / LOG_KEY, log_key, log_passphrase)
    if post_quantum:
        pq_key = MLDSA65PrivateKey.generate()
        save_private_key(home / MLDSA_LOG_KEY, pq_key, log_passphrase)
        (home / MLDSA_LOG_VKEY).write_text(
            MLDSANoteSigner(name=origin, key=pq_key).verifier.to_text() + "\n", encoding="utf-8")
    ca = None
    if names is not None:
        ca = tlsfiles.create(home, origin=origin, names=names, now=now,
                             passphrase=tls_passphrase).cert
    write_deployment_config(home / "hotline.toml", port=port, origin=origin, authorities={},
                            host=host, tls=tls, mldsa_key=MLDSA_LOG_KEY if post_quantum else None)
    install_templates(home / "protocols")
    if urls:
        (home / URLS_FILE).write_text(json.dumps(urls, indent=2) + "\n", encoding="utf-8")
    servers = urls or default_servers(host=host, port=port,
                                      tls_name=url_host(names[0]) if names else None)
    return ServerHome(home=home, origin=origin, servers=servers,
                      log_key=NoteVerifier(name=origin, public_key=log_key.public_key.raw).to_text(),
                      tls_ca=ca, tls_names=[str(n) for n in names or ()])


def read_pin_file(path: Path, *, party: str) -> MemberKey:
    """The authority public key in ``path`` for ``party``.

    Raises:
        PinRefused: a private key (it must never reach the server home), or another party's key.
        BadPublicFile: not an authority's public key file.
    """
    try:
        head = path.read_bytes()[:MAX_URLS_FILE]
    except OSError as exc:
        raise BadPublicFile(f"cannot read it: {exc.strerror}", file=str(path)) from None
    if b"PRIVATE KEY" in head:
        raise PinRefused("this is a PRIVATE key: it must never leave its owner's machine, and the "
                         "server home never holds one. Pin the public file (`hotline authority "
                         f"new` writes keys/authority-{party}.pub.json)", file=str(path))
    record = read_authority_key(path)
    if record.party != party:
        raise PinRefused(f"this is the authority key of {record.party!r}, not of {party!r}",
                         file=str(path))
    return record.public_key


def pin_authority(home: Path, *, party: str, key: MemberKey, expect: str | None = None,
                  replace: bool = False) -> bool:
    """Pin ``key`` as ``party``'s authority in ``HOME/hotline.toml`` (the rest of the file
    kept). Returns False when it was pinned already (nothing written).

    Raises:
        PinRefused: ``expect`` is not its safety number, ``party`` holds another key and
            ``replace`` is false, or another party holds this key; nothing is written.
        ConfigError: no deployment, or a config this cannot edit.
    """
    path = home / "hotline.toml"
    if not path.is_file():
        raise ConfigError(f"no server home in {home} (`hotline server new` makes one)",
                          file=str(path))
    number = safety_number(key.key_id)
    if expect is not None and not same_safety_number(expect, number):
        raise PinRefused(f"the key's safety number is {number}, not the one expected: do not pin "
                         "it; ask the party for its key file again, over another channel")
    text = path.read_text(encoding="utf-8")
    pinned = load_config(path, home=home, env={}).roster.authorities
    for other, held in pinned.items():
        if other != party and parse_authority_key(held) == key:
            raise PinRefused(f"this key is already pinned as {other!r}'s authority")
    if party in pinned:
        if parse_authority_key(pinned[party]) == key:
            return False
        if not replace:
            raise PinRefused(f"{party!r} is pinned to another key (safety number "
                             f"{safety_number(parse_authority_key(pinned[party]).key_id)}); "
                             "give --replace to pin this one instead (a rotation is normally a "
                             "handover the roster follows: see `hotline authority rotate`)")
    result = with_authority_pin(text, party=party, key=key, file=str(path), home=home)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(result, encoding="utf-8")
    os.replace(tmp, path)
    return True


def read_urls(home: Path) -> list[str]:
    """The URLs ``server new --url`` recorded (none: [])."""
    path = home / URLS_FILE
    if not path.exists():
        return []
    value: Any = parse(path.read_bytes(), max_bytes=MAX_URLS_FILE)
    if not isinstance(value, list) or not all(isinstance(u, str) for u in value):
        raise ConfigError("must be a JSON list of ws:// or wss:// URLs", file=str(path))
    return value


def home_descriptor(home: Path, *, log_key: SigningKey, urls: list[str],
                    now: datetime) -> dict[str, Any]:
    """The signed descriptor of the server home: its origin, ``urls`` (else those
    ``server new --url`` recorded, else the listen address), its log key, CA and pins.

    Raises:
        ConfigError: no deployment, no pinned authority, or a log key that is not this home's.
        DescriptorError: a value a member would refuse.
    """
    path = home / "hotline.toml"
    if not path.is_file():
        raise ConfigError(f"no server home in {home} (`hotline server new` makes one)",
                          file=str(path))
    config = load_config(path, home=home, env={})
    pins = {p: parse_authority_key(k) for p, k in config.roster.authorities.items()}
    if not pins:
        raise ConfigError("no authority is pinned yet: pin each party's first "
                          "(`hotline server pin --party P --authority FILE`)", file=str(path))
    tls = config.tls_cert is not None
    servers = urls or read_urls(home)
    if not servers:
        name = None
        if tls and config.tls_cert is not None:
            cert = x509.load_pem_x509_certificate(config.tls_cert.read_bytes())
            name = url_host(parse_name(names_of(cert)[0]))
        servers = default_servers(host=config.server.host, port=config.server.port, tls_name=name)
    check_urls(servers, tls=tls)
    ca = (home / tlsfiles.CA_CERT).read_text(encoding="ascii") \
        if tls and (home / tlsfiles.CA_CERT).is_file() else None
    pq = config.log_mldsa_key_path  # its server signs checkpoints with it: members pin it too
    mldsa = None if pq is None else MLDSANoteVerifier(
        config.server.origin, load_mldsa_log_key(pq).public_key().public_bytes_raw())
    return make_descriptor(origin=config.server.origin, servers=servers, log_key=log_key,
                           authorities=pins, issued=now, tls_ca=ca, mldsa_log_key=mldsa)
