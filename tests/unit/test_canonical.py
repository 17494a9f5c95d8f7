"""hotline.canonical: strict JSON in, RFC 8785 (JCS) bytes out (docs/ARCHITECTURE.md "Canonical JSON").

Every refusal is a ``WireError`` with a stable code; a stray ``ValueError``/``TypeError`` is a bug,
so the fuzz properties at the end feed arbitrary text and bytes to ``parse``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hotline.canonical import MAX_DEPTH, MAX_SAFE_INT, canonical_bytes, check_value, dumps, parse
from hotline.errors import WireError

# Deterministic and quiet: no example database on disk, same examples on every run.
FAST = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow])


def refused(code: str, data: Any, **kwargs: Any) -> WireError:
    with pytest.raises(WireError) as info:
        parse(data, **kwargs)
    assert info.value.code == code, info.value.message
    return info.value


def same(a: Any, b: Any) -> bool:
    """Equality that also tells True from 1 (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def nested(depth: int) -> Any:
    """A scalar wrapped in ``depth`` lists."""
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def depth_of(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    return 0


# -- RFC 8785 vectors -------------------------------------------------------------------------

# RFC 8785 §3.2.3: properties sort by their UTF-16 code units, not by code points, so
# U+1F600 (surrogates D83D DE00) sorts before U+FB33. Nothing but < U+0020, '"' and '\' is escaped.
RFC8785_SORTING_INPUT = (
    '{"\\u20ac": "Euro Sign", "\\r": "Carriage Return",'
    ' "\\ufb33": "Hebrew Letter Dalet With Dagesh",'
    ' "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": "Control",'
    ' "\\u00f6": "Latin Small Letter O With Diaeresis"}'
)
RFC8785_SORTING_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode("utf-8")

# RFC 8785 §3.2.2 example, without its "numbers" member (hotline refuses floats).
RFC8785_ESCAPING_INPUT = (
    '{"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/", '
    '"literals": [null, true, false]}'
)
RFC8785_ESCAPING_OUTPUT = (
    '{"literals":[null,true,false],"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode("utf-8")


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param(RFC8785_SORTING_INPUT, RFC8785_SORTING_OUTPUT, id="rfc8785-3.2.3-sorting"),
    pytest.param(RFC8785_ESCAPING_INPUT, RFC8785_ESCAPING_OUTPUT, id="rfc8785-3.2.2-escaping"),
])
def test_rfc8785_vectors(text: str, expected: bytes) -> None:
    assert canonical_bytes(parse(text)) == expected


@pytest.mark.parametrize(("value", "expected"), [
    ({"b": 1, "a": 2, "c": {"z": None, "y": True}}, b'{"a":2,"b":1,"c":{"y":true,"z":null}}'),
    ([3, "x", False, None, [], {}], b'[3,"x",false,null,[],{}]'),
    ("\u0000\u001f\t\b\f", b'"\\u0000\\u001f\\t\\b\\f"'),
    ("\u007f\u2028", '"\u007f\u2028"'.encode()),  # only C0 controls are escaped
    ("/", b'"/"'),  # solidus is never escaped
    (MAX_SAFE_INT, b"9007199254740991"),
    (-MAX_SAFE_INT, b"-9007199254740991"),
    (0, b"0"),
    ({"aa": 1, "a": 2, "B": 3, "": 4}, b'{"":4,"B":3,"a":2,"aa":1}'),
])
def test_canonical_bytes_table(value: Any, expected: bytes) -> None:
    assert canonical_bytes(value) == expected


def test_no_unicode_normalization() -> None:
    # "é" precomposed and "e" + combining acute are different keys and stay different (DESIGN §3).
    value = parse('{"\\u00e9": 1, "e\\u0301": 2}')
    assert value == {"\u00e9": 1, "e\u0301": 2}
    assert canonical_bytes(value) == '{"e\u0301":2,"\u00e9":1}'.encode()


def test_minus_zero_integer_is_zero() -> None:
    assert same(parse("-0"), 0)
    assert canonical_bytes(parse("-0")) == b"0"


# -- parse: refusals --------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    '{"a": 1, "a": 1}',
    '{"a": 1, "a": 2}',
    '{"x": {"b": 1, "c": 2, "b": 3}}',
    '[{"k": 1}, {"k": 1, "k": 2}]',
    '{"a": 1, "\\u0061": 2}',  # the same key, spelled with an escape
])
def test_duplicate_keys_refused(text: str) -> None:
    refused("frame.duplicate_key", text)


