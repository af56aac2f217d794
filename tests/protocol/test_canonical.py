"""RFC 8785 canonical JSON: the RFC's own examples, escaping, limits, and fast path = reference."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.canonical import canonicalize, canonicalize_reference
from protocol.errors import MalformedError

BOTH = [canonicalize, canonicalize_reference]

# RFC 8785 §3.2.3: members are sorted by their names as arrays of UTF-16 code units.
SORTING_INPUT = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
SORTING_OUTPUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
    '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
    '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()

# RFC 8785 §3.2.2 (the example of the whole canonicalization).
EXAMPLE_INPUT = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
EXAMPLE_OUTPUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode()

# RFC 8785 Appendix B: IEEE 754 double (hex) → its canonical JSON number.
APPENDIX_B = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]


def double(hex_bits: str) -> float:
    value: float = struct.unpack(">d", bytes.fromhex(hex_bits))[0]
    return value


@pytest.mark.parametrize("canon", BOTH)
def test_rfc8785_sorting_example(canon: Any) -> None:
    assert canon(json.loads(SORTING_INPUT)) == SORTING_OUTPUT


@pytest.mark.parametrize("canon", BOTH)
def test_rfc8785_canonicalization_example(canon: Any) -> None:
    assert canon(json.loads(EXAMPLE_INPUT)) == EXAMPLE_OUTPUT


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonicalize(double(bits)) == expected.encode()
    assert canonicalize([double(bits)]) == f"[{expected}]".encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
@pytest.mark.parametrize("canon", BOTH)
def test_nan_and_infinity_are_refused(canon: Any, bits: str) -> None:
    with pytest.raises(MalformedError):
        canon({"x": double(bits)})


@pytest.mark.parametrize("canon", BOTH)
def test_string_escaping(canon: Any) -> None:
    text = '\x00\x01\x1f\b\t\n\f\r"\\/\x7f\u2028åäö\U0001f4d0'
    expected = '"\\u0000\\u0001\\u001f\\b\\t\\n\\f\\r\\"\\\\/\x7f\u2028åäö\U0001f4d0"'
    assert canon(text) == expected.encode("utf-8")
    assert canon({text: text}) == f"{{{expected}:{expected}}}".encode()


@pytest.mark.parametrize("canon", BOTH)
def test_utf16_order_differs_from_code_point_order_outside_the_bmp(canon: Any) -> None:
    # U+E000 < U+1F600 as code points, but 0xE000 > 0xD83D (the emoji's first UTF-16 unit).
    assert canon({"\ue000": 2, "\U0001f600": 1}) == '{"\U0001f600":1,"\ue000":2}'.encode()


@pytest.mark.parametrize("canon", BOTH)
def test_integers_within_the_safe_range_are_plain_decimals(canon: Any) -> None:
    safe = 2**53 - 1
    assert (
        canon([safe, -safe, 0, -1, True, None])
        == b"[9007199254740991,-9007199254740991,0,-1,true,null]"
    )


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30])
@pytest.mark.parametrize("canon", BOTH)
def test_integers_beyond_double_precision_are_refused(canon: Any, value: int) -> None:
    with pytest.raises(MalformedError):
        canon({"n": value})


@pytest.mark.parametrize("value", ["\ud800", {"\udfff": 1}, ["a\ud83d"]])
@pytest.mark.parametrize("canon", BOTH)
def test_lone_surrogates_are_refused(canon: Any, value: Any) -> None:
    with pytest.raises(MalformedError):
        canon(value)


@pytest.mark.parametrize("canon", BOTH)
def test_non_string_keys_are_refused(canon: Any) -> None:
    with pytest.raises(MalformedError):
        canon({1: "x"})


# Text with everything the fast path must get right: ASCII, control characters, Latin-1,
# the BMP above the surrogates, and characters outside the BMP (emoji, CJK extension B).
characters = st.characters(codec="utf-8") | st.sampled_from(  # utf-8: no lone surrogates
    [
        "\x00",
        "\x1f",
        "\x7f",
        '"',
        "\\",
        "/",
        "\u2028",
        "\ue000",
        "\uffff",
        "\U0001f600",
        "\U00020000",
    ]
)
texts = st.text(characters, max_size=12)
safe_ints = st.integers(-(2**53 - 1), 2**53 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | safe_ints | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=30,
)


@given(json_values)
def test_fast_path_equals_reference_on_arbitrary_json_without_floats(value: Any) -> None:
    fast = canonicalize(value)
    assert fast == canonicalize_reference(value)
    assert json.loads(fast) == value


@given(st.dictionaries(texts, json_values, max_size=6))
def test_canonical_form_is_stable_under_reordering_and_reparsing(value: dict[str, Any]) -> None:
    reordered = dict(reversed(list(value.items())))
    once = canonicalize(value)
    assert canonicalize(reordered) == once
    assert canonicalize(json.loads(json.dumps(value, ensure_ascii=True, indent=1))) == once
