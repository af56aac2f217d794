"""``parse_json_object``, the one strict parser: what it accepts parses back to the value written,
and what it refuses is refused with the reason SPEC.md §5.3 steps 1 and 2 give."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.errors import MalformedError, ProtocolError, Reason
from protocol.jsontext import MAX_DEPTH, parse_json_object

characters = st.characters(codec="utf-8") | st.sampled_from(
    ['"', "\\", "[", "]", "{", "}", ":", ",", ".", "e", "\x00", "\u2028", "å", "\U0001f600"]
)
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


def outcome(data: bytes | str, max_depth: int = MAX_DEPTH) -> tuple[str, str]:
    """What the parser does with ``data``: its result (repr keeps int/float/bool apart), or its
    error's reason code."""
    try:
        return "ok", repr(parse_json_object(data, max_depth))
    except ProtocolError as exc:
        return "error", exc.reason.value


def text_depth(text: str) -> int:
    """Nesting depth read off the text (brackets outside strings): an oracle independent of the
    parser's own count."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def holds_float(value: Any) -> bool:
    if isinstance(value, float):
        return True
    if isinstance(value, dict):
        return any(holds_float(v) for v in value.values())
    if isinstance(value, list):
        return any(holds_float(v) for v in value)
    return False


@given(st.dictionaries(texts, values, max_size=5), encodings, st.integers(1, 8))
def test_a_written_object_parses_back_or_is_refused_for_its_numbers_or_depth(
    value: Any, encode: Any, depth: int
) -> None:
    text = encode(value)
    if holds_float(value):
        expected = ("error", Reason.MALFORMED.value)
    elif text_depth(text) > depth:
        expected = ("error", Reason.TOO_DEEP.value)
    else:
        expected = ("ok", repr(json.loads(text)))  # the value, members in the text's order
        assert json.loads(text) == value
    assert outcome(text.encode(), depth) == expected
    assert outcome(text, depth) == expected


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
        with pytest.raises(MalformedError) as info:
            parse_json_object(text.encode())
        assert info.value.reason is Reason.MALFORMED


MALFORMED = ("error", Reason.MALFORMED.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"a": 1, "a": 1}', MALFORMED),
        ('{"a": "x", "b": {"c": [], "c": []}}', MALFORMED),
        ('{"\\u0061": 1, "a": 2}', MALFORMED),  # the same name, spelled differently
        ('{"a": "\\"", "a": "\\""}', MALFORMED),
        ('{"a": "\\u0022", "a": 1}', MALFORMED),
        ('{"a": 1.5}', MALFORMED),
        ('{"a": 1e400}', MALFORMED),
        ('{"a": NaN}', MALFORMED),
        ('{"a": -Infinity}', MALFORMED),
        # integers beyond 2**53 and a lone surrogate parse; canonicalization refuses them
        ('{"a": 18446744073709551616}', ("ok", "{'a': 18446744073709551616}")),
        ('{"a": -9223372036854775809}', ("ok", "{'a': -9223372036854775809}")),
        ('{"a": "\\ud800"}', ("ok", "{'a': '\\ud800'}")),
        ('\ufeff{"a": 1}', MALFORMED),
        ('["not", "an", "object"]', MALFORMED),
        ('{"a": 1} trailing', MALFORMED),
        ('{"a": "[[[[" }', ("ok", "{'a': '[[[['}")),
        ('{"a": "]", "b": ["["]}', ("ok", "{'a': ']', 'b': ['[']}")),
    ],
)
def test_edge_cases(text: str, expected: tuple[str, str]) -> None:
    assert outcome(text.encode()) == expected
    assert outcome(text) == expected
    assert outcome(text.encode("utf-16")) == MALFORMED  # not UTF-8


@pytest.mark.parametrize("depth", [1, 2, 5, 31, 32, 33, 100, 2000])
@pytest.mark.parametrize("inside", ["[]", "{}", '"x"', '"[[[]"'])
def test_depth_is_counted_exactly(depth: int, inside: str) -> None:
    """Depth as SPEC.md §5.3 step 2 counts it, at and around the limit, deep enough to hit the
    interpreter's recursion limit, with brackets inside strings to mislead a text scan."""
    nest = "".join('{"k": [' if i % 2 else "[" for i in range(depth - 1))
    close = "".join("]}" if i % 2 else "]" for i in reversed(range(depth - 1)))
    text = f'{{"a": {nest}{inside}{close}}}' if depth > 1 else '{"a": 1}'
    for limit in (4, 32, MAX_DEPTH):
        result = outcome(text.encode(), limit)
        if text_depth(text) > limit:
            assert result == ("error", Reason.TOO_DEEP.value)
        else:
            assert result[0] == "ok"