@pytest.mark.parametrize("text", [
    "1.0", "1e3", "1E3", "1e+3", "1e-3", "-0.0", "0.5", "1E400", "[1.5]", '{"a": 2.0}',
    '{"a": [1, {"b": 1e0}]}',
])
def test_floats_refused(text: str) -> None:
    refused("frame.float", text)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "[NaN]", '{"a": Infinity}'])
def test_nan_and_infinity_refused(text: str) -> None:
    refused("frame.malformed", text)


@pytest.mark.parametrize("value", [MAX_SAFE_INT, -MAX_SAFE_INT, 0, 1, -1])
def test_safe_integers_accepted(value: int) -> None:
    assert parse(str(value)) == value
    assert parse(f"[{value}]") == [value]


@pytest.mark.parametrize("text", [
    str(MAX_SAFE_INT + 1), str(-MAX_SAFE_INT - 1), str(2**64), "-" + str(2**64),
    "[9007199254740992]", '{"a": -9007199254740992}', "1" + "0" * 100,
])
def test_integers_beyond_2_53_refused(text: str) -> None:
    refused("frame.int_range", text)


def test_huge_integer_reports_int_range() -> None:
    refused("frame.int_range", "1" * 5000)


def test_huge_integer_is_still_a_wire_error() -> None:
    with pytest.raises(WireError):
        parse("1" * 5000)


@pytest.mark.parametrize("data", [
    "", " ", "{", "}", "[1,]", "[1 2]", "{'a': 1}", '{"a" 1}', '{"a": 1,}', "tru", "nul", "01",
    "1 2", '"unterminated', '"\\x41"', '"\\u12"', '"tab\there"', '"\x00"', "+1", ".5", "0x10",
    b"\xff\xfe\xfd", b'"\xc3"', None, 42, ["[]"],
])
def test_invalid_json_refused(data: Any) -> None:
    refused("frame.malformed", data)


def test_lone_surrogate_string_refused() -> None:
    refused("frame.malformed", '"\\ud800"')
    refused("frame.malformed", '["ok", {"k": "\\udfff"}]')
    refused("frame.malformed", b'"\xed\xa0\x80"')  # CESU-style surrogate bytes


def test_lone_surrogate_key_refused() -> None:
    refused("frame.malformed", '{"\\ud800": 1}')


def test_surrogate_key_never_reaches_canonical_bytes() -> None:
    # Companion to the xfail above: today the refusal comes only later, from canonical_bytes.
    with pytest.raises(WireError) as info:
        canonical_bytes(parse('{"\\ud800": 1}'))
    assert info.value.code == "frame.malformed"


@pytest.mark.parametrize(("data", "limit"), [
    ('"abcd"', 5),
    (b'"abcd"', 5),
    ('"\u00e9"', 3),  # 4 UTF-8 bytes, 3 characters: the limit is in bytes
    ("not even json", 1),  # size is checked before parsing
    ("[" + "1," * 10_000 + "1]", 1024),
])
def test_too_large_documents_refused(data: str | bytes, limit: int) -> None:
    refused("frame.too_large", data, max_bytes=limit)


def test_max_bytes_boundary() -> None:
    assert parse('"\u00e9"', max_bytes=4) == "\u00e9"
    assert parse(b'"abcd"', max_bytes=6) == "abcd"
    refused("frame.too_large", b'"abcd"', max_bytes=5)


def test_nesting_up_to_the_limit_accepted() -> None:
    text = "[" * MAX_DEPTH + "1" + "]" * MAX_DEPTH
    assert parse(text) == nested(MAX_DEPTH)
    assert canonical_bytes(nested(MAX_DEPTH)) == text.encode()


@pytest.mark.parametrize("text", [
    "[" * (MAX_DEPTH + 1) + "1" + "]" * (MAX_DEPTH + 1),
    '{"a":' * 40 + "1" + "}" * 40,
    "[" * 1000 + "]" * 1000,
    "[" * 100_000 + "]" * 100_000,  # deep enough to exhaust the json module's recursion
    '{"a":' * 100_000 + "1" + "}" * 100_000,
])
def test_deep_nesting_refused(text: str) -> None:
    refused("frame.malformed", text)


# -- canonical_bytes / check_value refusals ---------------------------------------------------

@pytest.mark.parametrize(("value", "code"), [
    (1.0, "frame.float"),
    ({"a": [0.5]}, "frame.float"),
    (float("nan"), "frame.float"),
    (MAX_SAFE_INT + 1, "frame.int_range"),
    ([-(2**63)], "frame.int_range"),
    ({1: "x"}, "frame.malformed"),
    ((1, 2), "frame.malformed"),
    (b"bytes", "frame.malformed"),
    ({"a": {1, 2}}, "frame.malformed"),
    ("\ud800", "frame.malformed"),
    (nested(MAX_DEPTH + 1), "frame.malformed"),
])
def test_values_outside_the_subset_refused(value: Any, code: str) -> None:
    with pytest.raises(WireError) as info:
        canonical_bytes(value)
    assert info.value.code == code
    with pytest.raises(WireError):
        check_value(value)


