"""hotline.config: defaults, file values, environment overrides, and one test per kind of error."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from hotline import config as cfg
from hotline.config import (
    Config,
    LimitsSection,
    LogSection,
    RosterSection,
    ServerSection,
    StoreSection,
    format_authority_key,
    load_config,
    parse_authority_key,
    parse_config,
    with_authority_pin,
    write_deployment_config,
)
from hotline.errors import ConfigError, CryptoError, HotlineError
from hotline.keys import PublicKey, SigningKey

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "hotline.toml"
# RFC 8032 test 1 public key, and a second distinct valid key.
NORTH = "ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
SOUTH = format_authority_key(PublicKey(bytes(range(32))))


def parse(text: str, env: dict[str, str] | None = None, home: Path = Path("/srv/h")) -> Config:
    return parse_config(text, file="conf.toml", home=home, env=env or {})


def refused(text: str, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    return info.value


# --- defaults and values ----------------------------------------------------------------------

def test_defaults() -> None:
    c = parse("")
    assert c == Config(home=Path("/srv/h"))
    assert c.server == ServerSection("127.0.0.1", 8470, None, None)
    assert c.store == StoreSection("hotline.db")
    assert c.roster.dir == "roster" and dict(c.roster.authorities) == {}
    assert c.limits == LimitsSection(131072, 1024, 10.0, 300.0, 1000, 512)
    assert c.log == LogSection("info", "json")
    assert c.db_path == Path("/srv/h/hotline.db")
    assert c.roster_dir == Path("/srv/h/roster")
    assert c.tls_cert is None and c.tls_key is None


def test_load_without_file_or_with_missing_file_is_defaults(tmp_path: Path) -> None:
    assert load_config(None, home=tmp_path, env={}) == Config(home=tmp_path)
    assert load_config(tmp_path / "absent.toml", home=tmp_path, env={}) == Config(home=tmp_path)


def test_file_values(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text(f"""
[server]
host = "0.0.0.0"
port = 9443
tls_cert = "tls/cert.pem"
tls_key = "/etc/hotline/key.pem"
[store]
path = "/var/lib/hotline/log.db"
[roster]
dir = "docs"
[roster.authorities]
north = "{NORTH}"
"south.gov" = "{SOUTH}"
[limits]
max_frame_bytes = 4096
handshake_timeout = 3       # an integer is fine where a number is expected
clock_skew = 1.5
[log]
level = "debug"
format = "console"
""")
    c = load_config(path, home=tmp_path, env={})
    assert c.server == ServerSection("0.0.0.0", 9443, "tls/cert.pem", "/etc/hotline/key.pem")
    assert c.tls_cert == tmp_path / "tls/cert.pem"
    assert c.tls_key == Path("/etc/hotline/key.pem")
    assert c.db_path == Path("/var/lib/hotline/log.db")
    assert c.roster_dir == tmp_path / "docs"
    assert dict(c.roster.authorities) == {"north": NORTH, "south.gov": SOUTH}
    assert c.limits.max_frame_bytes == 4096 and c.limits.send_queue == 1024
    assert c.limits.handshake_timeout == 3.0 and isinstance(c.limits.handshake_timeout, float)
    assert c.limits.clock_skew == 1.5
    assert c.log == LogSection("debug", "console")


def test_port_zero_means_any_free_port() -> None:
    assert parse("[server]\nport = 0").server.port == 0


def test_config_is_immutable() -> None:
    c = parse(f'[roster.authorities]\nnorth = "{NORTH}"')
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.server.port = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.roster.authorities["evil"] = SOUTH  # type: ignore[index]
    hash(c)  # usable as a key: authorities are left out of the hash, not out of equality
    assert c != parse("")


def test_sections_copy_the_authorities_they_are_given() -> None:
    given = {"north": NORTH}
    section = RosterSection(authorities=given)
    given["south"] = SOUTH
    assert dict(section.authorities) == {"north": NORTH}


# --- environment overrides --------------------------------------------------------------------

def test_env_overrides_file_and_converts_types() -> None:
    c = parse("[server]\nport = 1234\n[log]\nlevel = \"error\"", env={
        "HOTLINE_SERVER_PORT": "9000",
        "HOTLINE_LIMITS_CLOCK_SKEW": "60",
        "HOTLINE_LOG_LEVEL": "debug",
        "HOTLINE_STORE_PATH": "/x.db",
        "HOTLINE_SERVER_TLS_CERT": "c.pem",
        "HOTLINE_SERVER_TLS_KEY": "k.pem",
    })
    assert c.server.port == 9000
    assert c.limits.clock_skew == 60.0 and isinstance(c.limits.clock_skew, float)
    assert c.log.level == "debug"
    assert c.db_path == Path("/x.db")
    assert c.tls_cert == Path("/srv/h/c.pem")


def test_empty_env_value_unsets_optional_setting() -> None:
    text = '[server]\ntls_cert = "c.pem"\ntls_key = "k.pem"'
    env = {"HOTLINE_SERVER_TLS_CERT": "", "HOTLINE_SERVER_TLS_KEY": ""}
    assert parse(text, env).server.tls_cert is None


def test_env_names_that_are_not_settings_are_ignored() -> None:
    env = {"HOTLINE_HOME": "/h", "HOTLINE_AS": "alice", "HOTLINE_PASSPHRASE": "x",
           "HOTLINE_SERVER_PROT": "1", "HOTLINE_ROSTER_AUTHORITIES": "north=x", "OTHER": "1"}
    assert parse("", env) == parse("")


def test_every_scalar_setting_has_an_env_name() -> None:
    special = {"log.level": "debug", "log.format": "console", "server.metrics": "open",
               "server.insecure": "true", "store.url": "postgresql://db.example/hotline"}
    defaults = parse("")
    for section, keys in cfg._SPECS.items():
        for key, spec in keys.items():
            var = f"HOTLINE_{section.upper()}_{key.upper()}"
            env = {var: special.get(f"{section}.{key}", "7")}
            if key.startswith("tls_"):  # only valid as a pair
                env = {"HOTLINE_SERVER_TLS_CERT": "c", "HOTLINE_SERVER_TLS_KEY": "k"}
            changed = getattr(getattr(parse("", env), section), key)
            assert changed != getattr(getattr(defaults, section), key), var
            assert changed is None or isinstance(changed, spec.kind), var


def test_a_store_url_must_be_postgresql() -> None:
    assert parse('[store]\nurl = "postgresql://db.example/hotline"').store.url is not None
    err = refused('[store]\nurl = "mysql://db.example/hotline"')
    assert err.path == ("store", "url") and "postgresql://" in err.message


# --- errors -----------------------------------------------------------------------------------

def test_unknown_key_is_refused_with_suggestion() -> None:
    err = refused("[limits]\nmax_conections = 5")
    assert err.path == ("limits", "max_conections") and err.file == "conf.toml"
    assert str(err).startswith("conf.toml: limits.max_conections: unknown key")
    assert "did you mean 'max_connections'?" in str(err)


def test_unknown_key_without_close_match_lists_valid_keys() -> None:
    err = refused("[log]\nzzz = 1")
    assert "valid keys: level, format" in str(err)


def test_unknown_section_is_refused_with_suggestion() -> None:
    assert "did you mean 'server'?" in str(refused("[sever]\nport = 1"))
    err = refused("port = 1")  # a key put above every section
    assert err.path == ("port",) and "did you mean 'server.port'?" in str(err)


def test_unknown_key_under_authorities_table_is_a_party_not_an_error() -> None:
    assert "mediator" in parse(f'[roster.authorities]\nmediator = "{NORTH}"').roster.authorities


@pytest.mark.parametrize(("text", "path", "expected"), [
    ('[server]\nport = "8470"', ("server", "port"), "expected an integer, got string '8470'"),
    ("[server]\nport = true", ("server", "port"), "expected an integer, got boolean true"),
    ("[server]\nport = 1.0", ("server", "port"), "expected an integer, got float 1.0"),
    ("[server]\nport = 65536", ("server", "port"), "between 0 and 65535"),
    ("[server]\nport = -1", ("server", "port"), "between 0 and 65535"),
    ("[server]\nhost = 1", ("server", "host"), "expected a string, got integer 1"),
    ('[server]\nhost = ""', ("server", "host"), "must not be empty"),
    ("[store]\npath = []", ("store", "path"), "expected a string, got an array"),
    ("[limits]\nsend_queue = 0", ("limits", "send_queue"), "must be positive, got 0"),
    ("[limits]\ncommit_batch = -5", ("limits", "commit_batch"), "must be positive"),
    ("[limits]\nclock_skew = 0.0", ("limits", "clock_skew"), "must be positive"),
    ("[limits]\nclock_skew = inf", ("limits", "clock_skew"), "finite"),
    ("[limits]\nclock_skew = nan", ("limits", "clock_skew"), "finite"),
    ("[limits]\nhandshake_timeout = false", ("limits", "handshake_timeout"),
     "expected a number, got boolean false"),
    ('[log]\nlevel = "verbose"', ("log", "level"), "one of debug, info, warning, error"),
    ('[log]\nformat = "xml"', ("log", "format"), "one of json, console"),
    ("server = 1", ("server",), "expected a table [server], got integer 1"),
    ("[roster]\nauthorities = 1", ("roster", "authorities"), "expected a table"),
    ('[roster.authorities]\nnorth = 1', ("roster", "authorities", "north"), "got integer 1"),
    ('[roster.authorities]\nNorth = "x"', ("roster", "authorities", "North"), "party name"),
    ('[roster.authorities]\nnorth = "rsa:AAAA"', ("roster", "authorities", "north"), "ed25519:BASE64"),
    ('[roster.authorities]\nnorth = "ed25519:AAAA"', ("roster", "authorities", "north"), "32 bytes"),
    ('[roster.authorities]\nnorth = "ed25519:!!"', ("roster", "authorities", "north"), "base64"),
])
def test_wrong_values_are_refused(text: str, path: tuple[str, ...], expected: str) -> None:
    err = refused(text)
    assert err.path == path and err.file == "conf.toml"
    assert str(err).startswith(f"conf.toml: {'.'.join(path)}: ")
    assert expected in str(err)


def test_tls_half_set_is_refused() -> None:
    err = refused('[server]\ntls_cert = "c.pem"')
    assert err.path == ("server", "tls_key") and "set both, or neither" in str(err)
    err = refused('[server]\ntls_key = "k.pem"')
    assert err.path == ("server", "tls_cert")
    err = refused("", env={"HOTLINE_SERVER_TLS_KEY": "k.pem"})
    assert err.file == "environment variable HOTLINE_SERVER_TLS_KEY"


def test_bad_toml_names_file_and_position(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    path.write_text("[server]\nport = = 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, home=tmp_path, env={})
    assert info.value.file == str(path)
    assert re.search(r"invalid TOML: .*line 2, column \d+", str(info.value))
    assert str(info.value).startswith(str(path))
    assert isinstance(info.value.__cause__, Exception)


def test_duplicate_key_is_bad_toml() -> None:
    assert "invalid TOML" in str(refused("[log]\nlevel = \"info\"\nlevel = \"debug\""))


def test_unreadable_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path, home=tmp_path, env={})  # a directory
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[server]\nhost = "\xe9"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, home=tmp_path, env={})


@pytest.mark.parametrize(("var", "value", "expected"), [
    ("HOTLINE_SERVER_PORT", "abc", "expected an integer, got 'abc'"),
    ("HOTLINE_SERVER_PORT", "1.5", "expected an integer"),
    ("HOTLINE_SERVER_PORT", "70000", "between 0 and 65535"),
    ("HOTLINE_LIMITS_CLOCK_SKEW", "soon", "expected a number, got 'soon'"),
    ("HOTLINE_LIMITS_CLOCK_SKEW", "-1", "must be positive"),
    ("HOTLINE_LIMITS_HANDSHAKE_TIMEOUT", "inf", "finite"),
    ("HOTLINE_LOG_LEVEL", "DEBUG", "one of debug"),
    ("HOTLINE_STORE_PATH", "", "must not be empty"),
])
def test_bad_env_value_names_the_variable(var: str, value: str, expected: str) -> None:
    err = refused("", env={var: value})
    section, key = var.removeprefix("HOTLINE_").lower().split("_", 1)
    assert err.path == (section, key)
    assert err.file == f"environment variable {var}"
    assert str(err).startswith(f"environment variable {var}: {section}.{key}: ")
    assert expected in str(err)


def test_errors_are_hotline_errors_with_config_code() -> None:
    err = refused("[log]\nlevel = 1")
    assert isinstance(err, HotlineError) and err.code == "config.invalid"


def test_sections_built_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError, match=re.escape("server.port")):
        ServerSection(port=True)
    with pytest.raises(ConfigError, match=re.escape("server.tls_key")):
        ServerSection(tls_cert="c.pem")
    with pytest.raises(ConfigError, match=re.escape("roster.authorities.north")):
        RosterSection(authorities={"north": "ed25519:AAAA"})
    assert LimitsSection(clock_skew=5).clock_skew == 5.0  # widened like the parser does


# --- authority key text -----------------------------------------------------------------------

def test_authority_key_text_round_trips() -> None:
    key = PublicKey(bytes(range(32)))
    assert parse_authority_key(format_authority_key(key)) == key
    with pytest.raises(CryptoError):
        parse_authority_key("ed25519-" + format_authority_key(key))


# --- shipped example and deployment file ------------------------------------------------------

def test_specs_match_dataclass_fields() -> None:
    for section, cls in cfg._SECTION_TYPES.items():
        names = {f.name for f in dataclasses.fields(cls)}
        assert names == set(cfg._SPECS[section]) | set(cfg._TABLES.get(section, ())), section


def test_example_file_is_exactly_the_defaults(tmp_path: Path) -> None:
    assert load_config(EXAMPLE, home=tmp_path, env={}) == Config(home=tmp_path)


def test_example_file_documents_every_setting() -> None:
    text = EXAMPLE.read_text()
    for section, keys in cfg._SPECS.items():
        assert f"[{section}]" in text
        for key in keys:
            # Set, or (for optional settings with no default) shown commented out.
            assert re.search(rf"^(# )?{key} = ", text, re.MULTILINE), f"{section}.{key}"
    assert "[roster.authorities]" in text


def test_example_authorities_are_valid_when_uncommented(tmp_path: Path) -> None:
    text = re.sub(r"^# (\w+ = \"ed25519:)", r"\1", EXAMPLE.read_text(), flags=re.MULTILINE)
    text = re.sub(r"^# (tls_\w+ = )", r"\1", text, flags=re.MULTILINE)
    c = parse_config(text, file=str(EXAMPLE), home=tmp_path, env={})
    assert set(c.roster.authorities) == {"north", "south"}
    assert c.tls_cert == tmp_path / "tls/cert.pem"


def test_deployment_config_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    authorities = {"south": SOUTH, "north": NORTH, "mediator.un": NORTH}
    write_deployment_config(path, port=18470, authorities=authorities)
    text = path.read_text()
    assert text.startswith("#") and "[roster.authorities]" in text
    c = load_config(path, home=tmp_path, env={})
    assert c.server.port == 18470 and c.server.host == "127.0.0.1"
    assert dict(c.roster.authorities) == authorities
    assert c.db_path == tmp_path / "hotline.db" and c.roster_dir == tmp_path / "roster"
    assert c.limits == LimitsSection() and c.log == LogSection()


def test_deployment_config_with_no_authorities(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    write_deployment_config(path, port=0, authorities={})
    assert load_config(path, home=tmp_path, env={}) == Config(home=tmp_path, server=ServerSection(port=0))


@pytest.mark.parametrize(("port", "authorities", "expected"), [
    (70000, {}, "server.port"),
    (True, {}, "server.port"),
    (1, {"north": "ed25519:AAAA"}, "roster.authorities.north"),
    (1, {'x"\n[log]': NORTH}, "roster.authorities"),
])
def test_deployment_config_refuses_bad_input_and_writes_nothing(
        tmp_path: Path, port: int, authorities: dict[str, str], expected: str) -> None:
    path = tmp_path / "hotline.toml"
    with pytest.raises(ConfigError, match=re.escape(expected)):
        write_deployment_config(path, port=port, authorities=authorities)
    assert not path.exists()


# --- listening off loopback (issue 12) ---------------------------------------------------------

@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "localhost", "LOCALHOST",
                                  "localhost.", "::ffff:127.0.0.1"])
def test_loopback_hosts_need_no_tls(host: str) -> None:
    assert cfg.is_loopback_host(host)
    cfg.check_listen(ServerSection(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "2001:db8::1", "::ffff:192.0.2.7",
                                  "hotline.example.org", "localhost.example.org", "[::1]",
                                  "127.0.0.1.nip.io"])
def test_other_hosts_need_tls_or_insecure(host: str) -> None:
    assert not cfg.is_loopback_host(host)
    with pytest.raises(cfg.InsecureListen) as info:
        cfg.check_listen(ServerSection(host=host))
    assert info.value.code == "config.insecure_listen" and info.value.path == ("server", "host")
    assert "hotline init --tls" in info.value.message and "--insecure" in info.value.message
    cfg.check_listen(ServerSection(host=host, tls_cert="c.pem", tls_key="k.pem"))
    cfg.check_listen(ServerSection(host=host, insecure=True))


def test_insecure_is_a_boolean_from_file_and_environment() -> None:
    assert parse("").server.insecure is False
    assert parse("[server]\ninsecure = true").server.insecure is True
    assert parse("", {"HOTLINE_SERVER_INSECURE": "yes"}).server.insecure is True
    assert parse("[server]\ninsecure = true", {"HOTLINE_SERVER_INSECURE": "0"}).server.insecure is False
    for text in ('[server]\ninsecure = "true"', "[server]\ninsecure = 1"):
        assert "expected true or false" in refused(text).detail
    assert "expected true or false" in refused("", {"HOTLINE_SERVER_INSECURE": "maybe"}).detail
    assert "expected an integer, got boolean true" in refused("[server]\nport = true").detail


def test_deployment_config_with_tls_and_refused_off_loopback_without(tmp_path: Path) -> None:
    path = tmp_path / "hotline.toml"
    write_deployment_config(path, port=0, authorities={"north": NORTH}, host="0.0.0.0",
                            tls=("tls/server.pem", "tls/server.key"))
    written = load_config(path, home=tmp_path, env={})
    assert written.server.host == "0.0.0.0" and written.tls_cert == tmp_path / "tls" / "server.pem"
    path.unlink()
    with pytest.raises(cfg.InsecureListen):
        write_deployment_config(path, port=0, authorities={"north": NORTH}, host="0.0.0.0")
    assert not path.exists()


# -- with_authority_pin: `hotline server pin` edits one line of the operator's file -----------

def _pin_key() -> PublicKey:
    return SigningKey.from_seed(bytes([7]) * 32).public_key


def test_a_pin_is_added_and_every_other_line_kept(tmp_path: Path) -> None:
    text = ('# mine\n[server]\nport = 9000\n\n[roster.authorities]\n# pins\n\n'
            '[limits]\nmax_frame_bytes = 65536\n')
    result = with_authority_pin(text, party="north", key=_pin_key(), file="f", home=tmp_path)
    config = parse_config(result, file="f", home=tmp_path, env={})
    assert dict(config.roster.authorities) == {"north": format_authority_key(_pin_key())}
    assert config.server.port == 9000 and config.limits.max_frame_bytes == 65536
    assert result.startswith("# mine\n") and "# pins" in result


def test_a_pin_replaces_the_partys_line_and_a_missing_table_is_added(tmp_path: Path) -> None:
    old = 'ed25519:' + 'A' * 43 + '='
    text = f'[roster.authorities]\nnorth = "{old}"\n'
    result = with_authority_pin(text, party="north", key=_pin_key(), file="f", home=tmp_path)
    assert old not in result and result.count("north") == 1
    added = with_authority_pin("[server]\nport = 1\n", party="south", key=_pin_key(), file="f",
                               home=tmp_path)
    assert parse_config(added, file="f", home=tmp_path, env={}).roster.authorities == {
        "south": format_authority_key(_pin_key())}


def test_pins_written_as_an_inline_table_are_left_to_the_operator(tmp_path: Path) -> None:
    text = '[roster]\nauthorities = { south = "ed25519:' + 'A' * 43 + '=" }\n'
    with pytest.raises(ConfigError, match="by hand"):
        with_authority_pin(text, party="north", key=_pin_key(), file="f", home=tmp_path)
