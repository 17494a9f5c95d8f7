"""The liaison console: a Textual application for a duty officer (``hotline console --as NAME``).

Theory of operation:

- ``Link`` (``hotline.console.link``) keeps the connection up in a worker on the app's own event
  loop and reports everything as events; ``on_link_event`` folds each into the pure view-model
  (``hotline.console.state``) and redraws what changed. The UI never waits on the network.
- Screen, top to bottom: the alert line (channel DOWN, overdue, refused, unverified, log; ``x``
  dismisses; nothing is ever shown as a toast over the screen), then the channel list (health
  and heartbeat age, unread and owed counts) beside the selected channel's messages (newest at
  the bottom; the line above them names the next acknowledgement owed with its countdown), the
  notice line (the answer to the last key), the status bar (line state, endpoint, own identity,
  safety number, outbox) and the key bar, one line fitted to the width.
- Every received message gets an automatic ``received`` ack (once: ack ids are derived, and the
  outbox remembers them); ``u`` sends ``understood``. During a replay the automatic acks wait for
  the replay's end, so an ack already in the log is not sent again.
- A second of ``tick`` redraws countdowns and heartbeat ages; the clock is injectable for tests.
- Every ``prove_every`` seconds, while some logged message is not yet proven in the log and seen
  by every witness (else every ``WATCH_IDLE``), one round of the log watch runs
  (``hotline.client.proofs``, newest messages of the selected channel first); the verified head
  is remembered in the outbox file.
- Before the first connection, the roster an earlier run verified (``Link``) gives the channels,
  their catalogues and forms, so the officer can compose with the line down.
"""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console
from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from hotline.client.attaching import Attached, SaveClash, save_attachments, stage
from hotline.client.backoff import Backoff
from hotline.client.connection import Client
from hotline.client.epochrenewal import RENEW_EVERY
from hotline.client.logapi import LogClient, http_base
from hotline.client.outbox import Outbox, OutboxItem, OutboxState, StagedFile
from hotline.client.profile import Profile
from hotline.client.proofs import prove_round, witnesses_of
from hotline.client.sealed_view import SealedView
from hotline.client.sealer import unreadable, unreadable_lines
from hotline.clock import utc_now
from hotline.console import render
from hotline.console.forms import Form, FormError, build_form, envelope_from_form, file_paths
from hotline.console.link import (
    EntryEvent,
    Event,
    HealthEvent,
    Link,
    LinkState,
    LinkStatus,
    OutboxEvent,
    ReceiptEvent,
    ResumedEvent,
    Welcomed,
)
from hotline.console.screens import (
    ComposeScreen,
    ScreenReady,
    TemplatePicker,
    TextScreen,
    details_text,
)
from hotline.console.state import ConsoleState, Delivery, Message, both_times
from hotline.display import shown
from hotline.entries import Entry, EnvelopeEntry, channel_of
from hotline.envelope import AckKind, Envelope, Kind, Precedence, ack_id
from hotline.errors import HotlineError
from hotline.keys import Signer, safety_number
from hotline.logwatch import Head, LogWatch
from hotline.norms.obligations import own_party_ack
from hotline.norms.rules import Context, Replied
from hotline.norms.template import NamedAttachment, Template
from hotline.norms.templateset import TemplateSet
from hotline.roster import Roster

HELP = """\
Keys (the bar at the bottom lists them too):
  n          compose a free-text message
  t          compose any agreed template (its form)
  p          send a pre-agreed message from the catalogue
  r          reply to the selected message
  u          acknowledge the selected message 'understood'
  d, Enter   details: envelope, signature, log index, proof, cosignatures,
             attached files and where they are saved
  f          save the selected message's attached files (HOME/received/NAME/INDEX/),
             each checked against its signed SHA-256 before it takes its name
  a          go to the next acknowledgement you owe
  s          safety numbers, to compare keys out of band
  x          dismiss the alerts and clear the notice line
  ?          this help
  q          quit (the outbox is kept; pending messages go on the next run)
  Tab        between the channel list and the messages; arrows choose
In a form: Tab / shift+Tab move between fields, ↑↓ step through a field's
values where it has a fixed set (→ takes a completion), ctrl+s sends, Esc
cancels; * marks a required field. A refused value is named, under its field,
before anything is sent.

Marks (none depends on colour):
  ‼FLASH‼ !IMMEDIATE! PRIORITY ROUTINE   the precedence
  ● UP ▲ DEGRADED ✖ DOWN ? UNKNOWN       the channel's health (server's view)
  ? NO LINK      your own line is down: the health shown is not current
  hb 4s          age of the last heartbeat seen on the channel
  sig✓           signature verified against the sender's enrollment
  logged rcpt✓   in the log; our signed inclusion receipt verified
  incl✓          in the log: this console's own inclusion proof verified
  wit 2/3        the channel's witnesses that cosigned a tree holding it (d)
  INCLUSION ✖    delivered otherwise than logged: the proof failed
  PENDING ⧗      stored here, not yet accepted: resent when the line returns
  REFUSED ✖      refused by the server (its code and reason follow)
  ✓received ✓understood …waiting ✖OVERDUE   each party's acknowledgement
  ▶ YOU OWE      your party owes an ack: countdown to the deadline
  ▶▶ OVERDUE     that deadline has passed
"""


NOTICE_SECONDS = 15.0  # a notice (the answer to a key) stays this long, or until x or the next one
KEY_STUCK = 2.0  # seconds after which a key not seen through is let go (a safety valve only)
PROVE_EVERY = 2.0  # seconds between log-watch rounds, while some message is not fully proven
WATCH_IDLE = 30.0  # seconds between rounds when all is proven: the chain is still followed
LOG_HEAD_MEMO = "log_head"  # outbox memo: the largest checkpoint this console verified


