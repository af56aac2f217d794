"""Envelope sign/verify: round trips and one test per reason code."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.clock import ManualClock
from protocol.envelope import MemorySeenIds, StaticKeyRing, sign_envelope, verify_envelope
from protocol.errors import ProtocolError, Reason
from protocol.keys import SigningKey
from protocol.signing import sign_object
from tests.conftest import T0

A = "skola.test.se"
B = "bup.test.se"
SEED_A = bytes(range(32))
SEED_B = bytes(range(32, 64))


def keys() -> tuple[SigningKey, SigningKey, StaticKeyRing]:
    ka = SigningKey.from_seed(A, SEED_A, T0 - timedelta(days=1))
    kb = SigningKey.from_seed(B, SEED_B, T0 - timedelta(days=1))
    return ka, kb, StaticKeyRing({A: [ka.public()], B: [kb.public()]})


def hello(clock: ManualClock, key: SigningKey, **kw: Any) -> dict[str, Any]:
    return sign_envelope(
        type="hello",
        body={"started_at": "2026-11-23T08:59:00Z"},
        sender=key.node_id,
        to=kw.pop("to", B),
        key=key,
        clock=clock,
        **kw,
    )


def reason(message: Any, ring: StaticKeyRing, clock: ManualClock, **kw: Any) -> Reason:
    with pytest.raises(ProtocolError) as info:
        verify_envelope(
            message,
            keyring=ring,
            audience=kw.pop("audience", B),
            clock=clock,
            seen=kw.pop("seen", None),
            **kw,
        )
    return info.value.reason


def test_round_trip(clock: ManualClock) -> None:
    ka, _, ring = keys()
    env = hello(clock, ka)
    verified = verify_envelope(
        json.dumps(env).encode(), keyring=ring, audience=B, clock=clock, seen=MemorySeenIds()
    )
    assert verified.sender == A and verified.type == "hello" and verified.key_id == ka.key_id


def test_each_failure_has_its_reason(clock: ManualClock) -> None:
    ka, kb, ring = keys()
    env = hello(clock, ka)
    assert reason(b"{not json", ring, clock) == Reason.MALFORMED
    assert reason({**env, "v": 2}, ring, clock) == Reason.UNSUPPORTED_VERSION
    assert reason(env, ring, clock, audience="annan.test.se") == Reason.WRONG_AUDIENCE
    assert reason(env, StaticKeyRing({B: [kb.public()]}), clock) == Reason.UNKNOWN_SENDER
    other_key_sig = sign_object({k: v for k, v in env.items() if k != "sig"}, kb)
    assert reason(other_key_sig, ring, clock) == Reason.UNKNOWN_KEY
    late_key = SigningKey.from_seed(A, SEED_A, T0 + timedelta(days=1))
    assert reason(env, StaticKeyRing({A: [late_key.public()]}), clock) == Reason.KEY_NOT_VALID
    altered = {**env, "body": {"started_at": "2026-11-23T08:59:01Z"}}
    assert reason(altered, ring, clock) == Reason.BAD_SIGNATURE
    clock.advance(3600)
    assert reason(env, ring, clock) == Reason.EXPIRED
    clock.advance(-7200)
    assert reason(env, ring, clock) == Reason.NOT_YET_VALID
    clock.advance(3600)
    assert reason(hello(clock, ka, ttl_s=3600), ring, clock) == Reason.OUTSIDE_SKEW
    seen = MemorySeenIds()
    verify_envelope(env, keyring=ring, audience=B, clock=clock, seen=seen)
    assert reason(env, ring, clock, seen=seen) == Reason.REPLAYED
    assert reason({**env, "type": "no.such"}, ring, clock) == Reason.UNKNOWN_TYPE


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@given(
    body=st.dictionaries(st.text(max_size=10), json_values, max_size=5), flip=st.integers(0, 10**6)
)
def test_any_body_round_trips_and_any_flipped_byte_fails(body: dict[str, Any], flip: int) -> None:
    clock = ManualClock(T0)
    ka, _, ring = keys()
    # consent.statement carries an arbitrary JSON object, so any body shape can be signed
    env = sign_envelope(
        type="consent.statement", body={"statement": body}, sender=A, to=B, key=ka, clock=clock
    )
    data = json.dumps(env).encode()
    verified = verify_envelope(data, keyring=ring, audience=B, clock=clock, seen=None)
    assert verified.raw["body"] == {"statement": body}
    position = flip % len(data)
    tampered = bytearray(data)
    tampered[position] ^= 0x01
    with pytest.raises(ProtocolError):
        verify_envelope(bytes(tampered), keyring=ring, audience=B, clock=clock, seen=None)


def test_body_types_are_strict_as_in_the_schemas(clock: ManualClock) -> None:
    """A body is validated as JSON, strictly: "5" is no integer and 5.0 no cursor."""
    ka, _, ring = keys()
    for cursor in ("5", 5.0, True):
        env = sign_envelope(
            type="revocations.since", body={"cursor": 1}, sender=A, to=B, key=ka, clock=clock
        )
        tampered = sign_object(
            {**{k: v for k, v in env.items() if k != "sig"}, "body": {"cursor": cursor}}, ka
        )
        assert reason(tampered, ring, clock) == Reason.MALFORMED


def resigned(env: dict[str, Any], key: SigningKey, **changes: Any) -> dict[str, Any]:
    return sign_object({**{k: v for k, v in env.items() if k != "sig"}, **changes}, key)


@pytest.mark.parametrize("member", ["id", "re"])
def test_a_uuid_with_a_trailing_newline_is_malformed(clock: ManualClock, member: str) -> None:
    """SPEC §1: a UUID is the whole string. ``re.match`` with a ``$`` pattern took
    "<uuid>\\n" (``$`` also matches before a final line feed), so it was echoed in ``re``."""
    ka, _, ring = keys()
    env = hello(clock, ka)
    bad = resigned(env, ka, **{member: env["id"] + "\n"})
    assert reason(json.dumps(bad).encode(), ring, clock) is Reason.MALFORMED
    assert reason(bad, ring, clock) is Reason.MALFORMED


def test_a_request_is_refused_by_type_before_its_signature(clock: ManualClock) -> None:
    """SPEC §5.3 step 5: at the endpoint only a request type is acceptable, decided before any
    signature work; a reply type is unknown_type however it is signed."""
    ka, _, ring = keys()
    ack = sign_envelope(type="hello.ack", body={"ok": True}, sender=A, to=B, key=ka, clock=clock)
    unsigned = {**ack, "sig": {**ack["sig"], "value": "A" * 86}}
    assert reason(unsigned, StaticKeyRing(), clock) is Reason.UNKNOWN_SENDER  # as a reply
    assert reason(unsigned, StaticKeyRing(), clock, request=True) is Reason.UNKNOWN_TYPE
    assert reason(ack, ring, clock, request=True) is Reason.UNKNOWN_TYPE


def test_a_request_carrying_re_is_malformed(clock: ManualClock) -> None:
    """SPEC §5.2, §5.3 step 6: a request MUST NOT carry ``re``; the endpoint refuses one."""
    ka, _, ring = keys()
    env = hello(clock, ka, re="0b6f2c1e-8c1a-4f7e-9a3d-2f1e7c9b5a40")
    assert reason(env, ring, clock, request=True) is Reason.MALFORMED
    verified = verify_envelope(
        hello(clock, ka), keyring=ring, audience=B, clock=clock, seen=None, request=True
    )
    assert verified.re is None


def test_a_body_over_max_bytes_is_too_large_and_not_parsed(clock: ManualClock) -> None:
    """SPEC §5.3 step 0, in the one verifier the endpoint calls."""
    ka, _, ring = keys()
    data = json.dumps(hello(clock, ka)).encode()
    assert reason(data + b" ", ring, clock, max_bytes=len(data)) is Reason.TOO_LARGE
    assert reason(b"[" * 5000, ring, clock, max_bytes=4000) is Reason.TOO_LARGE
    verify_envelope(data, keyring=ring, audience=B, clock=clock, seen=None, max_bytes=len(data))


def test_a_refusal_names_the_signer_only_once_the_signature_verified(clock: ManualClock) -> None:
    """What a node logs a refusal under (SPEC §8): the sender its signature proved (steps
    15–19), never the ``from`` an envelope merely claims."""
    ka, _, ring = keys()
    env = hello(clock, ka)
    tampered = {**env, "body": {"started_at": "2026-11-23T08:59:01Z"}}
    for bad in (tampered, {**env, "to": "annan.test.se"}):
        with pytest.raises(ProtocolError) as info:
            verify_envelope(bad, keyring=ring, audience=B, clock=clock, seen=None)
        assert info.value.signer is None
    clock.advance(3600)
    with pytest.raises(ProtocolError) as info:
        verify_envelope(env, keyring=ring, audience=B, clock=clock, seen=None)
    assert (info.value.reason, info.value.signer) == (Reason.EXPIRED, A)
