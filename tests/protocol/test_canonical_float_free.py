"""``canonicalize_float_free`` gives ``canonicalize``'s bytes, or its refusal, on float-free
values."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.canonical import canonicalize, canonicalize_float_free
from protocol.errors import MalformedError

characters = st.characters() | st.sampled_from(  # st.characters() includes lone surrogates
    ['"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "\uffff", "\U0001f600", "\U00020000", "å"]
)
texts = st.text(characters, max_size=10)
integers = st.integers(-(2**53 - 1), 2**53 - 1) | st.sampled_from(
    [2**53, -(2**53), 2**63, 2**64, -(2**70)]
)
float_free = st.recursive(
    st.none() | st.booleans() | integers | texts,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(texts, children, max_size=5),
    max_leaves=30,
)


def result(canon: Any, value: Any) -> tuple[str, bytes | None]:
    try:
        return "ok", canon(value)
    except MalformedError:
        return "malformed", None


@given(float_free)
def test_same_bytes_or_same_refusal_as_canonicalize(value: Any) -> None:
    assert result(canonicalize_float_free, value) == result(canonicalize, value)


@given(st.dictionaries(texts, float_free, max_size=6))
def test_parsed_objects_canonicalize_the_same(value: dict[str, Any]) -> None:
    """What verify_envelope hands it: an object just parsed from the wire."""
    try:
        parsed = json.loads(json.dumps(value))
    except (ValueError, UnicodeEncodeError):
        return
    assert result(canonicalize_float_free, parsed) == result(canonicalize, parsed)


@pytest.mark.parametrize(
    "value",
    [
        {"\U0001f600": 1, "\uffff": 2},  # UTF-16 order differs from code-point order here
        {"a": "\U0001f600"},
        {"a": 2**53 - 1},
        {"a": 2**53},
        {"a": "\ud800"},
        {1: "non-string key"},
    ],
)
def test_cases_the_fast_check_must_hand_over(value: Any) -> None:
    assert result(canonicalize_float_free, value) == result(canonicalize, value)
