"""``parse_json_object``: the fast path returns exactly what the reference parser returns, or
declines; errors and reason codes always come from the reference (SPEC.md §5.3 steps 1 and 2)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import MalformedError, ProtocolError, Reason
from protocol.jsontext import MAX_DEPTH, _parse_fast, _parse_reference, parse_json_object

characters = st.characters(codec="utf-8") | st.sampled_from(
    ['"', "\\", "[", "]", "{", "}", ":", ",", ".", "e", "\x00", "\u2028", "å", "\U0001f600"]
)
# plain text as well, which the fast path takes (a quote or backslash in a string declines it)
texts = st.text(characters, max_size=8) | st.text("abcå:.,[]{}0123456789 -", max_size=8)
integers = st.integers(-(2**70), 2**70) | st.sampled_from(
    [0, -1, 2**53, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, -(2**64)]
)
numbers = st.one_of(integers, integers, integers, st.floats(allow_nan=False, allow_infinity=False))
values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=25,
)
encodings = st.sampled_from(
    [
        lambda v: json.dumps(v),  # what aiohttp's json= sends: spaces, \u escapes
        lambda v: json.dumps(v, separators=(",", ":"), ensure_ascii=False),
        lambda v: json.dumps(v, indent=2, ensure_ascii=False),
        lambda v: json.dumps(v, indent="\t", sort_keys=True),
    ]
)


def outcome(parse: Any, data: bytes | str, max_depth: int) -> tuple[str, str]:
    """What a parser does with ``data``: its result (repr keeps int/float/bool apart), or its
    error's reason code."""
    try:
        return "ok", repr(parse(data, max_depth))
    except ProtocolError as exc:
        return "error", exc.reason.value


def check_agrees(data: bytes | str, max_depth: int = MAX_DEPTH) -> None:
    reference = outcome(_parse_reference, data, max_depth)
    try:
        fast = _parse_fast(data, max_depth)
    except ProtocolError as exc:
        assert reference == ("error", exc.reason.value)
    else:
        if fast is not None:
            assert reference == ("ok", repr(fast))
    assert outcome(parse_json_object, data, max_depth) == reference


@given(st.dictionaries(texts, values, max_size=5), encodings, st.integers(1, 8))
def test_fast_path_agrees_with_the_reference(value: Any, encode: Any, depth: int) -> None:
    text = encode(value)
    check_agrees(text.encode(), depth)
    check_agrees(text, depth)


plain_texts = st.text(st.characters(codec="utf-8", exclude_characters='"\\'), max_size=8)
plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | plain_texts,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(plain_texts, children, max_size=4)
    ),
    max_leaves=25,
)


@given(st.dictionaries(plain_texts, plain_values, max_size=5), encodings)
def test_fast_path_takes_messages_without_floats_or_escaped_quotes(
    value: dict[str, Any], encode: Any
) -> None:
    """The common case must not fall back to the reference: that is the point of the fast path."""
    data = encode(value).encode()
    parsed = _parse_fast(data, 64)
    assert parsed is not None
    assert repr(parsed) == repr(_parse_reference(data, 64))


@given(
    st.dictionaries(st.text(max_size=3), values, min_size=1, max_size=4),
    st.integers(0, 100),
    encodings,
)
def test_duplicate_names_anywhere_are_refused(
    value: dict[str, Any], pick: int, encode: Any
) -> None:
    """Each member of the top object is written a second time, nested one level down too."""
    name = sorted(value)[pick % len(value)]
    inner = encode(value)
    duplicated = f"{inner[:-1]}, {json.dumps(name)}: {json.dumps(value[name])}}}"
    nested = f'{{"outer": {duplicated}}}'
    for text in (duplicated, nested):
        check_agrees(text.encode())
        with pytest.raises(MalformedError) as info:
            parse_json_object(text.encode())
        assert info.value.reason is Reason.MALFORMED


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1, "a": 1}',
        '{"a": "x", "b": {"c": [], "c": []}}',
        '{"\\u0061": 1, "a": 2}',  # the same name, spelled differently
        '{"a": "\\"", "a": "\\""}',  # escaped quotes: the fast path declines
        '{"a": "\\u0022", "a": 1}',
        '{"a": 1.5}',
        '{"a": 1e400}',
        '{"a": NaN}',
        '{"a": -Infinity}',
        '{"a": 18446744073709551616}',
        '{"a": -9223372036854775809}',
        '{"a": "\\ud800"}',
        '\ufeff{"a": 1}',
        '["not", "an", "object"]',
        '{"a": 1} trailing',
        '{"a": "[[[[" }',
        '{"a": "]", "b": ["["]}',
    ],
)
def test_edge_cases_agree(text: str) -> None:
    check_agrees(text.encode())
    check_agrees(text.encode("utf-16"))
    check_agrees(text)


@pytest.mark.parametrize("depth", [1, 2, 5, 31, 32, 33, 100, 2000])
@pytest.mark.parametrize("inside", ["[]", "{}", '"x"', '"[[[]"'])
def test_depth_is_counted_exactly(depth: int, inside: str) -> None:
    """Depth as SPEC.md §5.3 step 2 counts it, at and around the limit, deep enough to hit the
    interpreter's recursion limit, with brackets inside strings to mislead a text scan."""
    nest = "".join('{"k": [' if i % 2 else "[" for i in range(depth - 1))
    close = "".join("]}" if i % 2 else "]" for i in reversed(range(depth - 1)))
    text = f'{{"a": {nest}{inside}{close}}}' if depth > 1 else '{"a": 1}'
    check_agrees(text.encode())
    for limit in (4, 32):
        check_agrees(text.encode(), limit)
