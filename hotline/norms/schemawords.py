"""A template's body schema in words, for the help a person reads and the refusals a check gives.
Pure.

Everything here is built from the schema alone (its keywords and its annotations ``title``,
``description`` and ``examples``), never from a body: a refusal is logged where other parties read
it, so it names what a field takes, not what the sender wrote. A ``pattern`` is never quoted: a
regular expression tells an officer nothing, so a field's ``title`` and ``examples`` say what it
takes ("a language tag such as en or ru"); a schema without them says only that the form is not
the agreed one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMATS = {"date-time": "a UTC date and time such as 2026-12-01T06:00:00Z",
           "date": "a date such as 2026-12-01 (YYYY-MM-DD)"}
TYPES = {"string": "text", "integer": "a whole number", "boolean": "true or false",
         "array": "a list", "object": "an object", "null": "null", "number": "a number"}


def listing(words: Iterable[str], last: str = "or") -> str:
    """``a``, ``a or b``, ``a, b or c``."""
    items = list(words)
    if len(items) < 2:
        return "".join(items)
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def humanized(name: str) -> str:
    """A field's key as a label when its schema has no title: ``speed_knots`` -> ``Speed knots``."""
    text = name.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:] if text else name


def label(name: str, schema: Any) -> str:
    """The label of the field ``name``: its schema's ``title``, else its key made readable."""
    title = schema.get("title") if isinstance(schema, Mapping) else None
    return str(title).strip() if isinstance(title, str) and title.strip() else humanized(name)


def _article(phrase: str) -> str:
    return "an" if phrase[:1].lower() in "aeiou" else "a"


def _noun(title: str) -> str:
    """``Language tag`` -> ``a language tag``; an acronym (``BCP 47 tag``) keeps its case."""
    text = title.strip()
    if len(text) > 1 and not text[1].isupper():
        text = text[0].lower() + text[1:]
    return f"{_article(text)} {text}"


def examples(schema: Mapping[str, Any]) -> list[str]:
    found = schema.get("examples")
    return [str(e) for e in found if isinstance(e, (str, int)) and not isinstance(e, bool)] \
        if isinstance(found, list) else []


def expected(schema: Mapping[str, Any]) -> str | None:
    """What a text field takes, in words (``a language tag such as en or ru``), from its title
    and examples; None if the schema says neither."""
    title = schema.get("title")
    shown = examples(schema)
    noun = _noun(title) if isinstance(title, str) and title.strip() else None
    if noun and shown:
        return f"{noun} such as {listing(shown)}"
    if shown:
        return f"text like {listing(shown)}"
    return noun


def choices(values: Sequence[Any]) -> str:
    """``one of: ICBM, SLBM`` (an enum's members as written in a body)."""
    return "one of: " + ", ".join("null" if v is None else str(v).lower() if isinstance(v, bool)
                                  else str(v) for v in values)


def _range(schema: Mapping[str, Any], low: str, high: str, unit: str = "") -> str:
    lo, hi = schema.get(low), schema.get(high)
    if lo is not None and hi is not None:
        return f" from {lo} to {hi}{unit}"
    if lo is not None:
        return f", at least {lo}{unit}"
    if hi is not None:
        return f", at most {hi}{unit}"
    return ""


def _count(schema: Mapping[str, Any]) -> str:
    lo, hi = schema.get("minItems"), schema.get("maxItems")
    if lo and hi is not None:
        return f"{lo} to {hi} "
    if hi is not None:
        return f"up to {hi} "
    return f"{lo} or more " if lo else ""


def is_record(schema: Any) -> bool:
    """An object with named fields (shown field by field, not typed as JSON)."""
    return isinstance(schema, Mapping) and isinstance(schema.get("properties"), Mapping) \
        and schema.get("type", "object") == "object"


def kind(schema: Any) -> str:
    """What a field takes, in a few words: ``one of: km, nmi``, ``a whole number from 1 to 5000``,
    ``list of objects, 3 to 32`` (the caller shows an object's fields)."""
    if not isinstance(schema, Mapping):
        return "anything"
    if "const" in schema:
        return f"exactly {schema['const']}"
    if isinstance(schema.get("enum"), list):
        return choices(schema["enum"])
    type_ = schema.get("type")
    if isinstance(schema.get("format"), str) and schema["format"] in FORMATS:
        return FORMATS[schema["format"]]
    if type_ == "string":
        words = expected(schema) if "pattern" in schema and examples(schema) else None
        return "text" + (f": {words}" if words else "")
    if type_ == "integer":
        return "a whole number" + _range(schema, "minimum", "maximum")
    if type_ == "array":
        items = schema.get("items")
        count = _count(schema)
        if is_record(items):
            return f"a JSON list of {count}objects with the fields below"
        of = kind(items) if isinstance(items, Mapping) and items else "anything"
        return f"a comma-separated list of {count}items, each {of}"
    if is_record(schema):
        return "the fields below"
    if isinstance(type_, str):
        return TYPES.get(type_, type_) + (" (as JSON)" if type_ == "object" else "")
    return "anything"


def help_text(schema: Any) -> str:
    """A field's title and description, as one line of help."""
    if not isinstance(schema, Mapping):
        return ""
    title, description = schema.get("title"), schema.get("description")
    parts = [str(p).strip() for p in (title, description) if isinstance(p, str) and p.strip()]
    if len(parts) == 2 and parts[1].lower().startswith(parts[0].lower()):
        parts = parts[1:]  # "Latitude in decimal degrees" says its title already
    return ": ".join(parts)


# -- alternatives (oneOf, anyOf) ------------------------------------------------------------------

def alternative(sub: Any, prefix: str, number: int) -> str:
    """One alternative of a ``oneOf``/``anyOf``, named by its title and the fields it requires:
    ``boundary points (impact_area.boundary)``."""
    if not isinstance(sub, Mapping):
        return f"form {number}"
    fields = [f"{prefix}{f}" for f in sub.get("required", []) if isinstance(f, str)]
    if not fields and is_record(sub):
        fields = [f"{prefix}{f}" for f in sub["properties"]]
    title = sub.get("title") or sub.get("description")
    name = str(title).strip() if isinstance(title, str) and title.strip() else None
    if "const" in sub or "enum" in sub or ("type" in sub and not fields):
        what = kind(sub)
        return f"{name} ({what})" if name else what
    if name and fields:
        return f"{name} ({', '.join(fields)})"
    if fields:
        return "with " + listing(fields, "and")
    return name or f"form {number}"


def alternatives(schema: Mapping[str, Any], keyword: str, prefix: str) -> str:
    """``a (x) or b (y, z)``: the forms a ``oneOf``/``anyOf`` of ``schema`` offers."""
    subs = schema.get(keyword)
    if not isinstance(subs, list):
        return ""
    return listing(alternative(sub, prefix, i + 1) for i, sub in enumerate(subs))
