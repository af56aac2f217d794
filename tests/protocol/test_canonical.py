"""RFC 8785 canonical JSON: the RFC's own examples, escaping, limits, and ``canonicalize`` (with its
one accelerator) byte for byte equal to the ``rfc8785`` package on generated JSON."""

from __future__ import annotations

import json
import struct
from typing import Any

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from protocol.canonical import canonicalize
from protocol.errors import MalformedError

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


def test_rfc8785_sorting_example() -> None:
    assert canonicalize(json.loads(SORTING_INPUT)) == SORTING_OUTPUT


def test_rfc8785_canonicalization_example() -> None:
    assert canonicalize(json.loads(EXAMPLE_INPUT)) == EXAMPLE_OUTPUT


@pytest.mark.parametrize(("bits", "expected"), APPENDIX_B)
def test_rfc8785_appendix_b_numbers(bits: str, expected: str) -> None:
    assert canonicalize(double(bits)) == expected.encode()
    assert canonicalize([double(bits)]) == f"[{expected}]".encode()


@pytest.mark.parametrize("bits", ["7fffffffffffffff", "7ff0000000000000", "fff0000000000000"])
def test_nan_and_infinity_are_refused(bits: str) -> None:
    with pytest.raises(MalformedError):
        canonicalize({"x": double(bits)})


def test_string_escaping() -> None:
    text = '\x00\x01\x1f\b\t\n\f\r"\\/\x7f\u2028åäö\U0001f4d0'
    expected = '"\\u0000\\u0001\\u001f\\b\\t\\n\\f\\r\\"\\\\/\x7f\u2028åäö\U0001f4d0"'
    assert canonicalize(text) == expected.encode("utf-8")
    assert canonicalize({text: text}) == f"{{{expected}:{expected}}}".encode()


def test_utf16_order_differs_from_code_point_order_outside_the_bmp() -> None:
    # U+E000 < U+1F600 as code points, but 0xE000 > 0xD83D (the emoji's first UTF-16 unit).
    assert canonicalize({"\ue000": 2, "\U0001f600": 1}) == '{"\U0001f600":1,"\ue000":2}'.encode()


def test_integers_within_the_safe_range_are_plain_decimals() -> None:
    safe = 2**53 - 1
    assert (
        canonicalize([safe, -safe, 0, -1, True, None])
        == b"[9007199254740991,-9007199254740991,0,-1,true,null]"
    )


@pytest.mark.parametrize("value", [2**53, -(2**53), 10**30])
def test_integers_beyond_double_precision_are_refused(value: int) -> None:
    with pytest.raises(MalformedError):
        canonicalize({"n": value})


@pytest.mark.parametrize("value", ["\ud800", {"\udfff": 1}, ["a\ud83d"]])
def test_lone_surrogates_are_refused(value: Any) -> None:
    with pytest.raises(MalformedError):
        canonicalize(value)


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(MalformedError):
        canonicalize({1: "x"})


# Text with everything the accelerator must get right: ASCII, control characters, Latin-1, the
# BMP above the surrogates, characters outside the BMP (emoji, CJK extension B) and, through
# ``st.characters()``, lone surrogates (which both must refuse).
characters = st.characters() | st.sampled_from(
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
        "å",
    ]
)
texts = st.text(characters, max_size=12)
valid_texts = st.text(st.characters(codec="utf-8"), max_size=12)
safe_ints = st.integers(-(2**53 - 1), 2**53 - 1)
# Every number in the protocol is an integer (SPEC.md §1), so generated JSON holds no floats;
# integers include ones beyond 2**53 and 64 bits, which both must refuse.
integers = safe_ints | st.sampled_from([2**53 - 1, 2**53, -(2**53), 2**63, 2**64, -(2**70)])


def json_of(strings: st.SearchStrategy[str], numbers: st.SearchStrategy[int]) -> Any:
    return st.recursive(
        st.none() | st.booleans() | numbers | strings,
        lambda children: (
            st.lists(children, max_size=5) | st.dictionaries(strings, children, max_size=5)
        ),
        max_leaves=30,
    )


json_values = json_of(texts, integers)
valid_json_values = json_of(valid_texts, safe_ints)


def outcome(canon: Any, value: Any) -> tuple[str, bytes | None]:
    """The bytes, or that the value was refused (``rfc8785`` raises, ``canonicalize`` says
    ``malformed``)."""
    try:
        return "ok", canon(value)
    except (MalformedError, rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError):
        return "refused", None


@given(json_values)
def test_canonicalize_equals_rfc8785_byte_for_byte(value: Any) -> None:
    """The one property that holds the accelerator to the reference."""
    assert outcome(canonicalize, value) == outcome(rfc8785.dumps, value)


@given(st.dictionaries(texts, json_values, max_size=6))
def test_parsed_objects_canonicalize_as_rfc8785_does(value: dict[str, Any]) -> None:
    """What a verifier hands it: an object just parsed from the wire."""
    try:
        parsed = json.loads(json.dumps(value))
    except (ValueError, UnicodeEncodeError):
        return
    assert outcome(canonicalize, parsed) == outcome(rfc8785.dumps, parsed)


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\uffff": 2},  # UTF-16 order differs from code-point order here
        {"a": "\U0001f600"},
        {"a": 2**53 - 1},
        {"a": 2**53},
        {"a": "\ud800"},
        {1: "non-string key"},
        {"a": 1.0},  # a float: RFC 8785 writes 1, orjson 1.0
        {"a": [1e16, -0.0]},
        {"a": float("nan")},
        (1, 2),  # not JSON types, though both encoders write them
        {"a": True, "b": [None, {"c": ""}]},
    ],
)
def test_cases_the_accelerator_must_hand_over_or_get_right(value: Any) -> None:
    assert outcome(canonicalize, value) == outcome(rfc8785.dumps, value)


@given(valid_json_values)
def test_canonical_form_parses_back_to_the_value(value: Any) -> None:
    assert json.loads(canonicalize(value)) == value


@given(st.dictionaries(valid_texts, valid_json_values, max_size=6))
def test_canonical_form_is_stable_under_reordering_and_reparsing(value: dict[str, Any]) -> None:
    reordered = dict(reversed(list(value.items())))
    once = canonicalize(value)
    assert canonicalize(reordered) == once
    assert canonicalize(json.loads(json.dumps(value, ensure_ascii=True, indent=1))) == once
