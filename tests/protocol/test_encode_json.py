"""``encode_json``, how envelopes are written to the wire, and envelopes that resend signed
fragments (a holder's release reply): written by ``encode_json``, they verify as the requester
verifies them, and a changed fragment fails the envelope's signature."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.canonical import encode_json
from protocol.clock import ManualClock, format_time
from protocol.documents import sign_fragment, verify_fragment
from protocol.envelope import (
    MemorySeenIds,
    StaticKeyRing,
    sign_prepared_envelope,
    verify_envelope,
)
from protocol.errors import ProtocolError, Reason
from protocol.keys import SigningKey
from protocol.messages import FragmentsResponse
from protocol.signing import sign_object
from tests.conftest import T0
from tests.protocol.test_canonical import texts

# JSON with floats, outside the range where RFC 8785 would write a float as integer digits
wire_floats = st.floats(allow_nan=False, allow_infinity=False).filter(
    lambda f: not 2**53 <= abs(f) < 1e21
)
json_with_floats = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | wire_floats | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)


def valid_utf8(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return False
    return True


# --- encode_json ------------------------------------------------------------------------------


@given(st.dictionaries(texts, json_with_floats, max_size=5).filter(valid_utf8))
def test_encode_json_writes_the_value(value: dict[str, Any]) -> None:
    written = encode_json(value)
    assert json.loads(written) == value
    assert orjson.loads(written) == value


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 2**70, -(10**40)])
def test_encode_json_falls_back_to_the_standard_library_beyond_64_bits(big: int) -> None:
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(big)  # the fallback is really taken for these
    inner = {"b": "\U0001f600 å \x00", "a": [1, 0.25, None]}
    structure = {"big": big, "fragments": [inner, {}], "x": [big]}
    written = encode_json(structure)
    assert json.loads(written) == structure
    assert written.decode("utf-8")  # UTF-8, not ASCII escapes of it
    assert "\U0001f600".encode() in written


# --- signing an envelope that resends signed fragments -----------------------------------------

HOLDER = "bup.test.se"
REQUESTER = "skola.test.se"
PLAN = "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f"
CONSENT = "0b6f2c1e-8c1a-4f7e-9a3d-2f1e7c9b5a40"
HOLDER_KEY = SigningKey.from_seed(HOLDER, bytes(range(32, 64)), T0 - timedelta(days=1))


def fragment(n: int, summary: str) -> dict[str, Any]:
    return sign_fragment(
        {
            "fragment_id": f"1e2d3c4b-5a69-4788-9a0b-{n:012d}",
            "plan_id": PLAN,
            "consent_id": CONSENT,
            "origin": HOLDER,
            "category": "mental_health",
            "indicators": ["healthy"],
            "version": n,
            "authored_at": "2026-11-22T14:30:00Z",
            "signed_at": format_time(T0),
            "content": {
                "summary": summary,
                "actions": [{"what": "Samtal", "who": "Psykolog", "status": "ongoing"}],
            },
        },
        HOLDER_KEY,
    )


FRAGMENTS = [
    fragment(1, "Sömn och oro inför skoldagen"),
    fragment(2, 'Emoji utanför BMP \U0001f600, kontrolltecken \x01, citat " och \\'),
]


def body() -> dict[str, Any]:
    return {
        "plan_id": PLAN,
        "consent_id": CONSENT,
        "fragments": list(FRAGMENTS),
        "withheld": [{"category": "health", "reason": "no_fragments"}],
    }


def envelope_with_fragments(clock: ManualClock) -> dict[str, Any]:
    return sign_object(
        {
            "v": 1,
            "type": "fragments.response",
            "id": "0d6e5f4a-3b2c-4d1e-8f7a-6b5c4d3e2f1a",
            "re": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            "from": HOLDER,
            "to": REQUESTER,
            "issued_at": format_time(clock.now()),
            "expires_at": format_time(clock.now() + timedelta(seconds=60)),
            "body": body(),
        },
        HOLDER_KEY,
    )


def verify_as_requester(data: bytes, clock: ManualClock) -> FragmentsResponse:
    verified = verify_envelope(
        data,
        keyring=StaticKeyRing({HOLDER: [HOLDER_KEY.public()]}),
        audience=REQUESTER,
        clock=clock,
        seen=MemorySeenIds(),
        expect_type="fragments.response",
    )
    assert verified.type == "fragments.response" and verified.key_id == HOLDER_KEY.key_id
    assert isinstance(verified.body, FragmentsResponse)
    assert verified.raw["body"]["fragments"] == FRAGMENTS
    for sent in verified.raw["body"]["fragments"]:
        model, key_id = verify_fragment(sent, [HOLDER_KEY.public()])
        assert key_id == HOLDER_KEY.key_id and model.origin == HOLDER
    return verified.body


def test_sign_object_over_fragments_verifies_from_encode_json_bytes(clock: ManualClock) -> None:
    envelope = envelope_with_fragments(clock)
    data = encode_json(envelope)
    assert json.loads(data) == envelope
    response = verify_as_requester(data, clock)
    assert [f["fragment_id"] for f in response.fragments] == [f["fragment_id"] for f in FRAGMENTS]


def test_sign_prepared_envelope_over_fragments_verifies(clock: ManualClock) -> None:
    envelope = sign_prepared_envelope(
        type="fragments.response",
        body=body(),
        sender=HOLDER,
        to=REQUESTER,
        key=HOLDER_KEY,
        clock=clock,
        re="9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    )
    verify_as_requester(encode_json(envelope), clock)


def test_a_changed_fragment_in_the_written_bytes_fails_the_envelope_signature(
    clock: ManualClock,
) -> None:
    """The control: the verification above does look at the fragments' bytes."""
    data = encode_json(envelope_with_fragments(clock))
    tampered = data.replace("Sömn".encode(), b"Somn")
    assert tampered != data
    with pytest.raises(ProtocolError) as info:
        verify_as_requester(tampered, clock)
    assert info.value.reason == Reason.BAD_SIGNATURE
