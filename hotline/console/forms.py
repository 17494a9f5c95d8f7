"""A protocol template as a form, and a form's values as a body checked exactly as the server will
check it. Pure (no Textual): the compose screen draws what ``build_form`` describes.

Theory of operation:

- ``build_form`` turns ``Template.field_specs()`` into ``FormField`` s: required ones marked
  ``*``, enums and booleans as choices, the type and description as a hint. For ``preagreed``
  with a catalogue in the channel's agreement, the number is a choice among the catalogue's
  messages (shown in the officer's language) and the code word is filled in from it.
- ``envelope_from_form`` types the values with ``hotline.norms.forms.body_from_fields`` (the
  same conversion as ``hotline send --field``), names every missing required field, then runs the
  template's own ``check`` (kind, sender, precedence, JSON Schema, audience, rules) on the very
  envelope about to be signed: the console refuses what the server would refuse, before sending,
  and ``FormError.field`` names the form field at fault so the screen can point at it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hotline.canonical import JSONObject
from hotline.envelope import Envelope, Precedence
from hotline.errorcodes import Code
from hotline.errors import HotlineError, PeerCode, ProtocolViolation
from hotline.norms.agreement import CatalogueItem
from hotline.norms.duration import describe_duration
from hotline.norms.forms import body_from_fields, missing_fields
from hotline.norms.rules import Context
from hotline.norms.template import FieldSpec, Template

_BODY_PATH = re.compile(r"body((?:\.[A-Za-z0-9_-]+|\[\d+\])+)")


class FormError(ProtocolViolation):
    """A form refused before sending; ``field`` is the form field at fault, if one is."""

    code = Code.TEMPLATE_INVALID

    def __init__(self, message: str, *, code: Code | PeerCode | None = None,
                 field: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field


@dataclass(frozen=True)
class FormField:
    """One input of a form."""

    path: str  # dotted body path (window.start)
    required: bool
    kind: str  # text, choice, files (paths of files to attach)
    hint: str  # type, format and description
    choices: tuple[tuple[str, str], ...] = ()  # (label, value) for choices
    default: str = ""

    @property
    def label(self) -> str:
        return ("* " if self.required else "  ") + self.path


@dataclass(frozen=True)
class Form:
    template: Template
    fields: tuple[FormField, ...]
    catalogue: tuple[CatalogueItem, ...] = ()

    @property
    def precedences(self) -> tuple[Precedence, ...]:
        return self.template.allowed_precedence

    def field(self, path: str) -> FormField | None:
        return next((f for f in self.fields if f.path == path), None)


def build_form(template: Template, *, catalogue: tuple[CatalogueItem, ...] = (),
               lang: str = "en", parties: Iterable[str] = ()) -> Form:
    """The form for ``template``; ``catalogue`` is the channel agreement's pre-agreed messages,
    ``parties`` the channel's (a field the template seals says who will read it)."""
    fields = []
    for spec in template.field_specs():
        if template.id == "preagreed" and catalogue and spec.path == "code":
            continue  # filled in from the chosen catalogue entry
        if template.id == "preagreed" and catalogue and spec.path == "number":
            choices = tuple((f"{c.number} {c.code}: {c.text_in(lang)}", str(c.number))
                            for c in catalogue)
            fields.append(FormField("number", True, "choice", "the pre-agreed message to send "
                                    "(the receiver reads it in its own language)", choices))
            continue
        made = _field(spec, lang)
        if spec.path in template.attachments:
            made = FormField(spec.path, spec.required, "files", FILES_HINT)
        if spec.path in template.readers:  # the sender sees who will read it, before sending
            readers = ", ".join(sorted(template.readers_of(spec.path, parties))) or "nobody"
            made = dataclasses.replace(made, hint=f"SEALED: only {readers} can read it"
                                       + (f" — {made.hint}" if made.hint else ""))
        fields.append(made)
    return Form(template, tuple(fields), catalogue)


FILES_HINT = ("paths of the files to attach, comma-separated: each is uploaded before the message "
              "and checked against its SHA-256")


def file_paths(text: str) -> list[str]:
    """A files field's paths, as typed (comma-separated, blanks dropped)."""
    return [part.strip() for part in text.split(",") if part.strip()]


