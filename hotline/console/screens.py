"""The console's modal screens: pick a template, fill its form, look at an entry's details, compare
safety numbers, read the help. Each closes with Escape; none talks to the network itself."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, OptionList, Select, Static
from textual.widgets.option_list import Option

from hotline.console.forms import Form, FormError, deadline_text
from hotline.display import shown
from hotline.envelope import Envelope, Precedence
from hotline.protocols.template import Template

MODAL_CSS = """
ModalScreen { align: center middle; }
.dialog { width: 100%; max-width: 100; height: auto; max-height: 100%; border: thick $accent;
          background: $surface; padding: 0 1; }
.title { text-style: bold; }
.hint { color: $text-muted; }
.error { color: $error; text-style: bold; }
.-invalid { border: tall $error; }
"""


class TemplatePicker(ModalScreen[Template | None]):
    """Choose which agreed template to compose."""

    DEFAULT_CSS = MODAL_CSS
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss_none", "Cancel")]

    def __init__(self, templates: list[Template], *, title: str) -> None:
        super().__init__()
        self.templates = templates
        self.heading = title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(shown(self.heading)), classes="title")
            yield OptionList(*[Option(Text(f"{shown(t.id)}: {shown(t.title, limit=120)} "
                                           f"[{t.default_precedence}]"), id=t.id)
                               for t in self.templates], id="templates")
            yield Label("↑↓ choose · Enter compose · Esc cancel", classes="hint")
        yield Footer()

    @on(OptionList.OptionSelected)
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(next(t for t in self.templates if t.id == event.option.id))

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class ComposeScreen(ModalScreen[Envelope | None]):
    """A template's form. ``check(values, precedence)`` types and checks the values exactly as the
    server will (``hotline.console.forms``) and returns the envelope, or raises FormError; a
    refusal is shown with the field named, and nothing is sent."""

    DEFAULT_CSS = MODAL_CSS + """
    ComposeScreen .dialog { height: 100%; }
    ComposeScreen #fields { height: 1fr; }
    ComposeScreen Input, ComposeScreen Select { margin: 0; }
    ComposeScreen #buttons { height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "dismiss_none", "Cancel"),
    ]

    def __init__(self, form: Form, *, channel: str, check: Callable[[dict[str, str], Precedence], Envelope],
                 reply_to: str | None = None, link_up: bool = True) -> None:
        super().__init__()
        self.form, self.channel, self.check = form, channel, check
        self.reply_to, self.link_up = reply_to, link_up

    def compose(self) -> ComposeResult:
        template = self.form.template
        with Vertical(classes="dialog"):
            yield Label(Text(shown(f"{template.title} ({template.id} v{template.version}) on "
                                   f"{self.channel}" + (f", replying to {self.reply_to}"
                                                        if self.reply_to else ""), limit=200)),
                        classes="title")
            yield Static(Text(f"basis: {shown(template.basis, limit=150)}"), classes="hint", id="basis")
            yield Static(Text(deadline_text(template, template.default_precedence)), id="deadline")
            if not self.link_up:
                yield Static(Text("LINK DOWN: the message is kept in the outbox and sent, marked "
                                  "PENDING, when the line returns"), classes="error")
            with Horizontal(id="precedence-row"):
                yield Select([(p.value, p.value) for p in self.form.precedences], allow_blank=False,
                             value=template.default_precedence.value, id="precedence",
                             prompt="precedence")
            with VerticalScroll(id="fields"):
                for i, field in enumerate(self.form.fields):
                    yield Label(Text(shown(field.label, limit=200)
                                     + ("" if field.required else " (optional)")),
                                classes="title")
                    if field.kind == "choice":
                        # a required choice starts blank unless the template gives a default:
                        # nothing is chosen for the officer
                        yield Select([(Text(shown(label, limit=200)), value)
                                      for label, value in field.choices],
                                     allow_blank=not (field.required and field.default),
                                     value=field.default if field.default else Select.NULL,
                                     id=f"field-{i}", prompt=field.path)
                    else:
                        yield Input(value=field.default, placeholder=field.path, id=f"field-{i}")
                    yield Static(Text(shown(field.hint, limit=500)), classes="hint")
            yield Static("", classes="error", id="error")
            with Horizontal(id="buttons"):
                yield Button("Send (ctrl+s)", variant="primary", id="send")
                yield Button("Cancel (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        if self.form.fields:  # the first field, not the precedence: typing starts the message
            self.query_one("#field-0").focus()

    def values(self) -> dict[str, str]:
        out = {}
        for i, field in enumerate(self.form.fields):
            widget = self.query_one(f"#field-{i}")
            if isinstance(widget, Select):
                out[field.path] = "" if widget.value is Select.NULL else str(widget.value)
            elif isinstance(widget, Input):
                out[field.path] = widget.value
        return out

    def precedence(self) -> Precedence:
        value = self.query_one("#precedence", Select).value
        return Precedence(str(value)) if value is not Select.NULL else self.form.template.default_precedence

    @on(Select.Changed, "#precedence")
    def precedence_changed(self) -> None:
        self.query_one("#deadline", Static).update(Text(deadline_text(self.form.template, self.precedence())))

    @on(Button.Pressed, "#send")
    def action_send(self) -> None:
        for widget in self.query(".-invalid"):
            widget.remove_class("-invalid")
        try:
            envelope = self.check(self.values(), self.precedence())
        except FormError as exc:
            self.show_error(exc)
            return
        self.dismiss(envelope)

    def show_error(self, exc: FormError) -> None:
        where = f"{exc.field}: " if exc.field else ""
        self.query_one("#error", Static).update(Text(shown(f"✖ NOT SENT — {where}{exc.code}: "
                                                           f"{exc.message}", limit=500)))
        if exc.field is not None:
            index = next((i for i, f in enumerate(self.form.fields) if f.path == exc.field), None)
            if index is not None:
                widget = self.query_one(f"#field-{index}")
                widget.add_class("-invalid")
                widget.focus()

    @on(Button.Pressed, "#cancel")
    def action_dismiss_none(self) -> None:
        self.dismiss(None)


class TextScreen(ModalScreen[None]):
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

    def update(self, text: Text) -> None:
        self.text = text
        self.query_one("#text", Static).update(text)

    def action_close(self) -> None:
        self.dismiss(None)


def details_text(sections: list[tuple[str, list[tuple[str, str]]]],
                 envelope: dict[str, Any] | None) -> Text:
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