def test_check_value_names_the_path() -> None:
    with pytest.raises(WireError) as info:
        check_value({"outer": [1, {"inner": 1.5}]})
    assert "$.outer[1].inner" in info.value.message


def test_dumps_is_compact_and_keeps_unicode() -> None:
    assert dumps({"type": "ping", "text": "\u00e9"}) == '{"type":"ping","text":"\u00e9"}'


# -- properties -------------------------------------------------------------------------------

safe_ints = st.integers(min_value=-MAX_SAFE_INT, max_value=MAX_SAFE_INT)
scalars = st.none() | st.booleans() | safe_ints | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda children: (st.lists(children, max_size=5)
                      | st.dictionaries(st.text(max_size=10), children, max_size=5)),
    max_leaves=25,
)


def _reverse_insertion_order(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reverse_insertion_order(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reverse_insertion_order(x) for x in value]
    return value


@FAST
@given(json_values)
def test_parse_inverts_canonical_bytes(value: Any) -> None:
    assume(depth_of(value) <= MAX_DEPTH)
    encoded = canonical_bytes(value)
    decoded = parse(encoded)
    assert same(decoded, value)
    assert same(parse(encoded.decode("utf-8")), value)
    assert canonical_bytes(decoded) == encoded  # idempotent
    # Insertion order does not matter, and an independent reader sees the same value.
    assert canonical_bytes(_reverse_insertion_order(value)) == encoded
    assert same(json.loads(encoded), value)


def _parse_or_wire_error(data: str | bytes) -> None:
    try:
        value = parse(data, max_bytes=4096)
    except WireError as exc:
        assert exc.code.startswith("frame."), exc.code
        return
    check_value(value)  # whatever parse accepts is within the subset


@FAST
@given(st.text(max_size=200))
def test_arbitrary_text_yields_value_or_wire_error(data: str) -> None:
    _parse_or_wire_error(data)


@FAST
@given(st.binary(max_size=200))
def test_arbitrary_bytes_yield_value_or_wire_error(data: bytes) -> None:
    _parse_or_wire_error(data)


# JSON-shaped noise reaches far more of the parser than uniform text does.
json_noise = st.text(alphabet='{}[]",:0123456789.eE+-tfnrulasNIy\\ud8\u00e9 ', max_size=80)


@FAST
@given(json_noise)
def test_json_shaped_noise_yields_value_or_wire_error(data: str) -> None:
    _parse_or_wire_error(data)
    _parse_or_wire_error(data.encode("utf-8"))


@FAST
@given(st.lists(st.sampled_from(['{"a":', '[', '1', ']', '}', ',', '"k"', ':', '1.5', '9' * 20]),
                max_size=40))
def test_token_soup_yields_value_or_wire_error(tokens: list[str]) -> None:
    _parse_or_wire_error("".join(tokens))


# Strings that stress the fast path: controls, escapes, BMP private use (sorts after surrogate
# pairs in UTF-16 order) and supplementary characters (sorts before them).
tricky_text = st.text(alphabet=st.sampled_from(
    ["a", "Z", "0", '"', "\\", "\n", "\x00", "\x1f", "\x7f", "\u00e9", "\u2028", "\ue000",
     "\uffff", "\U0001f600", "\U00010000", " ", "/"]) | st.characters(exclude_categories=["Cs"]),
    max_size=8)
tricky_values = st.recursive(
    st.none() | st.booleans() | safe_ints | tricky_text,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(tricky_text, children, max_size=5)),
    max_leaves=20,
)


@FAST
@given(tricky_values)
def test_canonical_bytes_equals_the_rfc8785_package(value: Any) -> None:
    """Our fast path (stdlib json for ASCII keys) must be byte-identical to rfc8785."""
    import rfc8785
    assume(depth_of(value) <= MAX_DEPTH)
    assert canonical_bytes(value) == rfc8785.dumps(value)


def test_every_code_point_encodes_as_rfc8785_does() -> None:
    import rfc8785
    for start in range(0, 0x110000, 0x1000):
        text = "".join(chr(c) for c in range(start, start + 0x1000) if not 0xD800 <= c <= 0xDFFF)
        assert canonical_bytes({"k": text}) == rfc8785.dumps({"k": text})
