"""Verifying from bytes (the faster way, SPEC.md §5.3 as received) and from a parsed mapping give
the same outcome: the same ``Verified`` or the same reason code."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.clock import ManualClock
from protocol.envelope import MemorySeenIds, StaticKeyRing, Verified, sign_envelope, verify_envelope
from protocol.errors import ProtocolError, Reason
from protocol.keys import SigningKey
from protocol.signing import sign_object
from tests.conftest import T0

A = "skola.test.se"
B = "bup.test.se"
KEY = SigningKey.from_seed(A, bytes(range(32)), T0 - timedelta(days=1))
RING = StaticKeyRing({A: [KEY.public()]})


def resign(env: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return sign_object({**{k: v for k, v in env.items() if k != "sig"}, **changes}, KEY)


def outcome(message: bytes | dict[str, Any], **kw: Any) -> Verified | Reason:
    try:
        return verify_envelope(
            message, keyring=RING, audience=B, clock=ManualClock(T0), seen=MemorySeenIds(), **kw
        )
    except ProtocolError as exc:
        return exc.reason


def same_both_ways(env: dict[str, Any], encode: Callable[[Any], str] = json.dumps) -> Any:
    from_bytes = outcome(encode(env).encode())
    from_mapping = outcome(json.loads(encode(env)))
    assert from_bytes == from_mapping
    return from_bytes


def statement(body: dict[str, Any]) -> dict[str, Any]:
    return sign_envelope(
        type="consent.statement",
        body={"statement": body},
        sender=A,
        to=B,
        key=KEY,
        clock=ManualClock(T0),
    )


@pytest.mark.parametrize("cursor", ["5", 5.0, True, -1, None])
def test_body_types_are_strict_from_bytes_too(cursor: Any) -> None:
    env = sign_envelope(
        type="revocations.since", body={"cursor": 1}, sender=A, to=B, key=KEY, clock=ManualClock(T0)
    )
    assert same_both_ways(resign(env, body={"cursor": cursor})) is Reason.MALFORMED


def test_enum_bodies_are_strict_from_bytes_too() -> None:
    env = sign_envelope(
        type="error", body={"reason": "no_match"}, sender=A, to=B, key=KEY, clock=ManualClock(T0)
    )
    assert isinstance(same_both_ways(env), Verified)
    assert same_both_ways(resign(env, body={"reason": "nonsense"})) is Reason.MALFORMED
    assert same_both_ways(resign(env, body={"reason": 5})) is Reason.MALFORMED


@pytest.mark.parametrize(
    "body",
    [
        {"n": "\U0001f600", "\U0001f600": 1},  # outside the BMP
        {"quote": 'say "hi"', "backslash": "a\\b", "bracket": "[[{"},
    ],
)
def test_awkward_bodies_give_the_same_outcome(body: dict[str, Any]) -> None:
    assert isinstance(same_both_ways(statement(body)), Verified)
    indented = same_both_ways(
        statement(body), lambda v: json.dumps(v, ensure_ascii=False, indent=1)
    )
    assert isinstance(indented, Verified)


@pytest.mark.parametrize("number", [1.5, 1.0, 1e0, 2e3])
def test_a_number_with_a_fraction_or_exponent_is_malformed_both_ways(number: float) -> None:
    """SPEC.md §1: every number is an integer. 1.0 has the canonical form 1, so a signature
    over {"n": 1} also covers {"n": 1.0}; a receiver that took it would accept a text the
    sender never wrote, where schema validators judge 1.0 an integer and others do not."""
    signed = json.dumps(statement({"n": 1}))
    text = signed.replace('{"n": 1}', '{"n": ' + repr(number) + "}")
    assert outcome(text.encode()) is Reason.MALFORMED
    assert outcome(json.loads(text)) is Reason.MALFORMED


def test_an_integer_without_canonical_form_is_malformed_both_ways() -> None:
    """Beyond RFC 8785's integers there is no signing input: step 14 fails as malformed."""
    env = {**statement({"n": 1}), "body": {"statement": {"n": 2**53}}}
    assert same_both_ways(env) is Reason.MALFORMED


def test_the_received_object_is_kept_as_received() -> None:
    env = statement({"a": [1, {"b": None}]})
    verified = same_both_ways(env)
    assert isinstance(verified, Verified)
    assert verified.raw == env


def test_duplicate_names_are_malformed() -> None:
    text = json.dumps(statement({"a": 1}))
    assert outcome(text.replace('{"a": 1}', '{"a": 1, "a": 1}').encode()) is Reason.MALFORMED


def test_max_depth_applies_to_bytes() -> None:
    data = json.dumps(statement({"a": [[[1]]]})).encode()  # depth 6
    assert isinstance(outcome(data), Verified)
    assert outcome(data, max_depth=5) is Reason.TOO_DEEP
    assert isinstance(outcome(data, max_depth=6), Verified)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=15,
)


@given(st.dictionaries(st.text(max_size=6), json_values, max_size=4), st.integers(0, 10**6))
def test_any_body_any_flip_same_outcome_both_ways(body: dict[str, Any], flip: int) -> None:
    try:
        env = statement(body)
    except ProtocolError:
        return  # NaN, or an integer with no canonical form: the sender refuses it
    data = bytearray(json.dumps(env, ensure_ascii=False).encode())
    data[flip % len(data)] ^= 0x01
    from_bytes = outcome(bytes(data))
    try:
        parsed = json.loads(bytes(data))
    except (ValueError, RecursionError):
        assert from_bytes is Reason.MALFORMED
        return
    if not isinstance(parsed, dict) or from_bytes in (Reason.MALFORMED, Reason.TOO_DEEP):
        return  # step 1 refusals (duplicates, NaN) have no mapping to compare with
    assert outcome(parsed) == from_bytes


def hello() -> dict[str, Any]:
    return sign_envelope(
        type="hello",
        body={"started_at": "2026-11-23T09:00:00Z"},
        sender=A,
        to=B,
        key=KEY,
        clock=ManualClock(T0),
    )


@pytest.mark.parametrize(
    "issued_at",
    [
        "2026-11-23T09:15:02+00:00",  # an offset other than Z
        "2026-11-23T10:15:02+01:00",
        "2026-11-23 09:15:02Z",  # a space for the T
        "20261123T091502Z",  # basic format
        "2026-W48-1T09:15:02Z",  # a week date
        "2026-11-23T09:15Z",  # no seconds
        "2026-11-23T09:15:02.1234567Z",  # seven fraction digits
        "2026-11-23T09:15:02z",
        "2026-11-23T09:15:02Z\n",
    ],
)
def test_an_envelope_time_outside_the_wire_form_is_malformed(issued_at: str) -> None:
    """SPEC.md §1: one form on the wire, so every receiver judges a message alike; a lenient
    parser (``fromisoformat`` takes all of these but the last two) would not."""
    env = hello()
    assert same_both_ways(resign(env, issued_at=issued_at)) is Reason.MALFORMED


@pytest.mark.parametrize("fraction", ["", ".5", ".123456"])
def test_an_envelope_time_in_the_wire_form_verifies(fraction: str) -> None:
    env = hello()
    issued = env["issued_at"].removesuffix("Z") + fraction + "Z"
    assert isinstance(same_both_ways(resign(env, issued_at=issued)), Verified)
