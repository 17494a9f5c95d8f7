"""The console's modal screens: pick a template, fill its form, look at an entry's details, compare
safety numbers, read the help. Each closes with Escape; none talks to the network itself.

No keystroke is lost or lands in the wrong place, however fast it is typed: each screen focuses
its first widget while it mounts (``Modal``) and then posts ``ScreenReady``, and the app holds
the keys typed meanwhile until then (``ConsoleApp.open_screen``); what moves the focus or leaves
a screen (Tab, shift+Tab, Enter in the picker) is a priority binding, run by the app in the
order the keys came, before the next key is routed.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from typing import Any, ClassVar, TypeVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.css.query import NoMatches
from textual.events import DescendantFocus
from textual.message import Message
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widget import Widget
from textual.widgets import Button, Footer, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from hotline.canonical import JSONObject
from hotline.console.forms import Form, FormError, FormField, deadline_text
from hotline.display import shown
from hotline.envelope import Envelope, Precedence
from hotline.errors import HotlineError
from hotline.norms.forms import sealed_audiences
from hotline.norms.template import Template

MODAL_CSS = """
ModalScreen { align: center middle; }
.dialog { width: 100%; max-width: 100; height: auto; max-height: 100%; border: thick $accent;
          background: $surface; padding: 0 1; }
