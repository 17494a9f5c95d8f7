"""Write tests/vectors/envelope_vectors.json: exact signed bytes and signatures of envelopes.

Everything comes from fixed seeds and fixed times, and Ed25519 is deterministic, so the output is
the same on every run. tests/unit/test_envelope.py recomputes each vector and compares it byte for
byte: any change to the envelope fields, JCS encoding, signature domain or key id format fails it.

Regenerate only for an intended, reviewed format change (and say so in the commit):

    python tests/vectors/make_envelope_vectors.py            # rewrite the file
    python tests/vectors/make_envelope_vectors.py --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hotline.canonical import canonical_bytes
from hotline.envelope import AckKind, Envelope, Kind, Precedence, ack_id, new_envelope_id
from hotline.keys import Domain, SigningKey, signed_bytes

OUT = Path(__file__).with_name("envelope_vectors.json")


def _case(name: str, seed: bytes, **fields: Any) -> dict[str, Any]:
    key = SigningKey.from_seed(seed)
    env = Envelope.build(**fields)
    obj = env.to_json()
    return {
        "name": name,
        "seed": seed.hex(),
        "public_key": key.public_key.to_json(),
        "key_id": key.key_id,
        "envelope": obj,
        "canonical": canonical_bytes(obj).decode("utf-8"),
        "signed_bytes_hex": signed_bytes(Domain.ENVELOPE, obj).hex(),
        "signature": env.sign(key),
    }


def build() -> dict[str, Any]:
    first_id = new_envelope_id(bytes(range(16)))
    cases = [
        _case(
            "message-ascii", bytes(range(32)),
            id=first_id, kind=Kind.MESSAGE, channel="north-south", sender="alice",
            template="incident-report", precedence=Precedence.FLASH,
            created=datetime(2026, 11, 27, 21, 0, 0, 123000, tzinfo=UTC),
            # Keys deliberately out of order: JCS sorts them.
            body={"summary": "unidentified track", "count": 3, "confirmed": False,
                  "area": {"lon": "24.9384", "lat": "60.1699"}, "note": None,
                  "max": 9007199254740991, "min": -9007199254740991},
        ),
        _case(
            "message-unicode-reply", bytes([0x42]) * 32,
            id=new_envelope_id(bytes([0xFF]) * 16), kind="message", channel="north-south",
            sender="bob", template="incident-report", precedence="IMMEDIATE",
            created=datetime(2026, 11, 27, 21, 0, 5, tzinfo=UTC),
            reply_to=first_id,
            # Escaping (quote, backslash, control characters), non-ASCII, non-BMP, and the
            # RFC 8785 §3.2.3 key-order trap (U+1F600 sorts before U+FB33 in UTF-16).
            body={"text": "\u041f\u0440\u0438\u0432\u0435\u0442 \"q\" \\ /\n\t\u0001\u007f",
                  "\ufb33": "dalet", "\U0001f600": "grin", "\u00e9": "e-acute",
                  "e\u0301": "e + combining acute", "list": ["\u20ac", 1, [], {}]},
        ),
        _case(
            "ack-understood", bytes([0x42]) * 32,
            id=ack_id(party="south", member="bob", reply_to=first_id, ack=AckKind.UNDERSTOOD),
            kind=Kind.ACK, channel="north-south", sender="bob", template="incident-report",
            precedence=Precedence.FLASH,
            created=datetime(2026, 11, 27, 21, 0, 7, 999999, tzinfo=UTC),
            reply_to=first_id, body={"ack": "understood"},
        ),
        _case(
            "heartbeat-empty-body", bytes(range(255, 223, -1)),
            id=new_envelope_id(bytes(16)), kind=Kind.HEARTBEAT, channel="north-south",
            sender="north-relay", template="heartbeat", precedence=Precedence.ROUTINE,
            created=datetime(2027, 1, 1, 0, 0, 0, tzinfo=UTC), body={},
        ),
    ]
    return {
        "description": "hotline envelopes: exact JCS bytes, signed bytes (DOMAIN || 0x0A || JCS) "
                       "and Ed25519 signatures from fixed seeds",
        "generator": "tests/vectors/make_envelope_vectors.py",
        "domain": Domain.ENVELOPE.value,
        "vectors": cases,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale: run {Path(__file__).name} to regenerate", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
