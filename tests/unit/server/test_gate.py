"""The connection gate's caps and eviction order, on stand-in transports (no sockets)."""

from __future__ import annotations

import asyncio
from typing import Any

from hotline.server.gate import Gate, address_key, is_loopback


class Transport(asyncio.Transport):
    def __init__(self, host: str) -> None:
        super().__init__()
        self.host, self.aborted = host, False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.host, 40000) if name == "peername" else default

    def abort(self) -> None:
        self.aborted = True


def test_addresses_are_counted_per_ipv4_address_and_ipv6_slash_64() -> None:
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::9") == "2001:db8:1:2::/64"
    assert is_loopback("127.0.0.5") and is_loopback("::1") and not is_loopback("192.0.2.7")


async def test_a_flood_displaces_itself_and_members_leave_the_pool() -> None:
    gate = Gate(max_members=1, max_anonymous=4, max_per_address=2, request_timeout=60)
    flood = [Transport("10.0.0.1") for _ in range(3)]
    gated = [gate.admit(t) for t in flood]
    assert [t.aborted for t in flood] == [True, False, False]  # the oldest of its own address
    gate.release(gated[0])  # its connection_lost comes later: counted once
    assert (gate.anonymous("10.0.0.1"), gate.anonymous_total) == (2, 2)

    others = [Transport("10.0.0.2"), Transport("10.0.0.3")]
    for t in others:
        gate.admit(t)
    newcomer = Transport("10.0.0.4")  # the total is reached: the most crowded address pays
    gate.admit(newcomer)
    assert flood[1].aborted and not any(t.aborted for t in others) and not newcomer.aborted
    assert gate.anonymous_total == 4

    assert gate.promote(newcomer) and gate.members == 1 and gate.anonymous_total == 3
    second = Transport("10.0.0.5")
    gate.admit(second)
    assert not gate.promote(second)  # the members' cap
    assert gate.refused["member connection limit reached"] == 1


async def test_a_closed_gate_cuts_every_connection_and_any_that_arrives_after() -> None:
    """The server stops: no socket outlives it, not even one accepted as its listener closed."""
    gate = Gate(max_members=4, max_anonymous=4, max_per_address=4, request_timeout=60)
    anonymous, member = Transport("10.0.0.1"), Transport("10.0.0.2")
    gate.admit(anonymous)
    gate.admit(member)
    assert gate.promote(member)
    gate.close()
    assert anonymous.aborted and member.aborted
    late = Transport("10.0.0.3")
    gate.admit(late)
    assert late.aborted
