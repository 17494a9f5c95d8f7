"""The deployment descriptor: what a member needs to join, published by the operator and signed
by the log key (docs/deployment.md). Pure: no files, no clock.

It names the deployment (origin), where its server listens, the log's checkpoint key (a C2SP note
verifier key), the TLS CA (if any) and each party's authority key. It travels as
``{"descriptor": {...}, "sig": SIGNATURE}``, the signature over the descriptor in domain
``hotline/v1/descriptor`` by the very key that ``log_key`` names: any edit breaks it, and a
forger must hold the log key. The signature only says the operator issued it; what makes a
member trust it is comparing the fingerprints (``fingerprints``) with each party and the
operator out of band.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from msgspec import Meta

from hotline.canonical import parse
from hotline.cli_options import WEBSOCKET, url_problem
from hotline.config import format_authority_key, parse_authority_key
from hotline.errorcodes import Code
from hotline.errors import CryptoError, HotlineError, LogError
from hotline.hybrid import MAX_KEY_TEXT, MemberKey
from hotline.keys import Domain, PublicKey, SignatureJSON, SigningKey, safety_number
from hotline.names import Name
from hotline.times import format_time, parse_time
from hotline.tlog.mldsa_note import MAX_VKEY_TEXT, MLDSANoteVerifier
from hotline.tlog.note import NoteVerifier
from hotline.typed import convert, to_json

MAX_DESCRIPTOR = 256 * 1024  # URLs, a CA certificate and up to 64 hybrid authority keys

Url = Annotated[str, Meta(min_length=1, max_length=512)]


class DescriptorError(HotlineError):
    """A descriptor that is malformed (``descriptor.invalid``) or whose signature is not the
    log key's (``descriptor.bad_signature``)."""

    code = Code.DESCRIPTOR_INVALID


class Descriptor(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True,
                 tag_field="type", tag="deployment"):
    """A deployment as a member joins it."""

    origin: Annotated[str, Meta(min_length=1, max_length=253)]
    servers: Annotated[list[Url], Meta(min_length=1, max_length=16)]
    log_key: Annotated[str, Meta(max_length=1024)]  # C2SP note verifier key text
    authorities: Annotated[dict[Name, Annotated[str, Meta(max_length=MAX_KEY_TEXT)]],
                           Meta(min_length=1, max_length=64)]  # party -> its key's text form
    issued: Annotated[str, Meta(max_length=40)]  # RFC 3339 UTC
    tls_ca: Annotated[str, Meta(max_length=16 * 1024)] | msgspec.UnsetType = msgspec.UNSET
    # the log's ML-DSA-65 note key, when its server signs checkpoints with one (members pin it)
    log_key_mldsa: Annotated[str, Meta(max_length=MAX_VKEY_TEXT)] | msgspec.UnsetType = msgspec.UNSET

    @property
    def log_verifier(self) -> NoteVerifier:
        return NoteVerifier.from_text(self.log_key)

    @property
    def mldsa_log_key(self) -> str | None:
        return None if isinstance(self.log_key_mldsa, msgspec.UnsetType) else self.log_key_mldsa

    @property
    def log_public_key(self) -> PublicKey:
        """The log key as a hotline key (what signs the descriptor)."""
        return PublicKey(self.log_verifier.public_key)

    def authority_keys(self) -> dict[str, MemberKey]:
        return {party: parse_authority_key(text) for party, text in self.authorities.items()}

    def ca_certificate(self) -> x509.Certificate | None:
        if isinstance(self.tls_ca, msgspec.UnsetType):
            return None
        return x509.load_pem_x509_certificate(self.tls_ca.encode("ascii"))


class Fingerprints(msgspec.Struct, frozen=True, kw_only=True):
    """What people compare out of band before trusting a descriptor."""

    authorities: dict[str, str]  # party -> safety number of its authority key
    log: str  # safety number of the log key's KEY_ID
    tls_ca: str | None  # SHA-256 of the CA certificate, AB:CD:..., if any


def ca_fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of a certificate as ``AB:CD:...`` (as ``hotline tls`` shows it)."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def log_fingerprint(log_key: str) -> str:
    """The safety number of a log key (note verifier key text): of its KEY_ID as a hotline key."""
    return safety_number(PublicKey(NoteVerifier.from_text(log_key).public_key).key_id)


def fingerprints(descriptor: Descriptor) -> Fingerprints:
    ca = descriptor.ca_certificate()
    return Fingerprints(
        authorities={party: safety_number(key.key_id)
                     for party, key in sorted(descriptor.authority_keys().items())},
        log=log_fingerprint(descriptor.log_key),
        tls_ca=None if ca is None else ca_fingerprint(ca))


