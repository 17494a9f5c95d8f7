"""A member's profile in the deployment folder: ``profiles/NAME.toml``.

It names the member, its key file, the server endpoints (failover order) and the authority keys
the member pinned out of band: the client trusts those, never what the server says.

A profile with ``tls_ca`` pins the deployment's CA: every connection it makes (WebSocket or the
log API over HTTPS) trusts that CA alone, never the system's, and a plain ``ws://`` or
``http://`` URL is refused (``TlsRequired``), wherever it comes from (the profile, ``--server``,
``HOTLINE_SERVER``): a downgrade would hand the session to whoever sits on the network.
"""

from __future__ import annotations

import os
import re
import ssl
import tomllib
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from hotline.config import toml_string
from hotline.errorcodes import Code
from hotline.errors import ConfigError, CryptoError, LogError, UsageProblem
from hotline.hybrid import MemberKey, MemberSigningKey, member_key_from_text
from hotline.keyfiles import load_member_key
from hotline.roster import Role
from hotline.tlog.mldsa_note import MLDSANoteVerifier
from hotline.tlog.note import NoteVerifier, PinnedNoteVerifier

_LANG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
_TLS_SCHEMES = ("wss", "https")
_SCHEMES = ("ws", "http", *_TLS_SCHEMES)


class TlsRequired(ConfigError):
    """A plain (or unknown) URL given to a profile that pins a TLS CA."""

    code = Code.CONFIG_TLS_REQUIRED


class UnknownProfile(ConfigError, UsageProblem):
    """``--as NAME`` (or ``HOTLINE_AS``) names no profile in the home: a usage error."""

    code = Code.CONFIG_UNKNOWN_PROFILE


def _scheme(url: str) -> str:
    return urllib.parse.urlsplit(url).scheme.lower()


@dataclass(frozen=True)
class Profile:
    name: str
    member: str
    party: str
    role: str
    key_file: Path
    servers: tuple[str, ...]
    origin: str
    authorities: dict[str, MemberKey]
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
            raise UnknownProfile(f"no profile {name!r} in {home}{hint}", file=str(path))
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(exc), file=str(path)) from exc
        try:
            servers = data["servers"]
            if not isinstance(servers, list) or not servers or not all(isinstance(s, str) for s in servers):
                raise ConfigError("must be a non-empty list of ws:// or wss:// URLs",
                                  path=("servers",), file=str(path))
            authorities = {party: member_key_from_text(text)
                           for party, text in dict(data["authorities"]).items()}
            key_file = Path(data["key"])
            tls_ca = Path(data["tls_ca"]) if "tls_ca" in data else None
            log_key = pinned_log_key(data["log_key"], data.get("log_key_mldsa")) \
                if "log_key" in data else None
            if tls_ca is not None and not tls_ca.is_absolute():
                tls_ca = home / tls_ca
            protocols = Path(str(data.get("protocols", "protocols")))
            protocols = protocols if protocols.is_absolute() else home / protocols
            lang = data.get("lang", "en")
            if not isinstance(lang, str) or not _LANG.fullmatch(lang):
                raise ConfigError("must be a BCP 47 language tag such as en, ru or zh-Hans",
                                  path=("lang",), file=str(path))
            profile = cls(name=name, member=str(data["member"]), party=str(data["party"]),
                          role=str(data["role"]), key_file=key_file if key_file.is_absolute()
                          else home / key_file, servers=tuple(servers), origin=str(data["origin"]),
                          authorities=authorities, path=path, tls_ca=tls_ca, log_key=log_key,
                          protocols_dir=protocols, lang=lang)
            for url in profile.servers:
                profile.check_url(url)
            return profile
        except KeyError as exc:
            raise ConfigError("missing setting", path=(str(exc.args[0]),), file=str(path)) from exc
        except CryptoError as exc:
            raise ConfigError(exc.message, path=("authorities",), file=str(path)) from exc
        except LogError as exc:
            raise ConfigError(exc.message, path=("log_key",), file=str(path)) from exc

    @property
    def home(self) -> Path:
        """The member's home folder (the profile is HOME/profiles/NAME.toml)."""
        return self.path.parent.parent

    @property
    def protocols(self) -> Path:
        """The folder of the protocol templates this member holds (default HOME/protocols)."""
        return self.protocols_dir or self.home / "protocols"

    def endpoints(self, overrides: tuple[str, ...]) -> tuple[str, ...]:
        """The server URLs to try: ``overrides`` (``--server``, ``HOTLINE_SERVER``) if any, else
        the profile's; each checked, and the pinned CA loaded, by ``tls_for``, so a command
        fails at once rather than at its first connection.

        Raises:
            TlsRequired: one is not a TLS URL and the profile pins a CA.
            ConfigError: an unknown scheme, or the pinned CA cannot be loaded.
        """
        urls = overrides or self.servers
        for url in urls:
            self.tls_for(url)
        return urls

    def check_url(self, url: str) -> None:
        """Refuse a URL this profile must not use: with ``tls_ca``, anything but wss:// or
        https://; without, anything but those and ws:// or http://.

        Raises:
            TlsRequired: with ``tls_ca``, a plain or unknown URL.
            ConfigError: without, an unknown scheme.
        """
        scheme = _scheme(url)
        if self.tls_ca is not None and scheme not in _TLS_SCHEMES:
            raise TlsRequired(
                f"{url!r} is not a TLS URL, and this profile pins the deployment CA "
                f"(tls_ca = {str(self.tls_ca)!r}): it connects only over TLS. Use the wss:// URL "
                "(check --server and HOTLINE_SERVER); if the deployment really has no TLS, remove "
                "tls_ca from the profile", path=("servers",), file=str(self.path))
        if scheme not in _SCHEMES:
            raise ConfigError(f"{url!r} is not a ws://, wss://, http:// or https:// URL",
                              path=("servers",), file=str(self.path))

    def tls_for(self, url: str) -> ssl.SSLContext | None:
        """The TLS context to reach ``url`` with (None for a plain URL): only the pinned CA when
        the profile has ``tls_ca``, else the system's CAs.

        Raises:
            TlsRequired: a plain URL while the profile pins a CA (``check_url``).
            ConfigError: the pinned CA file cannot be read or holds no certificate.
        """
        self.check_url(url)
        if _scheme(url) not in _TLS_SCHEMES:
            return None
        try:
            context = ssl.create_default_context(cafile=self.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"cannot load the pinned CA {str(self.tls_ca)!r} ({exc}): give the "
                              "deployment's CA certificate (tls/ca.pem of `hotline init --tls`)",
                              path=("tls_ca",), file=str(self.path)) from exc
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_flags |= ssl.VERIFY_X509_STRICT
        return context

    def signing_key(self) -> MemberSigningKey:
        """Load the member's private key (passphrase from ``HOTLINE_PASSPHRASE`` if set)."""
        passphrase = os.environ.get("HOTLINE_PASSPHRASE")
        return load_member_key(self.key_file, passphrase.encode() if passphrase else None)