def _key(name: str) -> str:
    return {"question_mark": "?"}.get(name, name)


class KeyBar(Widget):
    """The key bar, fitted to its own width each time it is drawn (``render.key_bar``)."""

    def __init__(self, keys: list[tuple[str, str, str, int]], *, id: str) -> None:
        super().__init__(id=id)
        self.keys = keys

    def render(self) -> Text:
        return render.key_bar(self.keys, self.size.width)


def attached_files(form: Form, values: Mapping[str, str]) -> dict[str, list[Attached]]:
    """Each files field's files, read for their references (a chunk at a time).

    Raises:
        FormError: a path that is no readable file, naming its field.
    """
    found: dict[str, list[Attached]] = {}
    for field in form.fields:
        if field.kind != "files":
            continue
        for text in file_paths(values.get(field.path, "")):
            path = Path(text).expanduser()
            if not path.is_file():
                raise FormError(f"{text} is not a file", field=field.path)
            try:
                found.setdefault(field.path, []).append(Attached.of(field.path, path))
            except OSError as exc:
                raise FormError(f"{text} cannot be read: {exc.strerror}", field=field.path) from None
    return found


class ConsoleApp(App[None]):
    """The liaison console for one member's profile."""

    TITLE = "hotline console"
    ENABLE_COMMAND_PALETTE = False
    CSS = """
    Screen { layout: vertical; }
    #alert { height: auto; max-height: 2; display: none; }
    #alert.-shown { display: block; }
    #main { height: 1fr; }
    #channels { width: 24; height: 100%; border: none; border-right: solid $panel; }
    #right { width: 1fr; }
    #owed { height: auto; max-height: 2; display: none; }
    #owed.-shown { display: block; }
    #messages { height: 1fr; border: none; }
    #notice { height: auto; max-height: 2; display: none; }
    #notice.-shown { display: block; }
    #status { height: auto; max-height: 2; background: $panel; }
    #keys { height: 1; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("n", "compose('message')", "Message"),
        Binding("t", "compose_any", "Form"),
        Binding("p", "compose('preagreed')", "Pre-agreed"),
        Binding("r", "reply", "Reply"),
        Binding("u", "understood", "Understood"),
        Binding("d", "details", "Details"),
        Binding("f", "save_files", "Save files"),
        Binding("a", "next_owed", "Next owed"),
        Binding("s", "safety", "Safety numbers"),
        Binding("x", "dismiss_alerts", "Dismiss"),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        # the details open as Enter is read, so the keys after it go to them
        Binding("enter", "open_selected", "Details", show=False, priority=True),
    ]
    # the key bar: (key, name, short name, rank), rank 0 always shown, the highest left out
    # first when even the short names do not fit on one line (? lists them all)
    KEY_BAR: ClassVar[list[tuple[str, str, str, int]]] = [
        ("n", "Message", "Msg", 1), ("t", "Form", "Form", 3), ("p", "Pre-agreed", "Pre", 4),
        ("r", "Reply", "Reply", 2), ("u", "Understood", "Ack", 1), ("d", "Details", "Info", 3),
        ("f", "Save files", "Files", 4),
        ("a", "Next owed", "Owed", 1), ("s", "Safety numbers", "Safety", 5),
        ("x", "Dismiss", "Clear", 2), ("?", "Help", "Help", 0), ("q", "Quit", "Quit", 0),
    ]

    def __init__(self, *, profile: Profile, key: Signer, outbox: Outbox, templates: TemplateSet,
                 servers: tuple[str, ...] = (), lang: str | None = None,
                 backoff: Backoff | None = None, clock: Callable[[], datetime] = utc_now,
                 local_tz: tzinfo | None = None, tick: float = 1.0,
                 prove_every: float = PROVE_EVERY, sealed_view: SealedView | None = None,
                 received: Path | None = None) -> None:
        super().__init__()
        # where a message's attached files are saved, a folder per log index
        self.received = received if received is not None else Path("received")
        self.profile, self.key, self.outbox, self.templates = profile, key, outbox, templates
        self.clock, self.tick_seconds = clock, tick
        self.local_tz = local_tz  # None: the system's zone, at each moment shown
        self.state = ConsoleState(member=profile.member, party=profile.party, role=profile.role,
                                  lang=lang or profile.lang)
        self.link = Link(profile=profile, key=key, outbox=outbox, emit=self.on_link_event,
                         servers=servers, backoff=backoff, clock=clock, sealed_view=sealed_view)
        self.safety = safety_number(key.key_id)
        self.link_status = LinkStatus(LinkState.CONNECTING, None, "starting")
        self.pending_count = len(outbox.pending())
        self._replaying: set[str] = set()
        self._ack_later: dict[str, list[str]] = {}
        self._message_ids: list[str] = []
        self._channel_names: list[str] = []
        self._details: tuple[TextScreen, str] | None = None
        self._staged: dict[str, list[StagedFile]] = {}  # envelope id -> its files, staged
        self._widgets_ready = False  # mounted: the widgets exist
        self._notice: tuple[str, str, datetime] | None = None  # text, severity, since
        self._holding = False  # keys wait while a screen opens (open_screen)
        self._held: list[events.Key] = []  # keys not yet routed, oldest first
        self._in_flight: events.Key | None = None  # routed, not yet done
        self.state.log = LogWatch(profile.log_key, self._remembered_head())
        self.prove_every = prove_every
        self._proving = False
        self._last_round: datetime | None = None
        if self.link.roster is not None:  # an earlier run's: compose offline until connected
            self._adopt(self.link.channels, self.link.roster)
        for item in outbox.items():  # what an earlier run left unsent or saw refused
            if item.state is not OutboxState.ACCEPTED:
                self._outbox_item(item, alert=False)

    # -- layout ----------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static("", id="alert")
        with Horizontal(id="main"):
            yield OptionList(id="channels")
            with Vertical(id="right"):
                yield Static("", id="owed")
                yield OptionList(id="messages")
        yield Static("", id="notice")
        yield Static("", id="status")
        yield KeyBar(self.KEY_BAR, id="keys")

    def on_mount(self) -> None:
        self.run_worker(self.link.run(), name="link", group="link", exit_on_error=False)
        self.set_interval(self.tick_seconds, self.refresh_view)
        self.set_interval(self.prove_every, self.prove_soon)
        self.set_interval(RENEW_EVERY, self.renew_keys_soon)
        self.query_one("#messages", OptionList).focus()
        self._widgets_ready = True
        view = self.link.sealed_view
        if view is not None and view.problem is not None:
            self.notify(shown(f"sealed fields are shown as sealed: {view.problem}", limit=300),
                        severity="warning", markup=False)
        self.refresh_view()

    def on_resize(self) -> None:
        self.refresh_view()

    # -- keys: one at a time, none lost while a screen opens ----------------------------------------
    # Textual hands a key to the focused widget's queue and runs the bindings only when the key
    # has bubbled back to the app, while it already routes the next key: typed fast, a key could
    # land before the effect of the one typed before it (a field's Tab, a screen's opening). So
    # each key is routed only once the one before has done all it does (``_after_key`` follows
    # it up the DOM to the app), and keys typed while a screen opens wait for it (``open_screen``).

    def open_screen(self, screen: Screen[Any], callback: Callable[[Any], None] | None = None) -> None:
        """Push ``screen``; the keys typed before it has focused its first widget wait for it
        (``ScreenReady``), so none goes to the screen underneath or is dropped."""
        self._holding = True
        self.push_screen(screen, callback)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            self._held.append(event)
            await self._route_held()
            return
        await super().on_event(event)

    async def _route_held(self) -> None:
        while self._held and self._in_flight is None and not self._holding:
            event = self._held.pop(0)
            target = self.focused or self.screen  # where Textual forwards it, if no binding takes it
            self._in_flight = event
            await super().on_event(event)
            if not event.is_forwarded:  # a priority binding took it, here and now
                self._in_flight = None
            elif not target.call_later(self._after_key, target, event):
                self._in_flight = None
            else:  # never wait for ever on a key (a widget closed under it): a safety valve only
                self.set_timer(KEY_STUCK, partial(self._key_done, event))

    def _after_key(self, node: DOMNode, event: events.Key) -> None:
        """Runs in ``node`` once it has handled ``event``: on to its parent (which has the key
        already, if it bubbled), until the app has run its bindings."""
        parent = None if node is self else node.parent
        if parent is None or not parent.call_later(self._after_key, parent, event):
            self._key_done(event)

    def _key_done(self, event: events.Key) -> None:
        if event is self._in_flight:
            self._in_flight = None
            self.call_later(self._route_held)

    @on(ScreenReady)
    async def screen_ready(self) -> None:
        """The screen opened has its focus: the keys held for it go, in the order they came."""
        self._holding = False
        await self._route_held()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "open_selected":  # Enter on the messages: only where it means details
            return len(self.screen_stack) == 1 and self.focused is self.query_one("#messages")
        return True

    def action_open_selected(self) -> None:
        self.action_details()

    # -- events from the line --------------------------------------------------------------------

    def on_link_event(self, event: Event) -> None:
        """Fold one event of the line into the view-model and redraw."""
        now = self.clock()
        match event:
            case LinkStatus():
                self.link_status = event
                self.state.link_up = event.state is LinkState.UP
            case Welcomed():
                self._adopt(event.welcome.channels, event.roster)
                self._replaying = set(event.welcome.channels)
                self.renew_keys_soon()
            case EntryEvent():
                self._entry(event, now)
            case HealthEvent():
                alert = self.state.apply_health(event.frame, now=now)
                if alert is not None:  # shown on the alert line (refresh_view), never over the keys
                    self.bell()
            case OutboxEvent():
                self._outbox_item(event.item)
                self.pending_count = len(self.outbox.pending())
            case ReceiptEvent():
                if event.ok:
                    self.state.receipt(event.index)
            case ResumedEvent():
                self._replaying.discard(event.channel)
                for message_id in self._ack_later.pop(event.channel, []):
                    message = self.state.find(message_id)
                    if message is not None:
                        self._auto_ack(message)
        self.refresh_view()

    def _adopt(self, channels: list[str], roster: Roster) -> None:
        """The member's channels, their catalogues and witnesses, from a verified roster."""
        self.state.set_channels(channels)
        for name in channels:
            agreement = roster.agreements.get(name)
            if agreement is not None:
                self.state.set_catalogue(name, agreement.catalogue)
                self.state.set_schemas(name, {t.id: t.fields for t in self.templates.agreed(agreement)})
                self.state.witnesses[name] = sorted({label for label, _ in witnesses_of(roster, [name])})

    def _entry(self, event: EntryEvent, now: datetime) -> None:
        channel = channel_of(event.entry)
        seen_before = self.link.previously_seen.get(str(channel), -1)
        envelope_entry = isinstance(event.entry, EnvelopeEntry)
        message = self.state.add_entry(event.index, event.entry,
                                       verified=event.delivered is not None or not envelope_entry,
                                       error=event.error, now=now, unread=event.index > seen_before,
                                       body=event.delivered.envelope.body if event.delivered else None,
                                       closed=event.closed)
        if message is None:
            return
        if (message.precedence is Precedence.FLASH and message.sender != self.state.member
                and event.index > seen_before):
            self.bell()
        if str(channel) in self._replaying:
            self._ack_later.setdefault(str(channel), []).append(message.id)
        else:
            self._auto_ack(message)

    def _auto_ack(self, message: Message) -> None:
        if not self.state.needs_received_ack(message) or message.envelope is None:
            return
        for kind in AckKind:  # acknowledged from this outbox before (e.g. an earlier run)
            if self.outbox.get(ack_id(party=self.state.party, member=self.state.member,
                                      reply_to=message.id, ack=kind)):
                return
        self._acknowledge(message, AckKind.RECEIVED)

    def _acknowledge(self, message: Message, kind: AckKind) -> None:
        assert message.envelope is not None
        try:
            self.link.acknowledge(message.envelope, kind)
        except HotlineError as exc:
            self.notify(shown(f"ack not stored: {exc.message}", limit=300), severity="error",
                        markup=False)

    def _outbox_item(self, item: OutboxItem, *, alert: bool = True) -> None:
        env = item.envelope
        if env.kind is Kind.MESSAGE:
            accepted = item.state is OutboxState.ACCEPTED
            message = self.state.add_outbox(env, item.sig, Delivery.ACCEPTED if accepted
                                            else Delivery.PENDING, index=item.index)
            if message is not None and message.entry is None and env.sealed is not None:
                message.body, message.closed = self.link.body_of(env)  # from our read store
            if item.state is OutboxState.REFUSED:
                self.state.refused(env.id, str(item.code), str(item.reason), now=self.clock(),
                                   alert=alert)
        elif env.kind is Kind.ACK and env.reply_to is not None:
            pending = item.state is OutboxState.PENDING
            self.state.ack_pending(env.reply_to, str(env.body.get("ack")) if pending else None)

    # -- drawing ---------------------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Redraw everything from the view-model (cheap: a few hundred lines at most)."""
        if not self._widgets_ready or not self.is_running:
            return  # not mounted yet, or shutting down (Textual removes screens before timers)
        now = self.clock()
        self._draw_channels(now)
        self._draw_messages(now)
        alert = self.query_one("#alert", Static)
        alert.update(render.alert_text(self.state.alerts))
        alert.set_class(bool(self.state.alerts), "-shown")
        owed = self.state.awaiting_me(now)
        bar = self.query_one("#owed", Static)
        bar.update(render.owed_bar(owed))
        bar.set_class(bool(owed), "-shown")
        if self._notice is not None and now - self._notice[2] > timedelta(seconds=NOTICE_SECONDS):
            self._notice = None
        notice = self.query_one("#notice", Static)
        notice.update(render.notice_text(*self._notice[:2]) if self._notice else "")
        notice.set_class(self._notice is not None, "-shown")
        status = self.link_status
        self.query_one("#status", Static).update(render.status_text(
            link=status.state.value, url=status.url or self.link.url, detail=status.detail,
            member=self.profile.member, party=self.profile.party, role=self.profile.role,
            safety=self.safety, pending=self.pending_count, retry_in=status.retry_in))

    def _draw_channels(self, now: datetime) -> None:
        widget = self.query_one("#channels", OptionList)
        names = sorted(self.state.channels)
        prompts = [render.channel_prompt(self.state.channels[n], self.state, now) for n in names]
        if names != self._channel_names:
            widget.clear_options()
            widget.add_options([Option(p, id=n) for n, p in zip(names, prompts, strict=True)])
            self._channel_names = names
            if self.state.selected in names:
                widget.highlighted = names.index(self.state.selected)
        else:
            for i, prompt in enumerate(prompts):
                widget.replace_option_prompt_at_index(i, prompt)

    def _draw_messages(self, now: datetime, *, reveal: bool = False) -> None:
        """Redraw the selected channel's messages. The selection stays on its message, or follows
        the newest one when it was on the newest; it is scrolled into view (its header first)
        when it moved, when the list changed, when ``reveal`` asks, and whenever it was in view
        before, so an ack line coming or going never pushes it off the screen."""
        widget = self.query_one("#messages", OptionList)
        channel = self.state.channels.get(self.state.selected or "")
        messages = channel.ordered() if channel else []
        ids = [m.id for m in messages]
        current = self.selected_message()
        following = widget.highlighted is None or widget.highlighted >= len(self._message_ids) - 1
        reveal = reveal or self._selection_in_view(widget)
        if ids != self._message_ids and ids:  # where the selection goes: it stays, or follows
            chosen = ids.index(current.id) if current is not None and current.id in ids and \
                not following else len(ids) - 1
        else:
            chosen = widget.highlighted if widget.highlighted is not None else len(ids) - 1
        # less the scrollbar's two columns, which appear once the list outgrows the screen
        width = widget.scrollable_content_region.width - 2 if widget.size.width else render.WIDTH
        prompts = [render.message_prompt(m, self.state, now, self.local_tz, selected=i == chosen,
                                         width=width) for i, m in enumerate(messages)]
        if ids != self._message_ids:
            widget.clear_options()
            widget.add_options([Option(p, id=i) for i, p in zip(ids, prompts, strict=True)])
            self._message_ids = ids
            if ids:
                widget.highlighted = chosen
            reveal = True
        else:
            for i, prompt in enumerate(prompts):
                widget.replace_option_prompt_at_index(i, prompt)
        if ids and reveal:
            widget.scroll_to_highlight()  # immediate; a taller-than-the-list message: its top

    @staticmethod
    def _selection_in_view(widget: OptionList) -> bool:
        """The selected message's header line is inside the list's window."""
        if widget.highlighted is None or not widget.size.height:
            return False
        widget._update_lines()  # Textual's own map of the options' lines
        line = widget._index_to_line.get(widget.highlighted)
        return line is not None and widget.scroll_y <= line < widget.scroll_y + \
            widget.scrollable_content_region.height

    def selected_message(self) -> Message | None:
        widget = self.query_one("#messages", OptionList)
        if widget.highlighted is None or widget.highlighted >= len(self._message_ids):
            return None
        return self.state.find(self._message_ids[widget.highlighted])

    @on(OptionList.OptionHighlighted, "#channels")
    def channel_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id is not None and event.option.id != self.state.selected:
            self.state.select(event.option.id)
            self.refresh_view()

    @on(OptionList.OptionSelected, "#channels")
    def channel_selected(self) -> None:
        self.query_one("#messages", OptionList).focus()

    @on(OptionList.OptionSelected, "#messages")
    def message_selected(self) -> None:
        self.action_details()

    @on(OptionList.OptionHighlighted, "#messages")
    def message_highlighted(self) -> None:
        if self._widgets_ready and self.is_running:
            self._draw_messages(self.clock(), reveal=True)  # move the ▶ mark: it shows without colour

    # -- composing -------------------------------------------------------------------------------

    def _composable(self, channel: str) -> list[Template]:
        """The channel's agreed message templates this member may send."""
        roster = self.link.roster
        agreement = roster.agreements.get(channel) if roster is not None else None
        if agreement is None:
            return []
        return [t for t in self.templates.agreed(agreement) if t.kind is Kind.MESSAGE
                and self.profile.role in t.roles and (not t.parties or self.profile.party in t.parties)]

    def action_compose(self, template_id: str, reply_to: Message | None = None) -> None:
        """Open the form of ``template_id`` on the selected channel."""
        channel = self.state.selected
        roster = self.link.roster
        agreement = roster.agreements.get(channel) if roster is not None and channel else None
        if channel is None or agreement is None:
            self.notify("no channel agreement known yet: the console has not been connected",
                        severity="error")
            return
        try:
            template = self.templates.resolve(agreement, template_id)
        except HotlineError as exc:
            self.notify(shown(f"{exc.code}: {exc.message}", limit=300), severity="error", markup=False)
            return
        form = build_form(template, catalogue=agreement.catalogue, lang=self.state.lang,
                          parties=agreement.parties)
        replied = None if reply_to is None else Replied(template=reply_to.template, party=reply_to.party,
                                                        kind="message")
        reply_id = reply_to.id if reply_to is not None else None

        attaching: dict[str, list[Attached]] = {}  # envelope id -> the files its body names

        def check(values: dict[str, str], precedence: Precedence) -> Envelope:
            # norms are judged as the server will: at the time it logs it, about now
            ctx = Context(agreement=agreement, party=self.profile.party, role=self.profile.role,
                          logged=self.clock(), replied=replied)
            files = attached_files(form, values)
            refs = {name: [f.reference(name in template.readers) for f in given]
                    for name, given in files.items()}
            envelope = envelope_from_form(form, values, precedence=precedence, ctx=ctx, files=refs,
                                          build=lambda body, p: self.link.build(
                                              channel=channel, template=template.id, body=body,
                                              precedence=p, reply_to=reply_id))
            attaching.clear()  # only the last envelope checked is sent
            attaching[envelope.id] = [f for name in template.attachments for f in files.get(name, [])]
            return envelope

        async def seal(envelope: Envelope) -> Envelope:
            files = attaching.get(envelope.id, [])
            folder = self.outbox.files_dir(envelope.id)
            try:
                staged, streams = await asyncio.to_thread(
                    stage, files, channel=channel, envelope=envelope.id,
                    sealed=set(template.readers), folder=folder)
                if template.readers:
                    envelope = await self.link.seal(envelope, template, streams)
            except HotlineError:  # the form stays open; another try stages under another id
                shutil.rmtree(folder, ignore_errors=True)
                raise
            except OSError as exc:  # a file moved or unreadable since the form was checked
                shutil.rmtree(folder, ignore_errors=True)
                raise FormError(f"a file to attach cannot be read: {exc.strerror}") from None
            if template.readers and self.link.roster is not None:
                # a party none of whose liaisons has a key yet
                for line in unreadable_lines(unreadable(envelope, template, self.link.roster)):
                    self.notify(shown(line, limit=300), severity="warning", markup=False)
            self._staged[envelope.id] = staged
            return envelope

        self.open_screen(ComposeScreen(form, channel=channel, check=check, reply_to=reply_id,
                                       link_up=self.state.link_up,
                                       seal=seal if template.readers or template.attachments
                                       else None), self._on_composed)

    def _on_composed(self, envelope: Envelope | None) -> None:
        if envelope is None:
            return
        try:
            item = self.link.store(envelope, self._staged.pop(envelope.id, []))
        except HotlineError as exc:
            if self.outbox.get(envelope.id) is None:  # its staged files are nobody's
                shutil.rmtree(self.outbox.files_dir(envelope.id), ignore_errors=True)
            self.notify(shown(f"NOT STORED, NOT SENT: {exc.message}", limit=300), severity="error",
                        markup=False)
            return
        self.link.send(item)
        if not self.state.link_up:
            self.notify("line down: the message is kept in the outbox, PENDING, and sent when "
                        "the line returns", severity="warning")

    def action_compose_any(self, reply_to: Message | None = None) -> None:
        """Pick any agreed template, then its form."""
        channel = self.state.selected
        templates = self._composable(channel) if channel else []
        if not templates:
            self.notify("no agreed templates known for this channel yet", severity="error")
            return

        def picked(template: Template) -> None:
            self.action_compose(template.id, reply_to)

        title = (f"Reply to [{reply_to.index}] with which template?" if reply_to
                 else f"Compose on {channel}: which agreed template?")
        self.open_screen(TemplatePicker(templates, title=title, on_pick=picked))

    def action_reply(self) -> None:
        message = self.selected_message()
        if message is None or message.index is None:
            self.notify("select a logged message to reply to", severity="warning")
            return
        self.action_compose_any(reply_to=message)

    # -- acknowledging ---------------------------------------------------------------------------

    def action_understood(self) -> None:
        """Send the 'understood' ack of the selected message."""
        message = self.selected_message()
        if message is None or message.index is None or message.envelope is None:
            self.notify("select a received message first", severity="warning")
            return
        if own_party_ack(party=self.state.party, message_party=message.party):
            self.notify("a message of your own party needs no acknowledgement from you",
                        severity="warning")
            return
        if not message.verified:
            self.notify("this message did NOT verify: not acknowledging it", severity="error")
            return
        done = self.outbox.get(ack_id(party=self.state.party, member=self.state.member,
                                      reply_to=message.id, ack=AckKind.UNDERSTOOD))
        if done is not None and done.state is not OutboxState.PENDING:
            self.notify(f"[{message.index}] was already acknowledged 'understood'", markup=False)
            return
        self._acknowledge(message, AckKind.UNDERSTOOD)
        self.refresh_view()

    def action_next_owed(self) -> None:
        """Select the message whose acknowledgement is due soonest."""
        owed = self.state.awaiting_me(self.clock())
        if not owed:
            self.notify("you owe no acknowledgement")
            return
        message = owed[0][0]
        self.state.select(message.channel)
        self.refresh_view()
        widget = self.query_one("#messages", OptionList)
        if message.id in self._message_ids:
            widget.highlighted = self._message_ids.index(message.id)
        widget.focus()

    # -- views -----------------------------------------------------------------------------------

    def action_details(self) -> None:
        """Envelope, signature check, log index, inclusion proof and cosignatures."""
        message = self.selected_message()
        if message is None:
            self.notify("no message selected", severity="warning")
            return
        screen = TextScreen(f"[{message.index if message.index is not None else '—'}] "
                            f"{message.template} from {message.sender}", self._details_text(message),
                            screen_id="details")
        self._details = (screen, message.id)
        self.open_screen(screen)
        self.prove_soon()

    # -- attached files --------------------------------------------------------------------------

    def files_of(self, message: Message) -> tuple[list[NamedAttachment], list[str]]:
        """The files the selected ``message`` names that this member may save (those of its clear
        fields, and of the sealed ones it opened), and its sealed attachment fields it cannot
        open. Raises ProtocolViolation when an opened field does not match its streams."""
        env = message.entry.envelope if message.entry is not None else None
        roster = self.link.roster
        agreement = roster.agreements.get(env.channel) if env is not None and roster else None
        if env is None or agreement is None:
            return [], []
        try:
            template = self.templates.resolve(agreement, env.template)
        except HotlineError:
            return [], []
        sealed = env.sealed
        opened = {name: message.body[name] for name in (sealed.digests if sealed else ())
                  if name not in message.closed and name in message.body}
        closed = sorted(set(sealed.attachments if sealed else ()) - set(opened))
        return template.opened_attachments(env, opened), closed

    def folder_of(self, message: Message) -> Path:
        return self.received / str(message.index)

    def action_save_files(self) -> None:
        """Save the selected message's attached files in its folder, each checked against its
        signed SHA-256 (a sealed one opened here) before it takes its name."""
        message = self.selected_message()
        if message is None or message.index is None or message.entry is None:
            self.notify("select a logged message first", severity="warning")
            return
        if not message.verified and message.verified is not None:
            self.notify("this message did NOT verify: not saving its files", severity="error")
            return
        try:
            files, closed = self.files_of(message)
        except HotlineError as exc:
            self.notify(shown(f"{exc.code}: {exc.message}", limit=300), severity="error", markup=False)
            return
        if not files:
            self.notify("its files are sealed, and not opened here" if closed
                        else f"[{message.index}] has no attached files", severity="warning")
            return
        client = self.link.client
        if client is None:
            self.notify("the line is down: save the files once it is up", severity="warning")
            return
        self.notify(shown(f"saving {len(files)} file(s) of [{message.index}] in "
                          f"{self.folder_of(message)}", limit=300), markup=False)
        self.run_worker(self._save_files(client, message.index, files, self.folder_of(message)),
                        group="save-files", exit_on_error=False)

    async def _save_files(self, client: Client, index: int, files: list[NamedAttachment],
                          out: Path) -> None:
        def say(line: str) -> None:
            self.notify(shown(line, limit=300), markup=False)
        try:
            await save_attachments(client, index, files, out, say)
        except SaveClash as exc:
            self.notify(shown(str(exc), limit=300), severity="error", markup=False)
        except HotlineError as exc:
            self.notify(shown(f"files of [{index}] not saved: {exc.code}: {exc.message}", limit=300),
                        severity="error", markup=False)
        if self._details is not None:
            self.refresh_view()

    def _file_lines(self, message: Message) -> list[tuple[str, str]]:
        """Each attached file: what the sender signed of it, and whether it is saved here."""
        try:
            files, closed = self.files_of(message)
        except HotlineError as exc:
            return [("files", f"FAILED: {exc.message}")]
        lines, folder = [], self.folder_of(message)
        for named in files:
            ref, target = named.ref, folder / named.ref.name
            # by its size only: each redraw of the details must not read the files (the save
            # checked the SHA-256 before the file took its name)
            state = (f"saved in {target}" if target.is_file() and target.stat().st_size == ref.size
                     else f"not saved yet (f saves it in {folder})")
            lines.append((named.where, f"{ref.name} ({ref.size:,} bytes, {ref.media_type}), SHA-256 "
                          f"{ref.sha256}{', sealed' if named.stored else ''}; {state}"))
        lines += [(f"body.{name}", "sealed, and not opened here (sealed to other parties, or no "
                   "epoch key of yours here opens it)") for name in closed]
        return lines

    def _sealed_lines(self, message: Message) -> list[tuple[str, str]]:
        """Each sealed field: opened here (its value matched the digest the sender signed) or
        not, to whom it was sealed; and what readers reported of it."""
        env = message.entry.envelope if message.entry is not None else message.envelope
        if env is None or env.sealed is None:
            return []
        lines = []
        for name in sorted(env.sealed.digests):
            to = ", ".join(f"{b.member} ({b.party})" for b in env.sealed.boxes if name in b.fields)
            state = ("SEALED, not readable here" if name in message.closed
                     else "opened here, matches the signed digest")
            lines.append((f"sealed {name}", f"{state}; sealed to {to or 'nobody'}"))
        for v in message.violations:
            lines.append(("violation", f"{v.member} ({v.party}) reports {v.field}: {v.code}: "
                          f"{v.reason} [{v.index}]"))
        return lines

    def _details_text(self, message: Message) -> Text:
        """What the sender signed, what this console checked, and what the server says, each
        under its own heading: the server's statements are never shown as verified."""
        signed = [("channel", message.channel),
                  ("sender", f"{message.sender} ({message.party})"),
                  ("template", f"{message.template}, precedence {message.precedence}"),
                  ("created", both_times(message.created, self.local_tz) + " " +
                   message.created.isoformat())]
        text = self.state.catalogue_text(message)
        if text:
            signed.append((f"catalogue ({self.state.lang})", text))
        checked = self._sealed_lines(message)
        if message.verified is None:
            checked.append(("signature", "signed here with your key"))
        elif message.verified:
            key = (message.sig or {}).get("key", "?")
            checked.append(("signature", f"VERIFIED: key {key}, enrolled for {message.sender} by "
                            f"{message.party}'s authority (pinned in your profile)"))
        else:
            checked.append(("signature", f"FAILED: {message.verify_error}"))
        if message.receipt:
            checked.append(("receipt", "inclusion receipt verified against the pinned log key"))
        proof = self.state.proof(message)
        for i, line in enumerate(proof.lines() if proof is not None else ["not logged yet"]):
            checked.append(("log proof" if i == 0 else "", line))
        acks = []
        for ack in self.state.ack_states(message, self.clock()):
            records = message.acks.get(ack.party, {})
            got = ", ".join(f"{k} by {r.member} [{r.index}]" + (" LATE" if r.late else "")
                            for k, r in records.items()) or "none"
            acks.append((f"ack {ack.party}", f"{ack.mark.value} ({got})"))
        server = []
        if message.delivery is not None:
            server.append(("delivery", message.delivery.value + (f" — {message.refusal}"
                                                                 if message.refusal else "")))
        server.append(("log index", str(message.index) if message.index is not None
                       else "not logged yet"))
        if message.logged is not None:
            server.append(("logged", message.logged.isoformat()))
        if message.expects is not None:
            server.append(("expects", f"{message.expects.ack} from "
                           f"{', '.join(message.expects.parties)} by {message.expects.due.isoformat()}"))
        return details_text([("signed by the sender", signed),
                             ("attached files (each checked against its signed SHA-256 as it is saved)",
                              self._file_lines(message)),
                             ("checked by this console", checked),
                             ("acknowledgements (each a signed entry; LATE is the server's word)", acks),
                             ("stated by the server (not signed)", server)],
                            message.envelope.to_json() if message.envelope is not None else None)

    # -- epoch keys ------------------------------------------------------------------------------

    def renew_keys_soon(self) -> None:
        """Keep this member's epoch keys current, in the background (one run at a time)."""
        self.run_worker(self._renew_keys(), name="renew-keys", group="renew-keys", exclusive=True,
                        exit_on_error=False)

    async def _renew_keys(self) -> None:
        try:
            renewed = await self.link.renew_keys(self.templates)
        except HotlineError as exc:  # the line dropped meanwhile: the next connection retries
            self.notify(shown(f"epoch keys not renewed: {exc.message}", limit=300),
                        severity="warning", markup=False)
            return
        for line in renewed.lines(self.profile.member) if renewed is not None else []:
            self.notify(shown(line, limit=300), markup=False,
                        severity="error" if line.startswith("NOT DONE") else "information")

    # -- the log watch ---------------------------------------------------------------------------

    def _remembered_head(self) -> Head | None:
        """The head an earlier run verified, if it was of the log whose key the profile pins
        (a profile re-pinned to another log starts a new chain)."""
        memo = self.outbox.recall(LOG_HEAD_MEMO)
        key = self.profile.log_key
        if not isinstance(memo, dict) or key is None or memo.get("log") != key.to_text():
            return None
        return Head.from_json(memo)

    def prove_soon(self) -> None:
        """Start a round of the log watch if the line is up, none is running, and some logged
        message is not yet proven and seen by every witness or ``WATCH_IDLE`` has passed (the
        chain is followed even when all is proven, so a fork is seen while the console is idle)."""
        url = self.link.url
        if (self._proving or not self.state.link_up or url is None or self.link.roster is None
                or self.state.log.log_key is None):
            return
        entries = self._unproven()
        now = self.clock()
        if not entries and (self._last_round is not None
                            and now - self._last_round < timedelta(seconds=WATCH_IDLE)):
            return
        self._proving, self._last_round = True, now
        self.run_worker(self._prove(url, self.link.roster, entries), group="proof",
                        exit_on_error=False)

    def _unproven(self) -> list[tuple[int, Entry]]:
        """``(index, entry)`` of the logged messages not yet fully proven: the selected
        channel's first, newest first."""
        order = sorted(self.state.channels.values(), key=lambda c: c.name != self.state.selected)
        out: list[tuple[int, Entry]] = []
        for channel in order:
            for message in reversed(channel.ordered()):
                proof = self.state.proof(message)
                if (proof is not None and message.entry is not None and proof.failed is None
                        and not proof.all_witnessed):
                    out.append((proof.index, message.entry))
        return out

    async def _prove(self, url: str, roster: Roster,
                     entries: list[tuple[int, Entry]]) -> None:
        watch = self.state.log
        before = watch.head
        client = LogClient(http_base(url), ssl_context=self.profile.tls_for(url), timeout=10.0)
        try:
            await prove_round(watch, client, verifiers=witnesses_of(roster, list(self.state.channels)),
                              entries=entries)
        finally:
            self._proving = False
        if watch.head is not None and watch.head != before and watch.alarm is None:
            assert self.profile.log_key is not None
            self.outbox.remember(LOG_HEAD_MEMO, {"log": self.profile.log_key.to_text(),
                                                 **watch.head.to_json()})
        self.state.log_alarm(self.clock())
        if self._details is not None:
            screen, message_id = self._details
            message = self.state.find(message_id)
            if screen.is_mounted and message is not None:
                screen.update(self._details_text(message))
        self.refresh_view()

    def action_safety(self) -> None:
        """Safety numbers to compare, out of band, with the other parties."""
        self.open_screen(TextScreen("Verify safety numbers", self._safety_text(), screen_id="safety"))

    def _safety_text(self) -> Text:
        out = Text()
        out.append(f"Your key ({self.profile.member}, {self.profile.role} of {self.profile.party}):\n",
                   style="bold")
        out.append(f"  {self.key.key_id}\n  {self.safety}\n\n")
        out.append("Read the numbers aloud with the other party over a trusted channel (voice, "
                   "in person). If they differ, the key is not the one its authority enrolled "
                   "for you: do not trust the line.\n\n")
        roster = self.link.roster
        if roster is None:
            out.append("(the other members appear once the console has connected and verified "
                       "the roster)\n")
        order = {"liaison": 0, "auditor": 1, "agent": 2}
        others = sorted((e for e in (roster.enrollments.values() if roster else ())
                         if e.party != self.profile.party and e.revoked_at is None),
                        key=lambda e: (order.get(e.role.value, 3), e.party, e.member))
        for enrollment in others:
            kid = enrollment.key.key_id
            out.append(f"{enrollment.member} ({enrollment.role.value} of {enrollment.party}), "
                       "you and them:\n", style="bold")
            out.append(f"  {safety_number(self.key.key_id, kid)}\n")
        out.append("\nAuthority keys you pinned (profile), each alone:\n", style="bold")
        for party, key in sorted(self.profile.authorities.items()):
            out.append(f"  {party}\n  {safety_number(key.key_id)}\n")
        if self.profile.log_key is not None:
            out.append(f"\nLog key: {self.profile.log_key.to_text()}\n")
        return out

    def action_help(self) -> None:
        self.open_screen(TextScreen("Help", Text(HELP), screen_id="help"))

    def action_dismiss_alerts(self) -> None:
        self.state.dismiss_alerts()
        self._notice = None
        self.refresh_view()

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None:
        """Every notice goes to the notice line above the status bar, never to a toast over the
        messages and the keys; it stays until the next notice, ``x``, or NOTICE_SECONDS. The
        text is shown as it is (never parsed as markup)."""
        self._notice = (f"{title}: {message}" if title else message, severity, self.clock())
        self.refresh_view()

    # -- for tests and scripts -------------------------------------------------------------------

    @property
    def replaying(self) -> bool:
        """A channel's history is still being replayed after a (re)connection."""
        return bool(self._replaying)

    def plain_text(self) -> str:
        """The screen as a monochrome terminal shows it (no colour, no style): what the officer
        reads, for headless tests and the screenshot script."""
        out = Console(width=self.size.width, height=self.size.height, file=io.StringIO(),
                      record=True, color_system=None, legacy_windows=False, safe_box=False)
        out.print(self.screen._compositor.render_update(full=True,
                                                        screen_stack=self._background_screens))
        return out.export_text()

