"""Plain YAML: the data subset a template file may use. Pure.

Theory of operation: a template comes from a party that may be hostile (an agreement pins it;
every server, client and auditor of the channel parses it), so its YAML is plain data and its
size is bounded before anything is built from it:

- at most ``MAX_BYTES`` bytes of UTF-8, nested at most ``MAX_DEPTH`` deep, at most ``MAX_NODES``
  values in all;
- no anchors (``&a``) or aliases (``*a``): an alias makes a DAG of a tree, and a 1 KB file of
  nested aliases (a "billion laughs") expands to 10^8 values in every loader that walks it;
- no tags (``!!binary``, ``!!set``, ``!foo``): values are text, integers, booleans, null, lists
  and maps with text keys, nothing else; no merge keys (``<<`` is just text);
- YAML 1.2-like scalars: no implicit dates (``2026-01-01`` stays text), no ``yes``/``no``
  booleans (Norway's ``NO`` is not false), decimal integers only (``0755`` and ``12:30`` stay
  text) within the wire's ±(2^53 - 1), no floats (the wire has none), no duplicate keys.

The file is read as a stream of parser events first (libyaml where it is built): that pass does
no composing and stops at the first event the subset refuses, so its cost is linear in the
file's bytes whatever they hold. Only a file that passed is loaded. Every failure is a
``ConfigError`` naming the file and line, never another exception.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from hotline.canonical import JSONObject
from hotline.errors import ConfigError

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32  # as deep as the wire nests; the deepest shipped template nests 13
MAX_NODES = 10_000  # the largest shipped template has under 400
MAX_INT = 2**53 - 1  # the wire's limit (RFC 8785 / I-JSON)

# libyaml's parser where it is built (much faster); the resolvers and constructors below are ours.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_INT = re.compile(r"^[-+]?(?:0|[1-9][0-9]*)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_KEPT = ("tag:yaml.org,2002:null", "tag:yaml.org,2002:float")  # float only to refuse it by name


class _PlainLoader(_BaseLoader):  # type: ignore[misc,valid-type]
    """The loader for a file that passed the event scan (see the module doc)."""


_PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag in _KEPT]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
for _first in "-+0123456789":
    _PlainLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, [_first])
for _first in "tTfF":
    _PlainLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _BOOL, [_first])


def _refuse(node: yaml.Node, problem: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(None, None, problem, node.start_mark)


def _mapping(loader: _PlainLoader, node: yaml.MappingNode) -> JSONObject:
    result: JSONObject = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise _refuse(key_node, "a key is text (quote it)")
        if key in result:
            raise _refuse(key_node, f"duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _integer(loader: _PlainLoader, node: yaml.ScalarNode) -> int:
    text = str(node.value)
    if len(text.lstrip("+-")) > 16 or abs(int(text)) > MAX_INT:  # 16 digits: int() stays cheap
        raise _refuse(node, f"integers are at most {MAX_INT} in size (the wire's limit)")
    return int(text)


def _no_float(loader: _PlainLoader, node: yaml.ScalarNode) -> Any:
    raise _refuse(node, f"{node.value!r}: floating-point numbers are not allowed (write a string "
                  "or a scaled integer)")


_PlainLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)
_PlainLoader.add_constructor("tag:yaml.org,2002:int", _integer)
_PlainLoader.add_constructor("tag:yaml.org,2002:float", _no_float)


def _scan(text: str) -> None:
    """Raise at the first event outside the plain subset; count values and depth."""
    depth = nodes = 0
    for event in yaml.parse(text, Loader=_PlainLoader):
        mark = event.start_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        anchor, tag = getattr(event, "anchor", None), getattr(event, "tag", None)
        if isinstance(event, yaml.AliasEvent):
            raise ConfigError(f"{line}aliases (*{anchor}) are not allowed: write the value out")
        if anchor is not None:
            raise ConfigError(f"{line}anchors (&{anchor}) are not allowed: a template is plain data")
        if tag is not None:
            raise ConfigError(f"{line}tags ({tag}) are not allowed: a template is plain data "
                              "(text, integers, booleans, null, lists and maps)")
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{line}nested deeper than {MAX_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
        if isinstance(event, yaml.NodeEvent):
            nodes += 1
            if nodes > MAX_NODES:
                raise ConfigError(f"{line}more than {MAX_NODES} values in one file")


def load_yaml(raw: bytes, *, source: str) -> Any:
    """One plain-YAML document (see the module doc).

    Raises:
        ConfigError: naming ``source``, the line and the problem.
    """
    if len(raw) > MAX_BYTES:
        raise ConfigError(f"a template file is at most {MAX_BYTES} bytes", file=source)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError("a template file is UTF-8 text", file=source) from None
    try:
        _scan(text)
        return yaml.load(text, Loader=_PlainLoader)
    except ConfigError as exc:
        raise exc.in_file(source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}{problem}", file=source) from None
