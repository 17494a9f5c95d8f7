"""A member's profile in the deployment folder: ``profiles/NAME.toml``.

It names the member, its key file, the server endpoints (failover order) and the authority keys
the member pinned out of band: the client trusts those, never what the server says.
"""

from __future__ import annotations

import os
import re
import ssl
import tomllib
from dataclasses import dataclass
from pathlib import Path

from hotline.errors import ConfigError, CryptoError, LogError
from hotline.keyfiles import load_private_key
from hotline.keys import PublicKey, SigningKey
from hotline.tlog.note import NoteVerifier

_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True)
class Profile:
    name: str
    member: str
    party: str
    role: str
    key_file: Path
    servers: tuple[str, ...]
    origin: str
    authorities: dict[str, PublicKey]
    path: Path
    tls_ca: Path | None = None  # CA bundle for wss:// servers; None: the system's
    log_key: NoteVerifier | None = None  # the transparency log's pinned checkpoint key
    protocols_dir: Path | None = None  # the protocol templates this member holds (forms, checks)
    lang: str = "en"  # the officer's language: pre-agreed messages are shown in it

    @classmethod
    def load(cls, home: Path, name: str) -> Profile:
        path = home / "profiles" / f"{name}.toml"
        if not path.is_file():
            known = sorted(p.stem for p in (home / "profiles").glob("*.toml"))
            hint = f" (known: {', '.join(known)})" if known else " (run `hotline init` first)"
            raise ConfigError(f"no profile {name!r} in {home}{hint}", file=str(path))
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(exc), file=str(path)) from exc
        try:
            servers = data["servers"]
            if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
                raise ConfigError("must be a non-empty list of ws:// or wss:// URLs",
                                  path=("servers",), file=str(path))
            authorities = {party: PublicKey.from_text(text)
                           for party, text in dict(data["authorities"]).items()}
            key_file = Path(data["key"])
            tls_ca = Path(data["tls_ca"]) if "tls_ca" in data else None
            log_key = NoteVerifier.from_text(data["log_key"]) if "log_key" in data else None
            if tls_ca is not None and not tls_ca.is_absolute():
                tls_ca = home / tls_ca
            protocols = Path(str(data.get("protocols", "protocols")))
            protocols = protocols if protocols.is_absolute() else home / protocols
            lang = data.get("lang", "en")
            if not isinstance(lang, str) or not _LANG.fullmatch(lang):
                raise ConfigError("must be a BCP 47 language tag such as en, ru or zh-Hans",
                                  path=("lang",), file=str(path))
            return cls(name=name, member=str(data["member"]), party=str(data["party"]),
                       role=str(data["role"]), key_file=key_file if key_file.is_absolute()
                       else home / key_file, servers=tuple(servers), origin=str(data["origin"]),
                       authorities=authorities, path=path, tls_ca=tls_ca, log_key=log_key,
                       protocols_dir=protocols, lang=lang)
        except KeyError as exc:
            raise ConfigError("missing setting", path=(str(exc.args[0]),), file=str(path)) from exc
        except CryptoError as exc:
            raise ConfigError(exc.message, path=("authorities",), file=str(path)) from exc
        except LogError as exc:
            raise ConfigError(exc.message, path=("log_key",), file=str(path)) from exc

    def ssl_context(self) -> ssl.SSLContext:
        """Context for wss:// endpoints: the system's CAs, or only ``tls_ca`` when set."""
        try:
            return ssl.create_default_context(cafile=self.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load tls_ca: {exc}", path=("tls_ca",), file=str(self.path)) from exc

    def signing_key(self) -> SigningKey:
        """Load the member's private key (passphrase from ``HOTLINE_PASSPHRASE`` if set)."""
        passphrase = os.environ.get("HOTLINE_PASSPHRASE")
        return load_private_key(self.key_file, passphrase.encode() if passphrase else None)
