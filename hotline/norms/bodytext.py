"""A message body as a person reads it: ``Title: value`` in the template's field order. Pure.

The one renderer of bodies for ``hotline listen`` and the console. Fields come in the order the
template's schema lists them, each labelled with its schema ``title`` (else its key made
readable: ``speed_knots`` -> ``Speed knots``); fields the schema does not know follow in the
body's order. Values are shown as written, never as Python or JSON: text as itself, ``yes``/``no``
for booleans, lists of plain values as ``a, b``.

- ``body_lines``: nested objects and lists of objects as indented ``Title: value`` lines (a list's
  objects numbered ``1.``, ``2.``), for a view with room for several lines.
- ``body_line``: the same on one line, ``Title: value; Title: (Sub: value, Sub: value)``, lists
  in brackets when nested, for a view that needs one line.
- An attachment field (its derived schema says so) is a file a line, ``NAME (SIZE bytes,
  MEDIA TYPE), SHA-256 DIGEST``: never a sealed file's stream key.

Every string from the body, and every title (a template is a party's text), goes through
``hotline.display.shown``: no returned line holds a control character or a line break.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hotline.attachments.refs import FILES_COMMENT
from hotline.display import shown
from hotline.norms.schemawords import label

LABEL_LIMIT = 80


def _fields(body: Mapping[str, Any], schema: Any) -> Iterator[tuple[str, Any, Any]]:
    """``(label, value, subschema)`` in the schema's order, then the keys it does not define."""
    props = schema.get("properties") if isinstance(schema, Mapping) else None
    props = props if isinstance(props, Mapping) else {}
    for name, sub in props.items():
        if name in body:
            yield shown(label(str(name), sub), limit=LABEL_LIMIT), body[name], sub
    for name, value in body.items():
        if name not in props:
            yield shown(label(str(name), None), limit=LABEL_LIMIT), value, None


def _items(schema: Any) -> Any:
    return schema.get("items") if isinstance(schema, Mapping) else None


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    return shown(value)


def _plain(value: Any) -> bool:
    return not isinstance(value, (dict, list))


def _nested(value: Any) -> bool:
    """Whether ``value`` needs lines of its own: an object, or a list holding one."""
    return isinstance(value, dict) or (isinstance(value, list) and not all(map(_plain, value)))


# -- several lines ---------------------------------------------------------------------------

def body_lines(body: Mapping[str, Any], schema: Any = None, *, indent: str = "  ") -> list[str]:
    """``body`` as ``Title: value`` lines, the fields of a nested object or of a list's objects
    indented by ``indent`` under their field's title."""
    out: list[str] = []
    for name, value, sub in _fields(body, schema):
        out += _field_lines(name, value, sub, indent)
    return out


def _field_lines(name: str, value: Any, schema: Any, indent: str) -> list[str]:
    if _is_files(value, schema):
        return [f"{name}:"] + [f"{indent}{n}. {_file(item)}" for n, item in enumerate(value, 1)]
    if isinstance(value, dict):
        inner = body_lines(value, schema, indent=indent)
        return [f"{name}:" + ("" if inner else " (none)")] + [indent + line for line in inner]
    if isinstance(value, list) and not all(map(_plain, value)):
        out = [f"{name}:"]
        for number, item in enumerate(value, 1):
            mark = f"{number}. "
            inner = _item_lines(item, _items(schema), indent)
            out += [indent + (mark if i == 0 else " " * len(mark)) + line
                    for i, line in enumerate(inner)]
        return out
    return [f"{name}: {_value(value)}"]


def _item_lines(item: Any, schema: Any, indent: str) -> list[str]:
    if isinstance(item, dict):
        return body_lines(item, schema, indent=indent) or ["(none)"]
    if isinstance(item, list):
        return [_compact(item, _items(schema))]
    return [_scalar(item)]


def _value(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_scalar(v) for v in value) if value else "(none)"
    return _scalar(value)


# -- one line --------------------------------------------------------------------------------

def body_line(body: Mapping[str, Any], schema: Any = None) -> str:
    """``body`` on one line: ``Title: value; Title: (Sub: value, Sub: value); Title: a, b``."""
    return "; ".join(f"{name}: {_one_line(value, sub)}" for name, value, sub in _fields(body, schema))


def _one_line(value: Any, schema: Any) -> str:
    if _is_files(value, schema):
        return "[" + ", ".join(_file(item, digest=False) for item in value) + "]"
    return _value(value) if not _nested(value) else _compact(value, schema)


# -- attached files ----------------------------------------------------------------------------

def _is_files(value: Any, schema: Any) -> bool:
    """Whether ``value`` is an attachment field's list of references (its schema says so)."""
    return (isinstance(schema, Mapping) and schema.get("$comment") == FILES_COMMENT
            and isinstance(value, list) and all(isinstance(item, dict) for item in value))


def _file(ref: Mapping[str, Any], *, digest: bool = True) -> str:
    """One attached file as a person reads it: name, size, media type and (``digest``) SHA-256;
    a sealed one's stream key is never shown."""
    size = ref.get("size")
    amount = f"{size:,} bytes" if isinstance(size, int) and not isinstance(size, bool) else "size ?"
    text = (f"{shown(ref.get('name'), limit=LABEL_LIMIT)} ({amount}, "
            f"{shown(ref.get('media_type'), limit=LABEL_LIMIT)})")
    return text + (f", SHA-256 {shown(ref.get('sha256'), limit=64)}" if digest else "")


def has_files(body: Mapping[str, Any], schema: Any = None) -> bool:
    """Whether ``body`` names attached files (a field whose schema is an attachment field's)."""
    return any(_is_files(value, sub) for _, value, sub in _fields(body, schema))


def _compact(value: Any, schema: Any) -> str:
    if isinstance(value, dict):
        return "(" + ", ".join(f"{name}: {_compact(v, sub)}"
                               for name, v, sub in _fields(value, schema)) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v, _items(schema)) for v in value) + "]"
    return _scalar(value)


def is_flat(body: Mapping[str, Any]) -> bool:
    """Whether ``body`` reads well on one line: no object, no list of objects."""
    return not any(_nested(v) for v in body.values())
