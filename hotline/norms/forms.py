"""Typing a templated message by hand: ``window.start=...`` pairs -> a body of the schema's types.
Pure; used by ``hotline send --field`` and the console's forms.

A value is converted by its field's JSON Schema type: ``integer`` and ``boolean`` parse, an
array takes comma-separated items (``a, b``) or a JSON array, an object (or an array of
objects) takes JSON. Dotted paths build nested objects. What remains wrong after conversion is
for the template's own validator to name (``Template.check_body``), so the client refuses exactly
what the server would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hotline.canonical import JSONObject, parse
from hotline.display import shown_lines
from hotline.errorcodes import Code
from hotline.errors import HotlineError, ProtocolViolation
from hotline.norms.duration import describe_duration
from hotline.norms.schemawords import alternative, help_text, is_record, kind
from hotline.norms.template import FieldSpec, Template

_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}


def _invalid(message: str) -> ProtocolViolation:
    return ProtocolViolation(message, code=Code.TEMPLATE_INVALID)


def _scalar(kind: str, text: str, path: str) -> Any:
    if kind == "integer":
        try:
            return int(text.strip())
        except ValueError:
            raise _invalid(f"{path}: {text!r} is not an integer") from None
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise _invalid(f"{path}: {text!r} is not true or false")
    if kind == "any" and not text.lstrip().startswith(("[", "{")):
        return text
    if kind in ("object", "any") or (kind == "array" and text.lstrip().startswith("[")):
        try:
            return parse(text)
        except HotlineError as exc:
            raise _invalid(f"{path}: {kind} values are written as JSON ({exc.message})") from None
    return text


def convert(spec: FieldSpec, text: str) -> Any:
    """One field's text as its schema type (an enum member as itself)."""
    for member in spec.enum:
        if str(member) == text.strip():
            return member
    if not spec.type.startswith("array"):
        return _scalar(spec.type, text, spec.path)
    if text.lstrip().startswith("["):
        return _scalar("array", text, spec.path)
    item_type = spec.type.removeprefix("array of ")
    if item_type in ("object", "any"):
        raise _invalid(f"{spec.path}: a list of objects is written as a JSON array")
    return [_scalar(item_type, part.strip(), spec.path) for part in text.split(",") if part.strip()]


def body_from_fields(template: Template, fields: dict[str, str]) -> JSONObject:
    """Build a body from ``{dotted path: text}``.

    Raises:
        ProtocolViolation: ``template.invalid`` for an unknown field or a value of the wrong type.
    """
    specs = {spec.path: spec for spec in template.field_specs()}
    body: JSONObject = {}
    for path, text in fields.items():
        spec = specs.get(path)
        if spec is None:
            raise _invalid(f"{template.id} has no field {path!r}; its fields: {', '.join(specs)}")
        target = body
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = convert(spec, text)
    return body


def missing_fields(template: Template, body: JSONObject) -> list[FieldSpec]:
    """Required fields (including those of a present optional object) absent from ``body``."""
    missing = []
    for spec in template.field_specs():
        if not spec.required:
            continue
        node: Any = body
        for part in spec.path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            missing.append(spec)
    return missing


def describe_fields(template: Template) -> str:
    """The template's fields for a person at a terminal, from its schema: each field's path (as
    ``--field`` takes it), what it takes in words, its title and description; ``*`` marks the
    required ones; the fields of a list's objects are shown under it, and each form a
    ``oneOf``/``anyOf`` offers with the fields it requires."""
    lines = [f"{template.id} v{template.version}: {template.title}", f"basis: {template.basis}"]
    if template.ack is not None:
        deadline = template.ack.deadline
        lines.append(f"acknowledgement: {template.ack.kind}"
                     + (f" within {describe_duration(deadline)}" if deadline
                        else " within the precedence's deadline (FLASH 10 min ... ROUTINE 6 h)"))
    lines.append("fields (* required):")
    rows: list[_Row] = []
    _rows(template.fields, prefix="", indent=0, required=True, rows=rows)
    width = max((r.indent + len(r.name) for r in rows if r.kind is not None), default=0)
    for row in rows:
        pad = " " * row.indent
        if row.kind is None:  # a line of its own: the forms an object offers
            lines.append(f"    {pad}{row.name}")
            continue
        name = f"{row.name:<{width - row.indent}}"
        text = f" — {row.help}" if row.help else ""
        lines.append(f"  {pad}{'*' if row.required else ' '} {name}  {row.kind}{text}".rstrip())
    if template.readers:
        lines.append(f"sealed (the host never reads them): {sealed_audiences(template)}")
    return shown_lines("\n".join(lines))  # titles and texts are a party's


def sealed_audiences(template: Template) -> str:
    """Who may read each field the template seals, on one line (``""`` when it seals none):
    ``text: the parties; annex: mediator``."""
    return "; ".join(f"{name}: {'the parties' if readers == 'parties' else ', '.join(readers)}"
                     for name, readers in sorted(template.readers.items()))


@dataclass(frozen=True)
class _Row:
    indent: int
    name: str
    required: bool = False
    kind: str | None = None  # None: ``name`` is a whole line (an alternative)
    help: str = ""


def _rows(schema: JSONObject, *, prefix: str, indent: int, required: bool,
          rows: list[_Row]) -> None:
    """``schema``'s fields as rows: dotted paths for nested objects, indented keys for the
    objects of a list (typed as JSON, so their keys are what the sender writes)."""
    needed = set(schema.get("required", []))
    where = prefix.rstrip(".") or "the body"
    for keyword, how in (("oneOf", "exactly one"), ("anyOf", "at least one")):
        if isinstance(schema.get(keyword), list):
            rows.append(_Row(indent, f"{where} takes {how} of these forms:"))
            for i, sub in enumerate(schema[keyword]):
                rows.append(_Row(indent, f"  - {alternative(sub, prefix, i + 1)}"))
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        needs = required and name in needed
        if is_record(sub):
            if help_text(sub) or any(k in sub for k in ("oneOf", "anyOf")):
                rows.append(_Row(indent, path, needs, kind(sub), help_text(sub)))
            _rows(sub, prefix=f"{path}.", indent=indent, required=needs, rows=rows)
            continue
        rows.append(_Row(indent, path, needs, kind(sub), help_text(sub)))
        items = sub.get("items") if sub.get("type") == "array" else None
        if isinstance(items, dict) and is_record(items):
            _rows(items, prefix="", indent=indent + 4, required=True, rows=rows)
