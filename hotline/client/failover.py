"""Reaching a hotline server, one way for every client: ``Failover.connect`` opens a session to
the first of a profile's servers that answers, in profile order (``hotline send``, ``listen``,
``ack``, ``agent --once``), and ``Failover.stay_connected`` keeps an unattended client (the
agent, the console) connected, pacing its rounds with ``Backoff``.

A server that cannot be reached, or answers the handshake with something no hotline server sends,
is skipped for the next; a refused key (``AuthError``) or a fault of the profile itself
(``ConfigError``, e.g. a pinned CA for a ``ws://`` URL) ends it, since no other server or later
try mends those.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from hotline.client.backoff import Backoff
from hotline.client.connection import Client, ConnectError, unreachable
from hotline.client.profile import Profile
from hotline.errors import AuthError, ConfigError, HotlineError
from hotline.keys import Signer

Down = Callable[[str | None, str, float], None]  # (url of the lost line or None, why, retry in s)


class Failover:
    def __init__(self, profile: Profile, *, servers: tuple[str, ...] = (),
                 key: Signer | None = None, backoff: Backoff | None = None,
                 open_timeout: float = 10.0, trying: Callable[[str], None] | None = None) -> None:
        """``servers``: URLs given on the command line (else the profile's); ``trying(url)`` is
        told of each attempt."""
        self.profile = profile
        self.urls = profile.endpoints(servers)  # refuses ws:// when the profile pins a CA
        self.key = key if key is not None else profile.signing_key()
        self.backoff = backoff or Backoff()
        self.open_timeout = open_timeout
        self.trying = trying
        self._hint = None if servers else profile.path  # where the URLs tried came from
        self.url: str | None = None  # the server of the last session opened

    async def connect(self) -> Client:
        """A session with the first server that answers.

        Raises:
            ConnectError: none did (each URL and why, then what to try).
            AuthError: a server refused this key.
            ConfigError: the profile cannot reach a URL as it is (its pinned CA).
        """
        errors = []
        for url in self.urls:
            if self.trying is not None:
                self.trying(url)
            client = Client.for_profile(self.profile, self.key)
            try:
                await client.connect(url, ssl_context=self.profile.tls_for(url),
                                     open_timeout=self.open_timeout)
            except (AuthError, ConfigError):
                raise
            except ConnectError as exc:
                errors.append(exc.message)
                continue
            except HotlineError as exc:  # it answered, but not as a hotline server does
                await client.close()
                errors.append(f"{url}: {exc.message}")
                continue
            self.url = url
            return client
        raise unreachable(errors, profile=self._hint)

    async def stay_connected(self, serve: Callable[[Client], Awaitable[None]], down: Down) -> None:
        """Until cancelled: connect, ``serve`` the session until its line drops (``serve``
        returns or raises ConnectError), close it. After a dropped line, and after a round in
        which no server answered, wait the backoff's next delay (``down`` is told why); a
        session that opens resets the backoff.

        Raises:
            AuthError, ConfigError: as ``connect``; no retry mends them.
        """
        while True:
            try:
                client = await self.connect()
            except ConnectError as exc:
                await self._wait(down, None, exc.message)
                continue
            self.backoff.reset()
            reason = "closed"
            try:
                await serve(client)
            except ConnectError as exc:
                reason = exc.message
            finally:
                await client.close()
            if reason == "closed" and client.closed.done():
                reason = client.closed.result()
            await self._wait(down, self.url, reason)

    async def _wait(self, down: Down, url: str | None, reason: str) -> None:
        delay = self.backoff.next_delay()
        down(url, reason, delay)
        await asyncio.sleep(delay)