def _field(spec: FieldSpec, lang: str) -> FormField:
    hint = spec.type + (f", {spec.format}" if spec.format else "")
    if spec.enum:  # the choices say it all (listed by the form)
        hint = ""
    elif spec.type.startswith("array") and spec.type not in ("array of object", "array of any"):
        hint += " (comma-separated)"
    elif spec.type in ("object", "array of object", "any", "array of any"):
        hint += " (JSON)"
    if spec.description:
        hint += f" — {spec.description}" if hint else spec.description
    default = spec.schema.get("default")
    default_text = "" if default is None else str(default)
    if spec.path == "lang" and spec.type == "string":
        default_text = lang
    if spec.enum:
        choices = tuple((str(v), str(v)) for v in spec.enum)
        return FormField(spec.path, spec.required, "choice", hint, choices, default_text)
    if spec.type == "boolean":
        return FormField(spec.path, spec.required, "choice", hint, (("true", "true"), ("false", "false")),
                         default_text.lower())
    return FormField(spec.path, spec.required, "text", hint, (), default_text)


def deadline_text(template: Template, precedence: Precedence) -> str:
    """What the recipients owe and how fast, for the form's header."""
    if template.ack is None:
        return "no acknowledgement owed"
    deadline = template.ack_deadline(precedence)
    owed = "a reply" if template.ack.kind.value == "reply" else f"'{template.ack.kind.value}' ack"
    source = "the template's own deadline" if template.ack.deadline else f"the {precedence} deadline"
    return f"recipients owe {owed} within {describe_duration(deadline)} ({source})" if deadline \
        else f"recipients owe {owed}"


def body_from_form(form: Form, values: Mapping[str, str],
                   files: Mapping[str, list[JSONObject]] | None = None) -> JSONObject:
    """The body the form's values describe (empty values are left out), typed by the schema;
    a files field's value is the references in ``files`` (the shell reads the files).

    Raises:
        FormError: a value of the wrong type, or a required field left empty (``field`` names it).
    """
    kinds = {f.path: f.kind for f in form.fields}
    given = {path: text for path, text in values.items()
             if text.strip() and kinds.get(path) != "files"}
    try:
        body = body_from_fields(form.template, given)
    except HotlineError as exc:
        raise FormError(exc.message, field=_field_in(exc.message, form, prefix=True)) from None
    body.update({name: list(refs) for name, refs in (files or {}).items() if refs})
    if form.template.id == "preagreed" and form.catalogue and "number" in body and "code" not in body:
        entry = next((c for c in form.catalogue if c.number == body["number"]), None)
        if entry is not None:
            body["code"] = entry.code
    missing = missing_fields(form.template, body)
    if missing:
        names = ", ".join(spec.path for spec in missing)
        raise FormError(f"{form.template.id}: required field(s) missing: {names}", field=missing[0].path)
    return body


def check_envelope(form: Form, envelope: Envelope, ctx: Context) -> None:
    """Run the template's full check (the server's, but for the rate) on ``envelope`` as
    composed: the fields the template seals are still in clear (sealed once the console has
    the readers' keys proven, ``hotline.console.link.Link.seal``).

    Raises:
        FormError: with the server's code and message, and the form field the message names.
    """
    try:
        form.template.check(envelope, ctx, composed=True)
    except ProtocolViolation as exc:
        raise FormError(exc.message, code=exc.code, field=_field_in(exc.message, form)) from None


def envelope_from_form(form: Form, values: Mapping[str, str], *, precedence: Precedence,
                       ctx: Context, build: Callable[[JSONObject, Precedence], Envelope],
                       files: Mapping[str, list[JSONObject]] | None = None) -> Envelope:
    """Type and check the values (``files``: each files field's references);
    ``build(body, precedence)`` makes the (unsigned) envelope.

    Raises:
        FormError: what is wrong, naming the field where there is one.
    """
    body = body_from_form(form, values, files)
    envelope = build(body, precedence)
    check_envelope(form, envelope, ctx)
    return envelope


def _field_in(message: str, form: Form, *, prefix: bool = False) -> str | None:
    """The form field a refusal message is about: ``body.window.start`` (a check's wording) or a
    leading ``window.start:`` (a conversion's)."""
    paths = sorted((f.path for f in form.fields), key=len, reverse=True)
    if prefix:
        head = message.split(":", 1)[0].strip()
        if head in paths:
            return head
    found = _BODY_PATH.search(message)
    if found is None:
        return next((p for p in paths if re.search(rf"\b{re.escape(p)}\b", message)), None)
    named = re.sub(r"\[\d+\]", "", found.group(1)).lstrip(".")
    for path in paths:  # the field itself, the object it belongs to, or a field inside it
        if named == path or named.startswith(path + "."):
            return path
    return next((p for p in paths if p.startswith(named + ".")), None)
