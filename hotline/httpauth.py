"""How an HTTP caller proves which member it is (pure: time comes in as an argument).

``Authorization: Hotline key="KEY_ID", time="RFC3339", sig="BASE64"`` where ``sig`` is the
member's Ed25519 signature (a hybrid key adds ``, pq="BASE64"``, its ML-DSA-65 half: both are
checked), in the ``hotline/v1/http`` domain, over
``{"method", "path", "query", "origin", "time", "key"}`` (``query`` as sent, after ``?``).
The server accepts ``time`` within its clock-skew bound. Signing the origin, method, path and
query binds the header to one request on one deployment; a captured header can be replayed only
for the same read, within the skew window — the API it guards is read-only.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from hotline.errorcodes import Code
from hotline.errors import AuthError, CryptoError, WireError
from hotline.hybrid import ALG_HYBRID, ALG_MLDSA65, HybridPublicKey
from hotline.keys import ALG_ED25519, Domain, Signer, Verifier
from hotline.times import format_time, parse_time

SCHEME = "Hotline"
_HEADER = re.compile(
    r'Hotline key="([A-Za-z0-9_-]{1,64})", time="([^"]{1,40})", sig="([A-Za-z0-9+/=]{1,200})"'
    r'(?:, pq="([A-Za-z0-9+/=]{1,6000})")?')


def _payload(*, method: str, path: str, query: str, origin: str, time: str, key: str) -> dict[str, str]:
    return {"method": method.upper(), "path": path, "query": query, "origin": origin, "time": time,
            "key": key}


def sign_request(key: Signer, *, method: str, path: str, query: str, origin: str,
                 now: datetime) -> str:
    """The ``Authorization`` header value for one request."""
    time = format_time(now)
    payload = _payload(method=method, path=path, query=query, origin=origin, time=time,
                       key=key.key_id)
    sig = key.sign(domain=Domain.HTTP, obj=payload)
    if sig["alg"] == ALG_HYBRID:
        return (f'{SCHEME} key="{key.key_id}", time="{time}", sig="{sig[ALG_ED25519]}", '
                f'pq="{sig[ALG_MLDSA65]}"')
    return f'{SCHEME} key="{key.key_id}", time="{time}", sig="{sig["sig"]}"'


def parse_header(header: str | None) -> tuple[str, str, str, str | None]:
    """``(key_id, time, sig, pq)``; AuthError ``auth.missing`` / ``auth.malformed``."""
    if not header:
        raise AuthError('this endpoint needs an "Authorization: Hotline ..." header', code=Code.AUTH_MISSING)
    match = _HEADER.fullmatch(header.strip())
    if match is None:
        raise AuthError('Authorization must be: Hotline key="KEY_ID", time="RFC3339", sig="BASE64"',
                        code=Code.AUTH_MALFORMED)
    return match.group(1), match.group(2), match.group(3), match.group(4)


def verify_request(header: str | None, *, key: Verifier, method: str, path: str, query: str,
                   origin: str, now: datetime, skew: timedelta) -> None:
    """Check a header already matched to ``key`` (via ``parse_header``'s key id).

    Raises:
        AuthError: ``auth.bad_signature``, ``auth.clock_skew``, ``auth.malformed``.
    """
    key_id, time, sig, pq = parse_header(header)
    try:
        moment = parse_time(time, field="Authorization time")
    except WireError as exc:
        raise AuthError(exc.message, code=Code.AUTH_MALFORMED) from exc
    if abs(moment - now) > skew:
        raise AuthError("Authorization time is outside the allowed clock skew", code=Code.AUTH_CLOCK_SKEW)
    payload = _payload(method=method, path=path, query=query, origin=origin, time=time, key=key_id)
    try:
        key.verify(domain=Domain.HTTP, obj=payload, signature=(
            {"alg": ALG_HYBRID, "key": key_id, ALG_ED25519: sig, ALG_MLDSA65: pq or ""}
            if isinstance(key, HybridPublicKey) else {"alg": ALG_ED25519, "key": key_id, "sig": sig}))
    except CryptoError as exc:
        raise AuthError(f"Authorization: {exc.message}", code=Code.AUTH_BAD_SIGNATURE) from exc