def make_descriptor(*, origin: str, servers: list[str], log_key: SigningKey,
                    authorities: dict[str, MemberKey], issued: datetime,
                    tls_ca: str | None = None,
                    mldsa_log_key: MLDSANoteVerifier | None = None) -> dict[str, Any]:
    """The signed descriptor ``{"descriptor", "sig"}`` (JSON values), checked by
    ``verify_descriptor`` before it is returned: nothing is issued that a member would refuse.

    Raises:
        DescriptorError: a bad origin, URL, key or CA (``descriptor.invalid``).
    """
    verifier = NoteVerifier(name=origin, public_key=log_key.public_key.raw) \
        if _key_name_ok(origin) else None
    if verifier is None:
        raise DescriptorError(f"origin {origin!r} cannot name the log key (a C2SP key name: "
                              "no spaces or '+')")
    record = Descriptor(origin=origin, servers=list(servers), log_key=verifier.to_text(),
                        authorities={p: format_authority_key(k) for p, k in authorities.items()},
                        issued=format_time(issued),
                        tls_ca=msgspec.UNSET if tls_ca is None else tls_ca,
                        log_key_mldsa=msgspec.UNSET if mldsa_log_key is None
                        else mldsa_log_key.to_text())
    body = to_json(record)
    signed = {"descriptor": body, "sig": log_key.sign(domain=Domain.DESCRIPTOR, obj=body)}
    verify_descriptor(signed)
    return signed


def _key_name_ok(name: str) -> bool:
    try:
        NoteVerifier(name=name, public_key=bytes(32))
    except LogError:
        return False
    return True


def read_descriptor(data: bytes) -> Descriptor:
    """A descriptor file's bytes, verified (``verify_descriptor``); at most 64 KiB."""
    if len(data) > MAX_DESCRIPTOR:
        raise DescriptorError(f"larger than {MAX_DESCRIPTOR} bytes: not a deployment descriptor")
    try:
        value = parse(data, max_bytes=MAX_DESCRIPTOR)
    except HotlineError as exc:
        raise DescriptorError(f"not strict JSON ({exc.message})") from None
    return verify_descriptor(value)


def verify_descriptor(value: Any) -> Descriptor:
    """The descriptor in ``value`` (parsed JSON ``{"descriptor", "sig"}``), if the log key it
    names signed it and every field is well formed.

    Raises:
        DescriptorError: ``descriptor.invalid`` (malformed, oversized, a bad key, URL or CA)
            or ``descriptor.bad_signature`` (not signed by its own log key: edited or forged).
    """
    if not isinstance(value, dict) or set(value) != {"descriptor", "sig"}:
        raise DescriptorError('a deployment descriptor is {"descriptor": {...}, "sig": {...}} '
                              "(`hotline server descriptor` writes one)")
    body, sig = value["descriptor"], value["sig"]
    if not isinstance(body, dict) or body.get("type") != "deployment":
        raise DescriptorError('holds no deployment descriptor (type "deployment")')
    record = convert(body, Descriptor, what="descriptor", code=Code.DESCRIPTOR_INVALID,
                     error=DescriptorError)
    try:
        verifier = record.log_verifier
    except LogError as exc:
        raise DescriptorError(f"log_key: {exc.message}") from None
    try:
        PublicKey(verifier.public_key).verify(domain=Domain.DESCRIPTOR, obj=body,
                                              signature=_signature(sig))
    except CryptoError as exc:
        bad = exc.code in (Code.AUTH_BAD_SIGNATURE, Code.AUTH_WRONG_KEY)
        raise DescriptorError(
            "not signed by the log key it names: edited or forged; ask the operator for the "
            "descriptor again" if bad else f"sig: {exc.message}",
            code=Code.DESCRIPTOR_BAD_SIGNATURE if bad else Code.DESCRIPTOR_INVALID) from None
    if verifier.name != record.origin:
        raise DescriptorError(f"log_key is named {verifier.name!r}, not the origin "
                              f"{record.origin!r} (the server names its log key so)")
    if record.mldsa_log_key is not None:
        try:
            pq = MLDSANoteVerifier.from_text(record.mldsa_log_key)
        except LogError as exc:
            raise DescriptorError(f"log_key_mldsa: {exc.message}") from None
        if pq.name != record.origin:
            raise DescriptorError(f"log_key_mldsa is named {pq.name!r}, not the origin "
                                  f"{record.origin!r}")
    _check_fields(record)
    return record


def _signature(sig: Any) -> SignatureJSON:
    if not isinstance(sig, dict) or not all(isinstance(v, str) for v in sig.values()):
        raise DescriptorError('sig: a signature is {"alg", "key", "sig"}')
    return sig


def _check_fields(record: Descriptor) -> None:
    for party, text in record.authorities.items():
        try:
            parse_authority_key(text)
        except CryptoError as exc:
            raise DescriptorError(f"authorities.{party}: {exc.message}") from None
    try:
        parse_time(record.issued, field="issued")
    except HotlineError as exc:
        raise DescriptorError(exc.message) from None
    try:
        ca = record.ca_certificate()
    except (ValueError, UnicodeEncodeError):
        raise DescriptorError("tls_ca: not a PEM certificate") from None
    for url in record.servers:
        problem = url_problem(url, WEBSOCKET)
        if problem is not None:
            raise DescriptorError(f"servers: {url!r}: {problem}")
        if ca is not None and not url.lower().startswith("wss://"):
            raise DescriptorError(f"servers: {url!r}: a deployment with a TLS CA is reached "
                                  "over wss:// only")