.title { text-style: bold; }
.hint { color: $text-muted; }
.error { color: $error; text-style: bold; }
.-invalid { border: tall $error; }
"""

R = TypeVar("R")


class ScreenReady(Message):
    """A screen has mounted and focused its first widget: the keys held for it may go."""


class Modal(ModalScreen[R]):
    """A modal screen that focuses ``first_focus()`` as it mounts (not later, as ``focus()``
    would) and then tells the app so (``ScreenReady``)."""

    def first_focus(self) -> Widget | None:
        return None

    def on_mount(self) -> None:
        with suppress(NoMatches):  # none: a screen closed as it opened (the app quitting)
            widget = self.first_focus()
            if widget is not None:
                self.set_focus(widget)
        self.app.post_message(ScreenReady())


def _picker_line(template: Template) -> str:
    """A template as the picker lists it: id, title, precedence, and who reads what it seals
    (before the form opens, so a sender knows the host will not see it)."""
    line = f"{shown(template.id)}: {shown(template.title, limit=120)} [{template.default_precedence}]"
    audiences = sealed_audiences(template)
    return f"{line} · sealed: {shown(audiences, limit=200)}" if audiences else line


class TemplatePicker(Modal[None]):
    """Choose which agreed template to compose: ``on_pick(template)`` is called as the picker
    closes, in the same step, so the form opens before the next key is routed."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss_none", "Cancel"),
        Binding("enter", "pick", "Compose", priority=True),
    ]

    def __init__(self, templates: list[Template], *, title: str,
                 on_pick: Callable[[Template], None]) -> None:
        super().__init__()
        self.templates, self.on_pick = templates, on_pick
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(shown(self.heading)), classes="title")
            yield OptionList(*[Option(Text(_picker_line(t)), id=t.id) for t in self.templates],
                             id="templates")
            yield Label("↑↓ choose · Enter compose · Esc cancel", classes="hint")
        yield Footer()

    def first_focus(self) -> Widget | None:
        return self.query_one("#templates", OptionList)

    def action_pick(self) -> None:
        option = self.query_one("#templates", OptionList).highlighted_option
        if option is not None:
            self._pick(option.id)

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:  # a click
        self._pick(event.option.id)

    def _pick(self, template_id: str | None) -> None:
        template = next(t for t in self.templates if t.id == template_id)
        self.dismiss(None)
        self.on_pick(template)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ChoiceInput(Input):
    """A field with a fixed set of values: typed (completed as it is typed; → takes the
    completion) or stepped through with ↑↓. A value outside the set is refused on sending."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("up", "step(-1)", show=False),
                                             Binding("down", "step(1)", show=False)]

    def __init__(self, choices: Sequence[str], **kwargs: Any) -> None:
        super().__init__(suggester=SuggestFromList(choices, case_sensitive=False), **kwargs)
        self.choices = list(choices)

    def action_step(self, by: int) -> None:
        if not self.choices:
            return
        at = self.choices.index(self.value) if self.value in self.choices else (
            -1 if by > 0 else len(self.choices))
        self.value = self.choices[(at + by) % len(self.choices)]
        self.cursor_position = len(self.value)


def choices_hint(field: FormField) -> str:
    """The values a choice field takes, for its hint (a catalogue's messages one a line)."""
    if all(label == value for label, value in field.choices):
        return "one of: " + " | ".join(value for _, value in field.choices) + "  (↑↓ to choose)"
    return "↑↓ to choose, or type the number:\n" + "\n".join(label for label, _ in field.choices)


class ComposeScreen(Modal[Envelope | None]):
    """A template's form: every field on a line of its own (label, input), its hint and its error
    below it, so an 80x24 screen shows several fields at once; the form scrolls. ``check(values,
    precedence)`` types and checks the values exactly as the server will
    (``hotline.console.forms``) and returns the envelope, or raises FormError; a refusal is shown
    under the field it names (and above the form), and nothing is sent."""

    DEFAULT_CSS = MODAL_CSS + """
    ComposeScreen .dialog { height: 100%; max-width: 120; border: none; padding: 0; }
    ComposeScreen .title { background: $accent; color: $text; padding: 0 1; }
    ComposeScreen #basis, ComposeScreen #deadline { padding: 0 1; height: 1; }
    ComposeScreen #linkdown { padding: 0 1; height: auto; }
    ComposeScreen #error { height: auto; max-height: 3; padding: 0 1; display: none; }
    ComposeScreen #error.-shown { display: block; }
    ComposeScreen #fields { height: 1fr; padding: 0 1; }
    ComposeScreen .row { height: 1; }
    ComposeScreen .label { width: 26; height: 1; text-style: bold; }
    ComposeScreen .row Input { width: 1fr; }
    ComposeScreen .hint, ComposeScreen #basis { padding-left: 2; text-wrap: nowrap;
        text-overflow: ellipsis; }
    ComposeScreen .hint.-full { text-wrap: wrap; }
    ComposeScreen .field-error { padding-left: 2; display: none; }
    ComposeScreen .field-error.-shown { display: block; }
    ComposeScreen Input.-invalid { border: none; background: $error 30%; }
    ComposeScreen #buttons { height: 1; padding: 0 1; }
    ComposeScreen #buttons Button { margin-right: 2; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "dismiss_none", "Cancel"),
        # the focus moves when Tab is read, not when the field it leaves gets to it: what is
        # typed next goes to the next field however fast it follows
        Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
        Binding("shift+tab", "app.focus_previous", "Previous field", show=False, priority=True),
    ]

    def __init__(self, form: Form, *, channel: str, check: Callable[[dict[str, str], Precedence], Envelope],
                 reply_to: str | None = None, link_up: bool = True,
                 seal: Callable[[Envelope], Awaitable[Envelope]] | None = None) -> None:
        super().__init__()
        self.form, self.channel, self.check, self.seal = form, channel, check, seal
        self._sending = False  # sealing (it may prove keys over the line): one send at a time
        self.reply_to, self.link_up = reply_to, link_up
        self._hints: dict[str, tuple[Text, Text]] = {}  # field suffix: (first line, all of it)

    def compose(self) -> ComposeResult:
        template = self.form.template
        with Vertical(classes="dialog"):
            yield Label(Text(shown(f"{template.title} ({template.id} v{template.version}) on "
                                   f"{self.channel}" + (f", replying to {self.reply_to}"
                                                        if self.reply_to else ""), limit=200)),
                        classes="title")
            yield Static(Text(f"basis: {shown(template.basis, limit=300)}"), id="basis")
            yield Static(Text(deadline_text(template, template.default_precedence)), id="deadline")
            if not self.link_up:
                yield Static(Text("LINK DOWN: the message is kept in the outbox and sent, marked "
                                  "PENDING, when the line returns"), classes="error", id="linkdown")
            yield Static("", classes="error", id="error")
            with VerticalScroll(id="fields"):
                yield from self._row("* precedence", ChoiceInput(
                    [p.value for p in self.form.precedences], value=template.default_precedence.value,
                    id="precedence", compact=True, select_on_focus=True))
                yield self._hint("precedence", "one of: " + " | ".join(
                    p.value for p in self.form.precedences) + "  (↑↓ to choose; sets the deadline)")
                yield Static("", classes="field-error error", id="error-precedence")
                for i, field in enumerate(self.form.fields):
                    yield from self._row(field.label, self._input(i, field))
                    hint = field.hint + ("\n" + choices_hint(field) if field.kind == "choice" else "")
                    yield self._hint(str(i), ("" if field.required else "(optional) ") + hint)
                    yield Static("", classes="field-error error", id=f"error-{i}")
            with Horizontal(id="buttons"):
                yield Button("Send (ctrl+s)", variant="primary", id="send", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()

    def _hint(self, suffix: str, hint: str) -> Static:
        """A field's hint: its first line while another field has the focus, all of it while
        this one has (``hint_for``)."""
        full = Text("\n".join(shown(line, limit=1000) for line in hint.split("\n")))
        brief = Text(shown(hint.split("\n")[0], limit=200) + (" …" if "\n" in hint else ""))
        self._hints[suffix] = (brief, full)
        return Static(brief, classes="hint", id=f"hint-{suffix}")

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        suffix = (event.widget.id or "").removeprefix("field-")
        for key, (brief, full) in self._hints.items():
            hint = self.query_one(f"#hint-{key}", Static)
            hint.update(full if key == suffix else brief)
            hint.set_class(key == suffix, "-full")

    @staticmethod
    def _row(label: str, widget: Input) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label(Text(shown(label, limit=60), no_wrap=True, overflow="ellipsis"),
                        classes="label")
            yield widget

    @staticmethod
    def _input(i: int, field: FormField) -> Input:
        if field.kind == "choice":
            # a required choice starts blank unless the template gives a default: nothing is
            # chosen for the officer
            return ChoiceInput([value for _, value in field.choices], value=field.default,
                               placeholder="choose: ↑↓", id=f"field-{i}", compact=True)
        return Input(value=field.default, placeholder=field.path, id=f"field-{i}", compact=True)

    def first_focus(self) -> Widget | None:
        # the first field, not the precedence: typing starts the message
        return self.query_one("#field-0", Input) if self.form.fields else \
            self.query_one("#precedence", Input)

    def values(self) -> dict[str, str]:
        return {field.path: self.query_one(f"#field-{i}", Input).value
                for i, field in enumerate(self.form.fields)}

    def precedence(self) -> Precedence:
        """The chosen precedence.

        Raises:
            FormError: not one the template allows.
        """
        value = self.query_one("#precedence", Input).value.strip().upper()
        if value not in {p.value for p in self.form.precedences}:
            raise FormError("precedence: choose one of " + ", ".join(p.value for p in self.form.precedences),
                            field="precedence")
        return Precedence(value)

    @on(Input.Changed, "#precedence")
    def precedence_changed(self) -> None:
        try:
            text = deadline_text(self.form.template, self.precedence())
        except FormError:
            text = "precedence: " + ", ".join(p.value for p in self.form.precedences)
        self.query_one("#deadline", Static).update(Text(text))

    @on(Button.Pressed, "#send")
    async def action_send(self) -> None:
        if self._sending:
            return
        for widget in self.query(".-invalid"):
            widget.remove_class("-invalid")
        for widget in self.query(".field-error"):
            widget.remove_class("-shown")
        self.query_one("#error", Static).remove_class("-shown")
        try:
            envelope = self.check(self.values(), self.precedence())
        except FormError as exc:
            self.show_error(exc)
            return
        if self.seal is not None:  # the form stays open if its sealed fields cannot be sealed
            self._sending = True
            try:
                envelope = await self.seal(envelope)
            except HotlineError as exc:  # SealError: shown as it is, its code its own
                self.show_error(exc)
                return
            finally:
                self._sending = False
        self.dismiss(envelope)

    def show_error(self, exc: HotlineError) -> None:
        """The refusal above the form, and under the field it names (a ``FormError``'s), which
        takes the focus."""
        field = exc.field if isinstance(exc, FormError) else None
        where = f"{field}: " if field else ""
        text = Text(shown(f"✖ NOT SENT — {where}{exc.code}: {exc.message}", limit=500))
        error = self.query_one("#error", Static)
        error.update(text)
        error.add_class("-shown")
        if field is None:
            return
        index = next((i for i, f in enumerate(self.form.fields) if f.path == field), None)
        suffix = "precedence" if field == "precedence" else None if index is None else str(index)
        if suffix is None:
            return
        widget = self.query_one(f"#{'precedence' if suffix == 'precedence' else 'field-' + suffix}",
                                Input)
        widget.add_class("-invalid")
        below = self.query_one(f"#error-{suffix}", Static)
        below.update(Text(shown(f"✖ {exc.code}: {exc.message}", limit=500)))
        below.add_class("-shown")
        self.set_focus(widget)

    @on(Button.Pressed, "#cancel")
    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class TextScreen(Modal[None]):
    """A scrollable text (details, safety numbers, help); ``update`` replaces it."""

    DEFAULT_CSS = MODAL_CSS + "TextScreen .dialog { height: 100%; } TextScreen #body { height: 1fr; }"
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]

    def __init__(self, title: str, text: Text, *, screen_id: str) -> None:
        super().__init__(id=screen_id)
        self.heading, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(shown(self.heading, limit=200)), classes="title")
            with VerticalScroll(id="body"):
                yield Static(self.text, id="text")
        yield Footer()

    def first_focus(self) -> Widget | None:
        return self.query_one("#body", VerticalScroll)

    def update(self, text: Text) -> None:
        self.text = text
        self.query_one("#text", Static).update(text)

    def action_close(self) -> None:
        self.dismiss(None)


def details_text(sections: list[tuple[str, list[tuple[str, str]]]],
                 envelope: JSONObject | None) -> Text:
    """Headed sections of ``label: value`` lines (a section without lines is left out), then the
    envelope as JSON; every value sanitized, so no value can draw a line of its own."""
    out = Text()
    for heading, lines in sections:
        if not lines:
            continue
        out.append(f"{heading}\n", style="bold underline")
        for label, value in lines:
            out.append(f"  {shown(label, limit=80)}: " if label else "    ", style="bold")
            out.append(shown(value, limit=None) + "\n")
    if envelope is not None:
        out.append("envelope (as signed):\n", style="bold underline")
        for line in json.dumps(envelope, indent=2, ensure_ascii=False).splitlines():
            out.append(shown(line, limit=None) + "\n")
    return out
