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

Every string from the body, and every title (a template is a party's text), goes through
``hotline.display.shown``: no returned line holds a control character or a line break.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

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
    return "; ".join(f"{name}: {_value(value) if not _nested(value) else _compact(value, sub)}"
                     for name, value, sub in _fields(body, schema))


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
