"""``hotline.ahead``: a signature checked in a thread gives the inline outcome, and is
taken only for the key it was checked with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from hotline.ahead import Verifiers
from hotline.envelope import Envelope
from hotline.errors import CryptoError
from hotline.keys import SigningKey

KEY, OTHER = SigningKey.generate(), SigningKey.generate()
ENVELOPE = Envelope.build(id="A" * 22, kind="message", channel="north-south", sender="alice",
                          template="message", precedence="ROUTINE", created=datetime.now(UTC),
                          body={"lang": "en"})


@pytest.fixture
def verifiers() -> Iterator[Verifiers]:
    pool = Verifiers(2)
    yield pool
    pool.close()


def refusal(key: SigningKey, sig: dict[str, str]) -> tuple[str, str]:
    with pytest.raises(CryptoError) as inline:
        ENVELOPE.verify(key.public_key, sig)
    return inline.value.code, inline.value.message


async def test_the_threads_refuse_as_inline(verifiers: Verifiers) -> None:
    for sig in (ENVELOPE.sign(OTHER), {**ENVELOPE.sign(KEY), "sig": "AAAA"}):
        early = verifiers.start(ENVELOPE, KEY.public_key, sig)
        assert early is not None
        await early.settled()
        with pytest.raises(CryptoError) as ahead:
            early.verify(ENVELOPE, KEY.public_key, sig)
        assert (ahead.value.code, ahead.value.message) == refusal(KEY, sig)
    good = verifiers.start(ENVELOPE, KEY.public_key, ENVELOPE.sign(KEY))
    assert good is not None
    await good.settled()
    good.verify(ENVELOPE, KEY.public_key, ENVELOPE.sign(KEY))
    assert verifiers.started == 3


async def test_an_outcome_is_taken_only_for_the_key_it_was_checked_with(verifiers: Verifiers) -> None:
    """The roster changed between the thread's check and the turn: the turn's key decides."""
    sig = ENVELOPE.sign(KEY)
    early = verifiers.start(ENVELOPE, KEY.public_key, sig)
    assert early is not None
    await early.settled()
    with pytest.raises(CryptoError) as refused:
        early.verify(ENVELOPE, OTHER.public_key, sig)  # verified with KEY, but the turn has OTHER
    assert refused.value.code == "auth.wrong_key"


def test_without_threads_nothing_starts() -> None:
    assert Verifiers(0).start(ENVELOPE, KEY.public_key, ENVELOPE.sign(KEY)) is None
