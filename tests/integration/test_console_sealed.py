"""The console with sealed fields (issue 16): its form says who will read each sealed field and
seals them to the readers' keys, proven in the log, before the envelope is signed and stored; it
opens what its member may read, shows the rest as sealed with who may read it, and reports a
sealed field that breaks its template as a signed ``violation``. Real server, real sockets, real
keys, driven headless by Textual's pilot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import Input

from hotline.ceremony import create_private
from hotline.client.outbox import Outbox
from hotline.client.profile import Profile
from hotline.client.sealed_view import SealedView
from hotline.client.sealer import keys_of, readers_for
from hotline.clock import utc_now
from hotline.console.app import ConsoleApp
from hotline.console.link import Link
from hotline.console.screens import ComposeScreen
from hotline.envelope import Kind
from hotline.epochfiles import epoch_folder
from hotline.epochkeys import DEFAULT_EPOCH, EpochPrivateKey, epoch_of
from hotline.errors import HotlineError
from hotline.norms.files import load_templates
from tests.conftest import running_server, without_epoch_keys
from tests.integration.test_console import connected, console, messages_text, next_envelope, until
from tests.integration.test_sealed_fields import MARKER, add_sealed_template

PASSPHRASES = {"alice": b"alice's passphrase", "bob": b"bob's passphrase", "carol": None}


@pytest.fixture
def sealed_home(home: Path) -> Path:
    """The demo with the assessment template agreed; the epoch keys ``init`` made for this epoch
    and the next (logged at the server's first start) kept, as on each member's machine,
    encrypted under its passphrase."""
    add_sealed_template(home)
    for name, passphrase in PASSPHRASES.items():
        if passphrase is not None:
            for path in sorted(epoch_folder(home).glob(f"{name}-*.pem")):
                key = EpochPrivateKey.from_pem(path.read_bytes())
                path.unlink()
                create_private(path, key, passphrase)
    return home


def view_of(home: Path, name: str) -> SealedView:
    profile = Profile.load(home, name)
    return SealedView(home, party=profile.party, member=name, passphrase=PASSPHRASES[name],
                      templates=load_templates(home / "protocols"))


def sealed_console(home: Path, url: str, name: str) -> ConsoleApp:
    return console(home, url, name, sealed_view=view_of(home, name))


async def test_the_console_seals_what_it_sends(sealed_home: Path) -> None:
    home = sealed_home
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        bob = await server.client("bob")
        app = sealed_console(home, server.url, "alice")
        async with app.run_test(size=(120, 40)) as pilot:
            await connected(pilot, app)
            app.action_compose("assessment")
            await until(pilot, lambda: isinstance(app.screen, ComposeScreen)
                        and bool(app.screen.query("#field-0")), "the assessment form")
            form = app.screen
            assert isinstance(form, ComposeScreen)
            hints = {f.path: f.hint for f in form.form.fields}
            assert hints["assessment"].startswith("SEALED: only mediator, north, south can read it")
            assert hints["private_note"].startswith("SEALED: only mediator can read it")
            assert "SEALED" not in hints["subject"]
            paths = [f.path for f in form.form.fields]
            for path, value in (("subject", "dawn"), ("assessment", f"we hold {MARKER}"),
                                ("private_note", f"for the mediator {MARKER}")):
                form.query_one(f"#field-{paths.index(path)}", Input).value = value
            await pilot.press("ctrl+s")
            got = await next_envelope(bob, Kind.MESSAGE, "assessment")
            await until(pilot, lambda: any(f"[{got.index}]" in m for m in messages_text(app)),
                        "alice's message as logged")
            # alice reads her own message whole: she kept what she sealed in her read store
            [line] = [m for m in messages_text(app) if f"[{got.index}]" in m]
            assert f"we hold {MARKER}" in line
            mine = app.state.find(got.envelope.id)
            assert mine is not None and mine.closed == frozenset()
            details = app._details_text(mine).plain
            assert "sealed private_note: opened here" in details
            assert "sealed to carol (mediator)" in details

        # The host holds only digests and boxes; bob opens exactly the assessment.
        assert got.envelope.sealed is not None and MARKER not in json.dumps(got.entry.envelope.to_json())
        opened = view_of(home, "bob").opened(got.envelope)
        assert set(opened) == {"assessment"} and opened["assessment"].value == f"we hold {MARKER}"
        for path in home.glob("hotline.db*"):
            assert MARKER.encode() not in path.read_bytes(), path

        # Offline, the console seals only to keys it proved on an earlier connection.
        profile = Profile.load(home, "alice")
        outbox = Outbox.open(home / "state" / "alice.outbox.db")
        try:
            link = Link(profile=profile, key=profile.signing_key(), outbox=outbox, emit=lambda e: None)
            template = load_templates(home / "protocols").latest("assessment")
            assert template is not None and len(link.proven) == 6  # alice, bob, carol: now and next
            envelope = link.build(channel="north-south", template="assessment", precedence="ROUTINE",
                                  body={"subject": "s", "assessment": "offline"})
            assert (await link.seal(envelope, template)).sealed is not None
            assert link.roster is not None  # one of the keys it seals to now forgotten:
            link.proven.pop(keys_of(readers_for(link.roster, envelope, template))[0].key_id)
            with pytest.raises(HotlineError) as refused:
                await link.seal(envelope, template)
            assert refused.value.code == "seal.unlogged_key" and "line is down" in refused.value.message
        finally:
            outbox.close()


async def test_the_console_opens_what_it_may_read_and_reports_a_violation(sealed_home: Path) -> None:
    home = sealed_home
    template = load_templates(home / "protocols").latest("assessment")
    assert template is not None
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        alice = await server.client("alice")
        good = await alice.submit_envelope(await alice.sealed_envelope(
            channel="north-south", template=template, log_key=server.log_key,
            body={"subject": "good", "assessment": f"fine {MARKER}", "private_note": "n"}))
        bad = await alice.submit_envelope(await alice.sealed_envelope(
            channel="north-south", template=template, log_key=server.log_key,
            body={"subject": "bad", "assessment": ""}))  # the template wants one character
        app = sealed_console(home, server.url, "bob")
        async with app.run_test(size=(120, 40)) as pilot:
            await connected(pilot, app)
            await until(pilot, lambda: any(f"[{bad.index}]" in m for m in messages_text(app)),
                        "both messages")
            [line] = [m for m in messages_text(app) if f"[{good.index}]" in m]
            assert f"fine {MARKER}" in line and "[sealed: readable by mediator]" in line
            message = app.state.find(good.id)
            assert message is not None and message.closed == frozenset({"private_note"})
            details = app._details_text(message).plain
            assert "sealed assessment: opened here, matches the signed digest" in details
            assert "sealed private_note: SEALED, not readable here" in details

            report = await next_envelope(alice, Kind.VIOLATION)  # bob's console reported it
            assert report.envelope.reply_to == bad.id and report.envelope.sender == "bob"
            assert report.envelope.body["field"] == "assessment"
            await until(pilot, lambda: any(a.kind == "violation" for a in app.state.alerts),
                        "the violation on bob's own console")
            flagged = app.state.find(bad.id)
            assert flagged is not None and [v.field for v in flagged.violations] == ["assessment"]


async def test_the_console_keeps_its_members_keys_current(sealed_home: Path) -> None:
    """A liaison's console publishes its keys for this epoch and the next by itself on
    connecting (made on its machine, encrypted under the passphrase), so senders can seal to it
    before its officer does anything; the next connection finds them current."""
    home = sealed_home
    without_epoch_keys(home)  # as for a liaison whose keys init did not make
    async with running_server(home, HOTLINE_TLOG_CHECKPOINT_DELAY="0.05") as server:
        def bobs() -> list[int]:
            return sorted(epoch for (length, epoch), keys in server.hotline.roster.epoch_keys.items()
                          if ("south", "bob") in keys)

        app = sealed_console(home, server.url, "bob")
        async with app.run_test(size=(120, 40)) as pilot:
            await connected(pilot, app)
            await until(pilot, lambda: len(bobs()) == 2, "bob's keys to be logged")
        now = epoch_of(utc_now(), DEFAULT_EPOCH)
        assert bobs() in ([now, now + 1], [now - 1, now])  # midnight may pass meanwhile
        held = sorted(p.name for p in (home / "keys" / "epoch").glob("bob-*.pem"))
        assert held == [f"bob-24h-{e}.pem" for e in bobs()]
        assert b"ENCRYPTED" in (home / "keys" / "epoch" / held[0]).read_bytes()

        alice = await server.client("alice")
        template = load_templates(home / "protocols").latest("assessment")
        assert template is not None
        with pytest.raises(HotlineError) as refused:  # carol (the mediator) has no key yet
            await alice.sealed_envelope(channel="north-south", template=template,
                                        log_key=server.log_key,
                                        body={"subject": "s", "assessment": "a", "private_note": "n"})
        assert refused.value.code == "seal.no_reader"
        sent = await alice.sealed_envelope(channel="north-south", template=template,
                                           log_key=server.log_key, body={"subject": "s", "assessment": "a"})
        assert sent.sealed is not None and [b.member for b in sent.sealed.boxes] == ["bob"]

        again = sealed_console(home, server.url, "bob")
        async with again.run_test(size=(120, 40)) as pilot:
            await connected(pilot, again)
            renewed = await again.link.renew_keys(again.templates)
        assert renewed is not None and renewed.published == () and renewed.problems == ()
        assert len(bobs()) == 2