def pinned_log_key(ed25519: object, mldsa: object = None) -> NoteVerifier:
    """The log key a profile pins: its Ed25519 note key, and with ``log_key_mldsa`` its ML-DSA-65
    key too, then required on every checkpoint (``PinnedNoteVerifier``).

    Raises:
        LogError: ``log.bad_key`` for a key text that is not one, or keys of two names.
    """
    if not isinstance(ed25519, str) or not (mldsa is None or isinstance(mldsa, str)):
        raise LogError("a log key is a verifier key text", code=Code.LOG_BAD_KEY)
    key = NoteVerifier.from_text(ed25519)
    if mldsa is None:
        return key
    return PinnedNoteVerifier(key.name, key.public_key, also=(MLDSANoteVerifier.from_text(mldsa),))


def write_profile(home: Path, *, name: str, party: str, role: Role, servers: list[str],
                  origin: str, authorities: dict[str, str], log_key: str,
                  tls_ca: str | None = None, written_by: str = "hotline init",
                  log_key_mldsa: str | None = None) -> Path:
    """Write ``HOME/profiles/NAME.toml`` (every value TOML-escaped: ``hotline join`` writes
    values from a descriptor handed over)."""
    q = toml_string
    path = home / "profiles" / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Profile of {name}, {role.value} of {party}. Written by `{written_by}`.",
             f"member = {q(name)}", f"party = {q(party)}", f"role = {q(role.value)}",
             f"key = {q(f'keys/{name}.pem')}",
             "# Server endpoints, tried in order (failover).",
             "servers = [" + ", ".join(q(s) for s in servers) + "]",
             f"origin = {q(origin)}",
             "# The transparency log's checkpoint key (C2SP note verifier key), pinned out of band.",
             f"log_key = {q(log_key)}",
             *([] if log_key_mldsa is None else
               ["# Its ML-DSA-65 key: every checkpoint must carry its signature too.",
                f"log_key_mldsa = {q(log_key_mldsa)}"]),
             "# Protocol templates held by this member: forms and checks before sending.",
             'protocols = "protocols"',
             *(["# For wss:// servers whose certificate a private CA issued:",
                '# tls_ca = "tls/ca.pem"'] if tls_ca is None else
               ["# The deployment CA, pinned: only a server certificate it issued is trusted (not",
                "# the system's CAs), and plain ws:// or http:// URLs are refused.",
                f"tls_ca = {q(tls_ca)}"]),
             "", "# Authority keys pinned out of band: the only keys this member trusts.",
             "[authorities]"]
    lines += [f"{q(party_id)} = {q(key)}" for party_id, key in authorities.items()]
    path.write_text("\n".join(lines) + "\n")
    return path
