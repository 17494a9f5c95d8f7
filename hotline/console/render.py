"""Rich text for every line of the console, from the view-model.

Colour is never the only carrier of meaning: every state is also a word or a mark that a
monochrome terminal shows (``‼FLASH‼``, ``✖ DOWN``, ``PENDING``, ``OVERDUE``).

Text from elsewhere (bodies, names, template titles, catalogue texts, reasons, the server's
statements) is added as plain text, never parsed as markup, and always through
``hotline.display.shown``: no control sequence reaches the terminal. A body is wrapped here, each
continuation line marked ``┆``, so no body can draw a line that looks like the console's own; what
the server states (deadlines, lateness) is never on the line of what this console verified.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, tzinfo

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from hotline.console.state import (
    AckMark,
    Alert,
    Channel,
    ConsoleState,
    Delivery,
    Message,
    Obligation,
    age,
    body_text,
    both_times,
    countdown,
)
from hotline.display import shown
from hotline.envelope import Precedence
from hotline.logwatch import ProofReport

WIDTH = 76  # a message's width when the list's is not known yet (80 columns less the frame)
BODY_LINES = 2  # a body's lines in the list; the details view shows all of it
QUOTE = "    ┆ "  # the mark of a body's continuation lines
_MEASURE = Console(file=io.StringIO(), width=1000)  # only for Text.wrap's cell widths

PRECEDENCE = {
    Precedence.FLASH: ("‼FLASH‼", "bold reverse red"),
    Precedence.IMMEDIATE: ("!IMMEDIATE!", "bold yellow"),
    Precedence.PRIORITY: ("PRIORITY", "bold"),
    Precedence.ROUTINE: ("ROUTINE", "dim"),
}
HEALTH = {
    "UP": ("● UP", "bold green"),
    "DEGRADED": ("▲ DEGRADED", "bold yellow"),
    "DOWN": ("✖ DOWN", "bold reverse red"),
    "UNKNOWN": ("? UNKNOWN", "dim"),
}
ACK = {
    AckMark.UNDERSTOOD: ("✓understood", "green"),
    AckMark.RECEIVED: ("✓received", "green"),
    AckMark.REPLIED: ("✓replied", "green"),
    AckMark.WAITING: ("…waiting", "yellow"),
    AckMark.OVERDUE: ("✖OVERDUE", "bold reverse red"),
}


def precedence(value: Precedence) -> Text:
    label, style = PRECEDENCE[value]
    return Text(label, style=style)


def health(channel: Channel, *, link_up: bool, now: datetime) -> Text:
    """``● UP hb 4s``; ``? NO LINK (was UP)`` while our own line is down."""
    state = shown(channel.health.state, limit=20) if channel.health is not None else "UNKNOWN"
    if not link_up:
        return Text(f"? NO LINK (was {state})", style="bold yellow")
    label, style = HEALTH.get(state, (state, "bold"))
    out = Text(label, style=style)
    stalest = channel.stalest()
    if stalest is not None:
        party, beat = stalest
        when = f"hb {age(now - beat)}" if beat else "hb never"
        # the weakest party's last heartbeat; named when it is what keeps the line from UP
        out.append(f" {when}" if state == "UP" else f" {shown(party, limit=64)} {when}",
                   style="dim" if state == "UP" else "bold")
    return out


def channel_prompt(channel: Channel, state: ConsoleState, now: datetime) -> Text:
    """Two lines: the name (``▶`` when selected) with unread and owed counts; its health."""
    owed = sum(1 for m in channel.messages.values() if state.obligation(m, now) is not None)
    out = Text("▶ " if channel.name == state.selected else "  ", style="bold")
    out.append(shown(channel.name, limit=64), style="bold")
    if channel.unread:
        out.append(f" ({channel.unread} new)", style="bold cyan")
    if owed:
        out.append(f" ACK×{owed}", style="bold reverse yellow")
    out.append("\n  ")
    out.append_text(health(channel, link_up=state.link_up, now=now))
    return out


def message_prompt(message: Message, state: ConsoleState, now: datetime, local: tzinfo | None, *,
                   selected: bool = False, width: int = WIDTH) -> Text:
    """A message in a list ``width`` cells wide: header (``▶`` when selected, index,
    precedence, time, sender), template and body (wrapped, continuations marked ``┆``), what this
    console verified, the acknowledgements with the server's deadline, and what this officer owes.
    """
    out = Text("▶" if selected else " ", style="bold")
    if message.index is not None:
        out.append(f"[{message.index}] ", style="bold")
    else:
        out.append("[—] ", style="bold")
    out.append_text(precedence(message.precedence))
    out.append(f" {both_times(message.created, local)} ")
    out.append(f"{shown(message.sender, limit=64)}@{shown(message.party, limit=64)}", style="bold")
    out.append("\n")
    out.append_text(quoted(f"{shown(message.template, limit=64)}: ",
                           body_text(message, state.catalogue_text(message),
                                     state.body_schema(message)), width))
    out.append("\n    ")
    out.append_text(verification(message, state.proof(message)))
    acks = state.ack_states(message, now)
    if acks:
        # acks are signed entries of their own; whom they are owed by and when, the server says
        out.append("\n    acks: ")
        for i, ack in enumerate(acks):
            if i:
                out.append(" · ")
            label, style = ACK[ack.mark]
            if ack.mark is AckMark.WAITING and ack.received:
                label, style = "✓received …understood", "yellow"
            out.append(f"{shown(ack.party, limit=64)} ")
            out.append(label + (" LATE" if ack.late else ""), style=style)
        if message.expects is not None and any(not a.satisfied for a in acks):
            out.append(f" · due {message.expects.due.strftime('%H:%MZ')} (server)", style="dim")
    owed = state.obligation(message, now)
    if owed is not None:
        out.append("\n    ")
        out.append_text(obligation(owed, message))
    return out


def quoted(label: str, body: str, width: int, *, lines: int = BODY_LINES) -> Text:
    """``    label: body``, the body sanitized and wrapped to ``width`` cells with every
    continuation line marked ``┆``; at most ``lines`` lines, the last one ending with a mark of
    what is left out (the details view shows all of it)."""
    first = f"    {label}"
    room = max(20, width - len(QUOTE))
    pad = len(first) - len(QUOTE)  # the first line starts after the label, the others after ┆
    if pad > room // 2:  # a long label: the body starts on the next line
        first, pad = first.rstrip() + "\n" + QUOTE, 0
    wrapped = Text(" " * pad + shown(body, limit=room * lines * 2)).wrap(_MEASURE, room)
    shown_lines = [line[pad:] if i == 0 else line for i, line in enumerate(wrapped[:lines])]
    if len(wrapped) > lines:
        mark = f" …[+{len(wrapped) - lines} lines: d]"
        last = shown_lines[-1]
        last.rstrip()
        last.truncate(room - (pad if lines == 1 else 0) - len(mark))
        last.append(mark, style="dim")
    out = Text(first, style="italic")
    for i, line in enumerate(shown_lines):
        if i:
            out.append("\n" + QUOTE, style="dim")
        out.append_text(line)
    return out


def verification(message: Message, proof: ProofReport | None) -> Text:
    """Signature, log, receipt, inclusion proof, witnesses: what was checked about this message."""
    out = Text()
    if message.delivery is Delivery.PENDING:
        out.append("PENDING ⧗ not yet accepted", style="bold reverse yellow")
        return out
    if message.delivery is Delivery.REFUSED:
        out.append(f"REFUSED ✖ {shown(message.refusal or '', limit=200)}", style="bold reverse red")
        return out
    if message.verified is False:
        out.append("SIGNATURE ✖ FAILED", style="bold reverse red")
        return out
    out.append("sig✓" if message.verified else "signed here", style="green")
    if message.index is not None:
        out.append(" logged", style="green")
    if message.receipt:
        out.append(" rcpt✓", style="green")
    if proof is not None:
        if proof.failed is not None:
            out.append(" INCLUSION ✖ FAILED", style="bold reverse red")
        else:
            out.append(" incl✓" if proof.included else " incl…",
                       style="green" if proof.included else "yellow")
        if proof.witnesses and proof.included:
            got = len(set(proof.seen_by) & set(proof.witnesses))
            out.append(f" wit {got}/{len(proof.witnesses)}",
                       style="green" if proof.all_witnessed else "yellow")
    if message.my_ack_pending:
        out.append(f" {message.my_ack_pending} ack PENDING", style="bold yellow")
    return out


def obligation(owed: Obligation, message: Message) -> Text:
    if owed.overdue:
        return Text(f"▶▶ OVERDUE {countdown(owed.remaining)}: you owe '{owed.ack}' — press u",
                    style="bold reverse red")
    key = "u" if owed.ack != "reply" else "r"
    return Text(f"▶ YOU OWE '{owed.ack}': {countdown(owed.remaining)} left — press {key}",
                style="bold reverse yellow" if message.urgent else "bold yellow")


def owed_bar(pairs: list[tuple[Message, Obligation]]) -> Text:
    """The line above the messages: how many acks this officer owes, the most urgent first."""
    if not pairs:
        return Text("")
    message, owed = pairs[0]
    overdue = sum(1 for _, o in pairs if o.overdue)
    style = "bold reverse red" if overdue else "bold reverse yellow"
    head = f"ACK OWED ×{len(pairs)}" + (f" ({overdue} OVERDUE)" if overdue else "")
    when = (f"OVERDUE {countdown(owed.remaining)}" if owed.overdue
            else f"{countdown(owed.remaining)} left")
    return Text(f"{head}: next [{message.index}] {message.precedence} {shown(message.template, limit=64)}"
                f" from {shown(message.sender, limit=64)}, '{shown(owed.ack, limit=20)}' {when} — a: go",
                style=style)


def alert_text(alerts: list[Alert]) -> Text:
    if not alerts:
        return Text("")
    latest = alerts[-1]
    more = f" (+{len(alerts) - 1} more)" if len(alerts) > 1 else ""
    return Text(f"‼ ALERT {latest.at.strftime('%H:%M:%SZ')}: {shown(latest.text, limit=300)}{more}"
                " — x: dismiss",
                style="bold reverse red")


def status_text(*, link: str, url: str | None, detail: str, member: str, party: str, role: str,
                safety: str, pending: int, retry_in: float | None) -> Text:
    """The status bar: line state, outbox, own identity, safety number, server endpoint."""
    out = Text()
    style = {"UP": "bold reverse green", "DOWN": "bold reverse red",
             "REFUSED": "bold reverse red"}.get(link, "bold reverse yellow")
    out.append(f" LINK {link} ", style=style)
    if link == "DOWN" and retry_in is not None:
        out.append(f" retry in {retry_in:.1f}s", style="bold")
    elif link == "REFUSED":
        out.append(f" {shown(detail, limit=200)}", style="bold")
    out.append(" │ ")
    out.append(f"outbox: {pending} PENDING" if pending else "outbox: 0 pending",
               style="bold reverse yellow" if pending else "")
    out.append(f" │ {shown(member)}@{shown(party)} {shown(role)} │ SN {safety[:17]}… │ "
               f"{shown(url or '—', limit=100)}")
    return out


def notice_text(text: str, severity: str) -> Text:
    """The notice line: the answer to the officer's last key (a warning, an error, a note)."""
    mark, style = {"error": ("✖", "bold red"), "warning": ("!", "bold yellow")}.get(
        severity, ("·", "bold"))
    return Text(f"{mark} {shown(text, limit=300)} — x: clear", style=style)


def key_bar(keys: Sequence[tuple[str, str, str, int]], width: int) -> Text:
    """The keys of the main screen on one line of ``width`` cells, never wrapped: each
    ``(key, name, short name, rank)`` with its full name if all of them fit, else with the short
    one, else the keys of the highest rank left out until the rest fit (rank 0 always stays;
    ``?`` lists every key)."""
    def size(entries: Sequence[tuple[str, str, str, int]], short: bool) -> int:
        return sum(cell_len(key) + cell_len(brief if short else name) + 3
                   for key, name, brief, _ in entries)

    shown_keys = list(keys)
    short = size(shown_keys, False) > width
    while size(shown_keys, short) > width and any(rank for *_, rank in shown_keys):
        worst = max(rank for *_, rank in shown_keys)
        del shown_keys[max(i for i, key in enumerate(shown_keys) if key[3] == worst)]
    out = Text(no_wrap=True, overflow="ellipsis")
    for key, name, brief, _ in shown_keys:
        out.append(f" {key} ", style="bold reverse")
        out.append(f"{brief if short else name} ")
    out.truncate(width)
    return out
