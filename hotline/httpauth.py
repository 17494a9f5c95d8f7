"""How an HTTP caller proves which member it is (pure: time comes in as an argument).

``Authorization: Hotline key="KEY_ID", time="RFC3339", sig="BASE64"`` where ``sig`` is the
member's Ed25519 signature, in the ``hotline/v1/http`` domain, over
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
from hotline.keys import Domain, PublicKey, SigningKey
from hotline.times import format_time, parse_time

SCHEME = "Hotline"
_HEADER = re.compile(
    r'Hotline key="([A-Za-z0-9_-]{1,64})", time="([^"]{1,40})", sig="([A-Za-z0-9+/=]{1,200})"')


def _payload(*, method: str, path: str, query: str, origin: str, time: str, key: str) -> dict[str, str]:
    return {"method": method.upper(), "path": path, "query": query, "origin": origin, "time": time,
            "key": key}


def sign_request(key: SigningKey, *, method: str, path: str, query: str, origin: str,
                 now: datetime) -> str:
    """The ``Authorization`` header value for one request."""
    time = format_time(now)
    payload = _payload(method=method, path=path, query=query, origin=origin, time=time,
                       key=key.key_id)
    sig = key.sign(domain=Domain.HTTP, obj=payload)["sig"]
    return f'{SCHEME} key="{key.key_id}", time="{time}", sig="{sig}"'


def parse_header(header: str | None) -> tuple[str, str, str]:
    """``(key_id, time, sig)``; AuthError ``auth.missing`` / ``auth.malformed``."""
    if not header:
        raise AuthError('this endpoint needs an "Authorization: Hotline ..." header', code=Code.AUTH_MISSING)
    match = _HEADER.fullmatch(header.strip())
    if match is None:
        raise AuthError('Authorization must be: Hotline key="KEY_ID", time="RFC3339", sig="BASE64"',
                        code=Code.AUTH_MALFORMED)
    return match.group(1), match.group(2), match.group(3)


def verify_request(header: str | None, *, key: PublicKey, method: str, path: str, query: str,
                   origin: str, now: datetime, skew: timedelta) -> None:
    """Check a header already matched to ``key`` (via ``parse_header``'s key id).

    Raises:
        AuthError: ``auth.bad_signature``, ``auth.clock_skew``, ``auth.malformed``.
    """
    key_id, time, sig = parse_header(header)
    try:
        moment = parse_time(time, field="Authorization time")
    except WireError as exc:
        raise AuthError(exc.message, code=Code.AUTH_MALFORMED) from exc
    if abs(moment - now) > skew:
        raise AuthError("Authorization time is outside the allowed clock skew", code=Code.AUTH_CLOCK_SKEW)
    payload = _payload(method=method, path=path, query=query, origin=origin, time=time, key=key_id)
    try:
        key.verify(domain=Domain.HTTP, obj=payload,
                   signature={"alg": "ed25519", "key": key_id, "sig": sig})
    except CryptoError as exc:
        raise AuthError(f"Authorization: {exc.message}", code=Code.AUTH_BAD_SIGNATURE) from exc
