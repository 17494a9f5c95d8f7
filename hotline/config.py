"""Server configuration: a TOML file (stdlib ``tomllib``) -> frozen dataclasses.

Theory of operation:
- Sources, later wins: the dataclass defaults, the file, then environment variables named
  ``HOTLINE_<SECTION>_<KEY>`` (``HOTLINE_SERVER_PORT=9000``). Other ``HOTLINE_*`` variables
  (``HOTLINE_HOME``, ``HOTLINE_AS``, ...) belong to the CLI and are ignored here.
- Fail closed: an unknown section or key is refused, not ignored, because a misspelt setting
  (``max_conections``) would otherwise silently keep its default.
- Every error is a ``ConfigError`` naming where the value came from (the file, or the environment
  variable) and its dotted key.
- ``parse_config`` is pure; ``load_config`` and ``write_deployment_config`` do the file I/O.
- Paths stay as written and are resolved against the home folder by ``Config`` properties, so the
  parsed object never depends on the current directory.
- Authority keys are pinned as ``party = "ed25519:BASE64"``, or
  ``"ed25519+ml-dsa-65:BASE64:BASE64"`` for a hybrid one. They grant nothing by themselves:
  agreements name each party's key (docs/ARCHITECTURE.md "Roster: enrollments and agreements").
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from hotline.canonical import JSONObject
from hotline.errorcodes import Code
from hotline.errors import ConfigError, CryptoError
from hotline.hybrid import KEY_TEXT_FORMS, MemberKey, member_key_from_text
from hotline.names import NAME

ENV_PREFIX: Final = "HOTLINE_"
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
LOG_FORMATS: Final = ("json", "console")
METRICS_ACCESS: Final = ("loopback", "signed", "open")
DEFAULTS_LABEL: Final = "<defaults>"


class _Invalid(Exception):
    """A value's problem, raised before we know which file or variable to blame."""

    def __init__(self, message: str, *, sub: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.sub = sub  # path below the key, e.g. the party inside roster.authorities


_EXPECTED: Final[dict[type, str]] = {str: "a string", int: "an integer", float: "a number",
                                     bool: "true or false"}
_ACCEPTS: Final[dict[type, tuple[type, ...]]] = {str: (str,), int: (int,), float: (int, float),
                                                 bool: (bool,)}
_ENV_BOOLS: Final = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _describe(value: object) -> str:
    """Name a parsed value by its TOML type, for "expected X, got Y" messages."""
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    for kind, name in ((int, "integer"), (float, "float"), (str, "string")):
        if isinstance(value, kind):
            return f"{name} {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


@dataclass(frozen=True)
class _Spec:
    """Type and range of one scalar setting."""

    kind: type  # str, int, float or bool
    optional: bool = False
    choices: tuple[str, ...] = ()
    low: int | None = None  # inclusive bounds (ints)
    high: int | None = None
    positive: bool = False
    note: str = ""

    def check(self, value: Any) -> Any:
        """Return ``value`` (an int widened to float for float settings), or raise ``_Invalid``."""
        if value is None and self.optional:
            return None
        # bool is a subclass of int, but `port = true` is a mistake, not 1.
        if isinstance(value, bool) is not (self.kind is bool) or not isinstance(value, _ACCEPTS[self.kind]):
            raise _Invalid(f"expected {_EXPECTED[self.kind]}, got {_describe(value)}")
        if self.kind is float and isinstance(value, (int, float)):
            value = float(value)
            if not math.isfinite(value):
                raise _Invalid(f"must be a finite number, got {value}")
        if self.kind is str:
            if not value:
                raise _Invalid("must not be empty")
            if self.choices and value not in self.choices:
                raise _Invalid(f"must be one of {', '.join(self.choices)}; got {value!r}")
        if self.positive and not value > 0:
            raise _Invalid(f"must be positive, got {value}")
        if self.low is not None and self.high is not None and not self.low <= value <= self.high:
            raise _Invalid(f"must be between {self.low} and {self.high}{self.note}, got {value}")
        return value

    def from_env(self, text: str) -> Any:
        """Convert an environment variable's text to this setting's type (not yet range-checked)."""
        if self.kind is bool:
            flag = _ENV_BOOLS.get(text.strip().lower())
            if flag is None:
                raise _Invalid(f"expected true or false, got {text!r}")
            return flag
        if self.kind in (int, float):
            try:
                return self.kind(text.strip())
            except ValueError:
                raise _Invalid(f"expected {_EXPECTED[self.kind]}, got {text!r}") from None
        # An empty variable unsets an optional setting (e.g. turn TLS off for one run).
        if self.optional and text == "":
            return None
        return text


_POSITIVE_INT = _Spec(int, positive=True)
_POSITIVE_FLOAT = _Spec(float, positive=True)

# Every scalar setting; the keys must match the section dataclasses' fields (a unit test checks).
_SPECS: Final[dict[str, dict[str, _Spec]]] = {
    "server": {
        "host": _Spec(str),
        "origin": _Spec(str),
        "port": _Spec(int, low=0, high=65535, note=" (0 picks any free port)"),
        "tls_cert": _Spec(str, optional=True),
        "tls_key": _Spec(str, optional=True),
        "insecure": _Spec(bool),
        "metrics": _Spec(str, choices=METRICS_ACCESS),
    },
    "store": {"path": _Spec(str), "url": _Spec(str, optional=True)},
    "roster": {"dir": _Spec(str)},
    "limits": {
        "max_frame_bytes": _POSITIVE_INT,
        "send_queue": _POSITIVE_INT,
        "handshake_timeout": _POSITIVE_FLOAT,
        "clock_skew": _POSITIVE_FLOAT,
        "max_connections": _POSITIVE_INT,
        "commit_batch": _POSITIVE_INT,
        "max_anonymous": _POSITIVE_INT,
        "max_anonymous_per_address": _POSITIVE_INT,
        "request_timeout": _POSITIVE_FLOAT,
        "send_timeout": _POSITIVE_FLOAT,
        "send_queue_bytes": _POSITIVE_INT,
        "member_queue": _POSITIVE_INT,
        "member_rate": _POSITIVE_FLOAT,
        "member_burst": _POSITIVE_INT,
        "rejections_logged": _POSITIVE_INT,
        "rejection_summary": _POSITIVE_FLOAT,
        "entries_page_bytes": _POSITIVE_INT,
        "verify_threads": _Spec(int, low=0, high=64),
        "attachment_bytes": _Spec(int, low=1, high=1 << 30),
        "uploads_bytes": _POSITIVE_INT,
        "upload_bytes_per_day": _POSITIVE_INT,
        "upload_expiry": _POSITIVE_FLOAT,
    },
    "log": {"level": _Spec(str, choices=LOG_LEVELS), "format": _Spec(str, choices=LOG_FORMATS)},
    "tlog": {"key": _Spec(str), "mldsa_key": _Spec(str, optional=True), "checkpoint_delay": _POSITIVE_FLOAT},
    "protocols": {"dir": _Spec(str), "deadline_sweep": _POSITIVE_FLOAT, "state_save": _POSITIVE_FLOAT},
    "health": {"sweep": _POSITIVE_FLOAT, "missed": _POSITIVE_INT},
}
# Keys holding a table rather than a scalar; not overridable from the environment.
_TABLES: Final[dict[str, tuple[str, ...]]] = {"roster": ("authorities",)}


POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")


def is_postgres(location: Path | str) -> bool:
    """Whether a store location is a PostgreSQL URL (else it is a SQLite file)."""
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def parse_authority_key(text: str) -> MemberKey:
    """Parse a pinned authority key: ``ed25519:BASE64``, or ``ed25519+ml-dsa-65:BASE64:BASE64``
    for a hybrid (post-quantum) authority.

    Raises:
        CryptoError: the text is neither form, or not a key of the right size.
    """
    try:
        return member_key_from_text(text)
    except CryptoError as exc:
        raise CryptoError(f"an authority key is written {KEY_TEXT_FORMS}: {exc.message}") from None


def format_authority_key(key: MemberKey) -> str:
    """The text of an authority key, as ``parse_authority_key`` reads it."""
    return key.to_text()


def _check_authorities(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _Invalid(f"expected a table of party = {KEY_TEXT_FORMS}, got {_describe(value)}")
    checked: dict[str, str] = {}
    for party, key in value.items():
        if not isinstance(party, str) or not NAME.fullmatch(party):
            raise _Invalid(f"party name must match {NAME.pattern}", sub=(str(party),))
        if not isinstance(key, str):
            raise _Invalid(f"expected a {KEY_TEXT_FORMS} string, got {_describe(key)}", sub=(party,))
        try:
            parse_authority_key(key)
        except CryptoError as exc:
            raise _Invalid(exc.message, sub=(party,)) from exc
        checked[party] = key
    return checked


def _tls_problem(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """(missing key, message) when only one of the TLS files is set."""
    if (cert is None) == (key is None):
        return None
    missing = "tls_key" if key is None else "tls_cert"
    present = "tls_cert" if key is None else "tls_key"
    return missing, f"must be set together with {present} (set both, or neither to serve without TLS)"


def _validate_section(obj: Any, section: str) -> None:
    """Check (and normalize) a section built directly in code, as the parser does for files."""
    for f in fields(obj):
        spec = _SPECS[section].get(f.name)
        if spec is None:
            continue
        try:
            value = spec.check(getattr(obj, f.name))
        except _Invalid as exc:
            raise ConfigError(exc.message, path=(section, f.name)) from exc
        object.__setattr__(obj, f.name, value)


@dataclass(frozen=True)
class ServerSection:
    """Where the server listens, and its TLS files (both or neither)."""

    host: str = "127.0.0.1"
    port: int = 8470
    tls_cert: str | None = None
    tls_key: str | None = None
    insecure: bool = False  # listen off loopback without TLS (see ``check_listen``)
    origin: str = "hotline.local"
    metrics: str = "loopback"  # who may read /metrics: loopback peers, signed requests, anyone

    def __post_init__(self) -> None:
        _validate_section(self, "server")
        problem = _tls_problem(self.tls_cert, self.tls_key)
        if problem is not None:
            raise ConfigError(problem[1], path=("server", problem[0]))


class InsecureListen(ConfigError):
    """The server would listen off loopback without TLS, and was not told ``--insecure``."""

    code = Code.CONFIG_INSECURE_LISTEN


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` reaches this machine only: 127.0.0.0/8, ::1 (also IPv4-mapped) or
    ``localhost``. ``0.0.0.0`` and ``::`` are every interface; any other name may resolve to
    anything, so it counts as off loopback."""
    text = host.strip().lower()
    if text in ("localhost", "localhost."):
        return True
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_listen(server: ServerSection) -> None:
    """Refuse to listen off loopback in plain text unless told so (``server.insecure``).

    Raises:
        InsecureListen: ``server.host`` is not loopback, no TLS is set and ``insecure`` is off.
    """
    if server.tls_cert is not None or server.insecure or is_loopback_host(server.host):
        return
    raise InsecureListen(
        f"{server.host!r} is not a loopback address, and without TLS every frame would cross the "
        "network in the clear, to anyone who can listen or pass for the server. Serve with TLS "
        "(`hotline init --tls` makes a deployment CA and server certificate; or set "
        "server.tls_cert and server.tls_key), listen on 127.0.0.1 behind a TLS proxy, or, if the "
        "network itself is protected, say so with `hotline serve --insecure` "
        "(server.insecure = true)", path=("server", "host"))


@dataclass(frozen=True)
class StoreSection:
    """Where the log is kept: the SQLite file ``path`` (relative to the home folder), or the
    PostgreSQL database ``url`` when set (several servers may share it). ``path`` also places
    the files kept beside the log on this machine (``hotline.db.checkpoint``)."""

    path: str = "hotline.db"
    url: str | None = None  # postgresql://USER[:PASSWORD]@HOST[:PORT]/DB (env HOTLINE_STORE_URL)

    def __post_init__(self) -> None:
        _validate_section(self, "store")
        if self.url is not None and not is_postgres(self.url):
            raise ConfigError("must be a postgresql:// URL (postgresql://USER@HOST:PORT/DATABASE); "
                              "leave it out to keep the log in the SQLite file [store] path",
                              path=("store", "url"))


def _no_authorities() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class RosterSection:
    """Signed roster documents and the pinned authority key of each party."""

    dir: str = "roster"
    # party -> its key's text (``parse_authority_key``); a read-only view of a private copy,
    # so the section stays immutable. Left out of the hash (mappings are unhashable) but not out of equality.
    authorities: Mapping[str, str] = field(default_factory=_no_authorities, hash=False)

    def __post_init__(self) -> None:
        _validate_section(self, "roster")
        try:
            checked = _check_authorities(self.authorities)
        except _Invalid as exc:
            raise ConfigError(exc.message, path=("roster", "authorities", *exc.sub)) from exc
        object.__setattr__(self, "authorities", MappingProxyType(checked))


@dataclass(frozen=True)
class LimitsSection:
    """Resource limits and timeouts (sizes in bytes, times in seconds)."""

    max_frame_bytes: int = 131072
    send_queue: int = 1024
    handshake_timeout: float = 10.0
    clock_skew: float = 300.0
    max_connections: int = 1000
    commit_batch: int = 512
    # Connections not (yet) authenticated as a member: WebSocket handshakes and HTTP requests.
    max_anonymous: int = 256
    max_anonymous_per_address: int = 16
    request_timeout: float = 10.0
    # A frame a member does not read within send_timeout ends its session (it resumes).
    send_timeout: float = 30.0
    send_queue_bytes: int = 4 * 1024 * 1024
    # Fair scheduling and per-member ceilings on submissions and on logged refusals.
    member_queue: int = 64
    member_rate: float = 500.0
    member_burst: int = 2000
    rejections_logged: int = 60
    rejection_summary: float = 60.0
    entries_page_bytes: int = 4 * 1024 * 1024
    # Threads checking submissions' signatures ahead of their turn (0: in turn, on the event loop;
    # worth it only with cores to spare: config/hotline.toml).
    verify_threads: int = 0
    # Attachments: the largest one accepted, and the bytes one party's uploads under way may hold.
    attachment_bytes: int = 64 * 1024 * 1024
    uploads_bytes: int = 256 * 1024 * 1024
    # ... the bytes one party may upload in 24 hours, and the seconds after which an upload not
    # finished (since its last chunk) or content no message named (since stored) is dropped
    upload_bytes_per_day: int = 2 * 1024 * 1024 * 1024
    upload_expiry: float = 86400.0

    def __post_init__(self) -> None:
        _validate_section(self, "limits")


@dataclass(frozen=True)
class LogSection:
    """Log verbosity (debug|info|warning|error) and format (json|console)."""

    level: str = "info"
    format: str = "json"

    def __post_init__(self) -> None:
        _validate_section(self, "log")


@dataclass(frozen=True)
class TlogSection:
    """The transparency log: the key that signs checkpoints (its name is ``server.origin``) and
    the longest a commit waits for a checkpoint covering it, in seconds."""

    key: str = "keys/log.pem"
    mldsa_key: str | None = None  # an ML-DSA-65 key that also signs each checkpoint
    checkpoint_delay: float = 1.0

    def __post_init__(self) -> None:
        _validate_section(self, "tlog")


@dataclass(frozen=True)
class ProtocolsSection:
    """The protocol templates this server holds (agreements pin them by SHA-256), how often,
    in seconds, it looks for acknowledgements past their deadline, and how often it saves the
    open deadlines and rate windows (a start then reads only the log after them)."""

    dir: str = "protocols"
    deadline_sweep: float = 1.0
    state_save: float = 60.0

    def __post_init__(self) -> None:
        _validate_section(self, "protocols")


@dataclass(frozen=True)
class HealthSection:
    """Channel health (docs/ARCHITECTURE.md "Heartbeats and health"): seconds between two health sweeps, and
    how many heartbeat
    intervals a party may miss before its channel is DOWN."""

    sweep: float = 1.0
    missed: int = 3

    def __post_init__(self) -> None:
        _validate_section(self, "health")


_SECTION_TYPES: Final[dict[str, type]] = {
    "server": ServerSection,
    "store": StoreSection,
    "roster": RosterSection,
    "limits": LimitsSection,
    "log": LogSection,
    "tlog": TlogSection,
    "protocols": ProtocolsSection,
    "health": HealthSection,
}


@dataclass(frozen=True)
class Config:
    """The whole server configuration; paths resolve against ``home``."""

    home: Path
    server: ServerSection = field(default_factory=ServerSection)
    store: StoreSection = field(default_factory=StoreSection)
    roster: RosterSection = field(default_factory=RosterSection)
    limits: LimitsSection = field(default_factory=LimitsSection)
    log: LogSection = field(default_factory=LogSection)
    tlog: TlogSection = field(default_factory=TlogSection)
    protocols: ProtocolsSection = field(default_factory=ProtocolsSection)
    health: HealthSection = field(default_factory=HealthSection)

    def _resolve(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() else self.home / p

    @property
    def log_key_path(self) -> Path:
        return self._resolve(self.tlog.key)

    @property
    def log_mldsa_key_path(self) -> Path | None:
        return self._resolve(self.tlog.mldsa_key) if self.tlog.mldsa_key else None

    @property
    def db_path(self) -> Path:
        return self._resolve(self.store.path)

    @property
    def store_location(self) -> Path | str:
        """The log's database: the PostgreSQL URL if set, else the SQLite file."""
        return self.store.url if self.store.url is not None else self.db_path

    @property
    def protocols_dir(self) -> Path:
        return self._resolve(self.protocols.dir)

    @property
    def roster_dir(self) -> Path:
        return self._resolve(self.roster.dir)

    @property
    def tls_cert(self) -> Path | None:
        return None if self.server.tls_cert is None else self._resolve(self.server.tls_cert)

    @property
    def tls_key(self) -> Path | None:
        return None if self.server.tls_key is None else self._resolve(self.server.tls_key)


def _suggestion(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_shape(doc: Mapping[str, object], file: str) -> None:
    """Refuse unknown sections and keys, suggesting the closest valid name."""
    for section, table in doc.items():
        if section not in _SPECS:
            # `port = 1` at top level: point at the section that holds that key.
            homes = [f"{s}.{section}" for s, specs in _SPECS.items() if section in specs]
            hint = f"; did you mean {homes[0]!r}?" if homes else _suggestion(section, list(_SPECS))
            raise ConfigError(f"unknown section (sections: {', '.join(_SPECS)}){hint}",
                              path=(section,), file=file)
        if not isinstance(table, dict):
            raise ConfigError(f"expected a table [{section}], got {_describe(table)}",
                              path=(section,), file=file)
        valid = [*_SPECS[section], *_TABLES.get(section, ())]
        for key in table:
            if key not in valid:
                hint = _suggestion(key, valid) or f" (valid keys: {', '.join(valid)})"
                raise ConfigError(f"unknown key{hint}", path=(section, key), file=file)


def parse_config(text: str, *, file: str, home: Path, env: Mapping[str, str]) -> Config:
    """Build a ``Config`` from TOML text and environment overrides. Pure: no I/O.

    Args:
        text: the TOML document ("" means all defaults).
        file: the name errors give for the text's origin (usually its path).
        home: the folder relative paths resolve against.
        env: environment; only ``HOTLINE_<SECTION>_<KEY>`` names of real settings are read.

    Raises:
        ConfigError: invalid TOML, an unknown section or key, or a bad value; the message names
            the file (or environment variable) and the dotted key.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML: {exc}", file=file) from exc
    _check_shape(doc, file)

    # each section a TOML table, free-form until every key's spec checks it below
    values: dict[str, JSONObject] = {s: dict(doc.get(s, {})) for s in _SPECS}
    origins: dict[tuple[str, str], str] = {}
    for section, specs in _SPECS.items():
        for key, spec in specs.items():
            var = f"{ENV_PREFIX}{section.upper()}_{key.upper()}"
            if var not in env:
                continue
            origin = f"environment variable {var}"
            try:
                values[section][key] = spec.from_env(env[var])
            except _Invalid as exc:
                raise ConfigError(exc.message, path=(section, key), file=origin) from exc
            origins[section, key] = origin

    for section, specs in _SPECS.items():
        for key, spec in specs.items():
            if key in values[section]:
                try:
                    values[section][key] = spec.check(values[section][key])
                except _Invalid as exc:
                    raise ConfigError(exc.message, path=(section, key),
                                      file=origins.get((section, key), file)) from exc
    if "authorities" in values["roster"]:
        try:
            values["roster"]["authorities"] = _check_authorities(values["roster"]["authorities"])
        except _Invalid as exc:
            raise ConfigError(exc.message, path=("roster", "authorities", *exc.sub),
                              file=file) from exc
    server = values["server"]
    problem = _tls_problem(server.get("tls_cert"), server.get("tls_key"))
    if problem is not None:
        present = "tls_cert" if problem[0] == "tls_key" else "tls_key"
        raise ConfigError(problem[1], path=("server", problem[0]),
                          file=origins.get(("server", present), file))

    # Values are checked above, so the sections' own checks pass here.
    sections = {name: cls(**values[name]) for name, cls in _SECTION_TYPES.items()}
    return Config(home=home, **sections)


def load_config(path: Path | None, *, home: Path,
                env: Mapping[str, str] = os.environ) -> Config:
    """Read the config file at ``path`` (defaults when ``None`` or missing) and apply ``env``.

    A missing file is not an error: a fresh home folder runs on the defaults.

    Raises:
        ConfigError: the file is unreadable, not UTF-8, or invalid (see ``parse_config``).
    """
    if path is None:
        return parse_config("", file=DEFAULTS_LABEL, home=home, env=env)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return parse_config("", file=str(path), home=home, env=env)
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=str(path)) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                          file=str(path)) from exc
    return parse_config(text, file=str(path), home=home, env=env)


def toml_string(text: str) -> str:
    """A TOML basic string (quotes, backslashes and control characters escaped)."""
    escaped = []
    for ch in text:
        if ch in '"\\':
            escaped.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            escaped.append(f"\\u{ord(ch):04X}")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'


def write_deployment_config(path: Path, *, port: int, authorities: Mapping[str, str],
                            origin: str = "hotline.local", host: str = ServerSection.host,
                            tls: tuple[str, str] | None = None, mldsa_key: str | None = None) -> None:
    """Write the small, commented config of a deployment (by default loopback, no TLS).

    Args:
        path: the file to write (replaced if present).
        port: the listen port (0 picks any free port).
        origin: the deployment's name, which clients check in the handshake.
        authorities: party -> the text of its authority key (``parse_authority_key``).
        host: the listen address.
        tls: the server's certificate and key files (relative to the home folder), if any.
        mldsa_key: the ML-DSA-65 log key file that also signs checkpoints, if any.

    Raises:
        ConfigError: a bad port, host or authority, or a host off loopback without TLS
            (``InsecureListen``); nothing is written then.
    """
    try:
        # Checked before rendering: `port = True` would otherwise surface as a TOML syntax error.
        _SPECS["server"]["port"].check(port)
    except _Invalid as exc:
        raise ConfigError(exc.message, path=("server", "port"), file=str(path)) from exc
    defaults = Config(home=path.parent)
    listen = (["# Listen address: loopback only, plain WebSocket (no TLS).", f"host = {toml_string(host)}"]
              if tls is None else
              ["# Listen address, and the server's TLS certificate and key (`hotline init --tls`;",
               "# a new certificate from the deployment CA: `hotline tls server-cert`).",
               f"host = {toml_string(host)}", f"tls_cert = {toml_string(tls[0])}",
               f"tls_key = {toml_string(tls[1])}"])
    lines = [
        "# hotline server config for a demo deployment (written by `hotline init`).",
        "# Every setting, with its default, is documented in config/hotline.toml.",
        "# Relative paths are relative to the home folder.",
        "",
        "[server]",
        *listen,
        f"port = {port}",
        "# Name of this deployment, presented in every handshake; clients refuse another.",
        f"origin = {toml_string(origin)}",
        "",
        *(["[tlog]", "# ML-DSA-65 key that signs every checkpoint beside the Ed25519 log key.",
            f"mldsa_key = {toml_string(mldsa_key)}", ""] if mldsa_key else []),
        "[store]",
        "# SQLite database where the server keeps its log (and, with url, the files kept beside it).",
        f"path = {toml_string(defaults.store.path)}",
        "# Or a PostgreSQL database several servers share (docs/ha.md); the password is better",
        "# given in the environment: HOTLINE_STORE_URL.",
        '# url = "postgresql://hotline@db.example.org:5432/hotline"',
        "",
        "[roster]",
        "# Folder of signed enrollments and agreements.",
        f"dir = {toml_string(defaults.roster.dir)}",
        "",
        "[protocols]",
        "# Folder of protocol templates (*.yaml); agreements pin each file by its SHA-256.",
        f"dir = {toml_string(defaults.protocols.dir)}",
        "",
        "[roster.authorities]",
        "# party = its authority's public key. Pinning a key grants nothing by itself:",
        "# only agreements that every party signed open channels.",
        *(f"{toml_string(party)} = {toml_string(key)}" for party, key in sorted(authorities.items())),
        "",
    ]
    text = "\n".join(lines)
    # Validate by parsing exactly what we are about to write: we never write a file we would refuse.
    check_listen(parse_config(text, file=str(path), home=path.parent, env={}).server)
    path.write_text(text, encoding="utf-8")


_TABLE_HEADER = re.compile(r"\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(#.*)?$")


def _pin_key(line: str) -> str | None:
    """The party a ``party = "..."`` line of [roster.authorities] pins (bare or quoted key)."""
    try:
        doc = tomllib.loads(line)
    except tomllib.TOMLDecodeError:
        return None
    return next(iter(doc)) if len(doc) == 1 else None


def with_authority_pin(text: str, *, party: str, key: MemberKey, file: str, home: Path) -> str:
    """``text`` (a server config) with ``party`` pinned to ``key`` in [roster.authorities],
    every other line kept: the line for ``party`` is replaced, or added to the table (the table
    added at the end when absent). Pure.

    Raises:
        ConfigError: ``text`` is not a valid config, or the result would not parse to the same
            config with exactly this pin changed (e.g. the pins are written as an inline table):
            then pin by hand.
    """
    before = parse_config(text, file=file, home=home, env={})
    if not NAME.fullmatch(party):
        raise ConfigError(f"party name must match {NAME.pattern}", path=("roster", "authorities"))
    pin = f"{toml_string(party)} = {toml_string(format_authority_key(key))}"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines)
                  if (m := _TABLE_HEADER.match(line)) and m[1] == "roster.authorities"), None)
    if start is None:
        lines += ["", "[roster.authorities]", pin]
    else:
        end = next((i for i in range(start + 1, len(lines)) if _TABLE_HEADER.match(lines[i])),
                   len(lines))
        found = next((i for i in range(start + 1, end) if _pin_key(lines[i]) == party), None)
        if found is not None:
            lines[found] = pin
        else:
            last = max((i for i in range(start, end) if lines[i].strip()), default=start)
            lines.insert(last + 1, pin)
    result = "\n".join(lines) + "\n"
    try:
        after = parse_config(result, file=file, home=home, env={})
    except ConfigError as exc:
        raise ConfigError(f"cannot add the pin to this file by itself ({exc.message}): add "
                          f"{pin} under [roster.authorities] by hand", file=file) from None
    wanted = {**before.roster.authorities, party: format_authority_key(key)}
    if dict(after.roster.authorities) != wanted or \
            replace(after, roster=before.roster) != before:
        raise ConfigError(f"cannot add the pin to this file by itself: add {pin} under "
                          "[roster.authorities] by hand", file=file)
    return result
