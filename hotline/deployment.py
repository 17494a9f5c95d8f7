"""``hotline init``: a complete demo deployment in one folder (docs/ARCHITECTURE.md "Command line"),
made by the ceremonies of a real one (docs/deployment.md), every role played in the one folder.

Every party gets an authority key, a liaison, an agent; the mediator (or the first party) also
enrolls the auditor. The channel ``north-south`` runs under an agreement every authority signed,
which names every party's agent as a witness and the auditor, each with the authority that
enrolls it. Private keys are encrypted when a passphrase is given (``HOTLINE_PASSPHRASE``; the
log key's ``HOTLINE_LOG_KEY_PASSPHRASE`` if set).
The signed documents land in ``roster/``, which the server logs at start: the operator's config
only says which authority key belongs to which party, and grants nothing by itself.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509

from hotline import tlsfiles
from hotline.canonical import dumps
from hotline.ceremony import enroll, new_authority, new_member_key
from hotline.clock import utc_now
from hotline.config import ServerSection, check_listen
from hotline.descriptor import verify_descriptor
from hotline.epochfiles import make_epoch_key
from hotline.epochkeys import DEFAULT_EPOCH, epoch_of
from hotline.errorcodes import Code
from hotline.errors import ConfigError
from hotline.hybrid import MemberSigningKey
from hotline.join import join_profile
from hotline.keyfiles import load_private_key
from hotline.keys import safety_number
from hotline.norms.agreement import AgreementDocument, CatalogueItem, Heartbeat, Named
from hotline.norms.files import load_templates
from hotline.operator_home import (
    LOG_KEY,
    URLS_FILE,
    home_descriptor,
    new_server_home,
    pin_authority,
    read_pin_file,
)
from hotline.publicfiles import read_member_key
from hotline.roster import Role, SignedDocument, sign_document
from hotline.times import format_time
from hotline.tlsca import parse_names

LIAISONS = {"north": "alice", "south": "bob", "mediator": "carol"}
AUDITOR = "audrey"
CHANNEL = "north-south"

# The demo agreement's pre-agreed messages (the ``preagreed`` template) in the spirit of the
# 1976 US-USSR protocol to the 1971 "Accidents Measures" Agreement: short messages whose full texts
# both sides keep, so that only the number and code word travel. The protocol's real texts were
# never published; these paraphrase situations of the 1971 agreement (Art. 2: an unexplained
# incident involving a possible nuclear detonation; Art. 3: missile warning systems) plus a test.
DEMO_CATALOGUE: tuple[CatalogueItem, ...] = (
    CatalogueItem(number=1, code="NUDET-INCIDENT", text={
        "en": "An accidental, unauthorized or other unexplained incident involving a possible "
              "detonation of one of our nuclear weapons has occurred. We are taking every measure "
              "to render the weapon harmless. Details will follow.",
        "ru": "Произошёл случайный, несанкционированный или иной необъяснимый инцидент, связанный "
              "с возможным взрывом одного из наших ядерных боеприпасов. Мы принимаем все меры, "
              "чтобы обезвредить боеприпас. Подробности последуют."}),
    CatalogueItem(number=2, code="UNIDENTIFIED-OBJECTS", text={
        "en": "Our missile warning systems have detected unidentified objects. We request "
              "immediate clarification.",
        "ru": "Наши системы предупреждения о ракетном нападении обнаружили неопознанные объекты. "
              "Просим незамедлительных разъяснений."}),
    CatalogueItem(number=3, code="WARNING-INTERFERENCE", text={
        "en": "We have detected signs of interference with our missile warning systems or with "
              "related communications facilities.",
        "ru": "Нами обнаружены признаки помех нашим системам предупреждения о ракетном нападении "
              "или связанным с ними средствам связи."}),
    CatalogueItem(number=4, code="FALSE-ALARM", text={
        "en": "A missile attack warning on our systems has been determined to be false. No action "
              "is being taken on it.",
        "ru": "Сигнал о ракетном нападении в наших системах признан ложным. Никаких действий по "
              "нему не предпринимается."}),
    CatalogueItem(number=5, code="UNPLANNED-LAUNCH", text={
        "en": "A missile launch from our territory was neither planned nor authorized. It is not an "
              "attack. Details will follow.",
        "ru": "Пуск ракеты с нашей территории не был ни запланирован, ни санкционирован. Это не "
              "нападение. Подробности последуют."}),
    CatalogueItem(number=6, code="LINK-TEST", text={
        "en": "Test message. No action is required.",
        "ru": "Проверочное сообщение. Никаких действий не требуется."}),
)


class NoDeployment(ConfigError):
    """The home holds no deployment (no config file): nothing is created there by the server."""

    code = Code.CONFIG_NO_DEPLOYMENT


def check_config_file(home: Path, path: Path) -> None:
    """Refuse to serve without the deployment's config file (``hotline init`` writes it): a
    server started on a wrong or empty home must say so, not create a database there.

    Raises:
        NoDeployment: ``path`` is not a file.
    """
    if path.is_file():
        return
    flag = f" --home {home}" if str(home) != "hotline-data" else ""
    if path == home / "hotline.toml":
        raise NoDeployment(f"no deployment in {home}/ (no hotline.toml): make one with `hotline"
                           f"{flag} init`, or give --home (HOTLINE_HOME) the folder that has one",
                           file=str(path))
    raise NoDeployment("no such config file (`hotline init` writes HOME/hotline.toml)",
                       file=str(path))


@dataclass
class Deployment:
    home: Path
    port: int
    origin: str
    members: dict[str, tuple[str, Role]] = field(default_factory=dict)  # name -> (party, role)
    servers: list[str] = field(default_factory=list)  # the profiles' server URLs
    tls_ca: x509.Certificate | None = None  # the deployment CA, with --tls
    tls_names: list[str] = field(default_factory=list)  # what the server certificate names


def _write_signed(path: Path, signed: SignedDocument) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dumps(signed.to_json()) + "\n")


def init_deployment(home: Path, *, parties: list[str], heartbeat_interval: int, port: int,
                    origin: str, force: bool, now: datetime | None = None,
                    passphrase: bytes | None = None, log_passphrase: bytes | None = None,
                    host: str = "127.0.0.1", tls_names: list[str] | None = None,
                    hybrid: bool = False) -> Deployment:
    """The whole deployment in ``home``, made by the same ceremonies a real one takes, each
    party, member and the operator playing its part in the one folder: ``server new``,
    ``authority new`` and ``server pin`` (after comparing the safety number), ``keys new`` and
    ``authority enroll`` for every member, ``server descriptor`` and ``join`` for every member
    (comparing every fingerprint), and the agreement signed by every authority.

    Every private key is encrypted with ``passphrase`` when given; the log key with
    ``log_passphrase``, or else ``passphrase`` (the TLS CA's key with ``passphrase``; the
    server's TLS key never: the server reads it at each start).

    With ``tls_names``, a deployment CA and a server certificate for those names (the first is
    the one the profiles connect to) are made under ``HOME/tls``; the server serves wss://, and
    every profile pins the CA. Without, the server listens on ``host`` in plain text, which must
    then be loopback.

    With ``hybrid``, every authority and every liaison and auditor key is Ed25519 + ML-DSA-65
    (roster documents, agreements and envelopes carry both signatures); agents keep Ed25519 keys,
    since they cosign checkpoints in C2SP's Ed25519 form.

    Raises:
        ConfigError: bad parties, an existing deployment without ``force``, a bad TLS name
            (``TlsError``) or a host off loopback without TLS (``InsecureListen``); each before
            anything is written.
    """
    if len(parties) < 2 or len(set(parties)) != len(parties):
        raise ConfigError("--parties needs at least two distinct party names")
    names = parse_names(tls_names) if tls_names is not None else None
    tls = (tlsfiles.SERVER_CERT, tlsfiles.SERVER_KEY) if names is not None else None
    check_listen(ServerSection(host=host, port=port, tls_cert=tls[0] if tls else None,
                               tls_key=tls[1] if tls else None))
    if (home / "hotline.toml").exists():
        if not force:
            raise ConfigError(f"{home} already holds a deployment; use --force to replace it",
                              file=str(home / "hotline.toml"))
        for sub in ("keys", "roster", "profiles", "protocols", "tls"):
            shutil.rmtree(home / sub, ignore_errors=True)
        for old in (*home.glob("hotline.db*"), home / "hotline.toml", home / "descriptor.json",
                    home / URLS_FILE):
            old.unlink(missing_ok=True)
    now = now or utc_now()
    not_before, not_after = now - timedelta(minutes=5), now + timedelta(days=365)
    server = new_server_home(home, origin=origin, host=host, port=port, tls_names=tls_names,
                             urls=[], now=now, log_passphrase=log_passphrase or passphrase,
                             tls_passphrase=passphrase)
    deployment = Deployment(home, port, origin, servers=server.servers, tls_ca=server.tls_ca,
                            tls_names=server.tls_names)
    authorities: dict[str, MemberSigningKey] = {}
    for party in parties:
        authorities[party], _, public = new_authority(home, party, passphrase, hybrid=hybrid)
        pin_authority(home, party=party, key=read_pin_file(public, party=party),
                      expect=safety_number(authorities[party].key_id))
    auditor_party = "mediator" if "mediator" in parties else parties[0]
    for party in parties:
        deployment.members[LIAISONS.get(party, f"{party}-liaison")] = (party, Role.LIAISON)
        deployment.members[f"{party}-agent"] = (party, Role.AGENT)
    deployment.members[AUDITOR] = (auditor_party, Role.AUDITOR)
    current = epoch_of(now, DEFAULT_EPOCH)
    for n, (name, (party, role)) in enumerate(deployment.members.items(), start=1):
        key, _, public = new_member_key(home, name, passphrase,
                                        hybrid=hybrid and role is not Role.AGENT)
        signed = enroll(authorities[party], party, name, role, read_member_key(public).public_key,
                        not_before, not_after)
        _write_signed(home / "roster" / f"{n:02d}-enroll-{name}.json", signed)
        if role is Role.LIAISON:  # `keys renew`: this epoch's key and the next one's, logged at start
            for epoch in (current, current + 1):
                make_epoch_key(home, party=party, member=name, signer=key, epoch=epoch,
                               length=DEFAULT_EPOCH, passphrase=passphrase)

    log_key = load_private_key(home / LOG_KEY, log_passphrase or passphrase)
    published = home_descriptor(home, log_key=log_key, urls=[], now=now)
    (home / "descriptor.json").write_text(dumps(published) + "\n", encoding="utf-8")
    descriptor = verify_descriptor(published)
    expect = {party: safety_number(key.key_id) for party, key in authorities.items()}
    for name, (party, role) in deployment.members.items():
        join_profile(home, descriptor=descriptor, name=name, party=party, role=role,
                     passphrase=passphrase, expect=expect)

    templates = load_templates(home / "protocols")
    agreement = AgreementDocument(
        channel=CHANNEL, version=1,
        parties=[Named(p, authorities[p].key_id) for p in parties],
        templates=[t.ref() for t in sorted(templates, key=lambda t: t.id)],
        heartbeat=Heartbeat(interval=heartbeat_interval, grace=heartbeat_interval),
        auditors=[Named(AUDITOR, authorities[auditor_party].key_id)],
        witnesses=[Named(f"{p}-agent", authorities[p].key_id) for p in parties],
        effective=format_time(now), catalogue=list(DEMO_CATALOGUE))
    signed = sign_document(agreement, *(authorities[p] for p in parties))  # `agreement sign`, each
    _write_signed(home / "roster" / f"90-agreement-{CHANNEL}-v1.json", signed)
    return deployment
