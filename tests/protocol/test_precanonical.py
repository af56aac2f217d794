"""``Precanonical``: a JSON value with its canonical bytes, spliced in wherever it stands.

Wherever a ``Precanonical(o)`` stands in place of ``o``, ``canonicalize`` must give exactly the
bytes (or the refusal) it gives for the plain structure: on the fast path, where orjson writes the
stored bytes, and on the reference path, which the other parts of a structure can force (a float,
a key outside the BMP, an integer beyond 2**53) and which then works on ``plain(...)``. The wire
encoder ``encode_json`` must write the plain value, including through its standard-library
fallback for integers beyond 64 bits; and an envelope signed with such parts inside must verify
from the bytes ``encode_json`` writes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.canonical import (
    Precanonical,
    canonicalize,
    canonicalize_reference,
    encode_json,
    plain,
)
from protocol.clock import ManualClock, format_time
from protocol.documents import sign_fragment, verify_fragment
from protocol.envelope import (
    MemorySeenIds,
    StaticKeyRing,
    sign_prepared_envelope,
    verify_envelope,
)
from protocol.errors import MalformedError, ProtocolError, Reason
from protocol.keys import SigningKey
from protocol.messages import FragmentsResponse
from protocol.signing import sign_object
from tests.conftest import T0
from tests.protocol.test_canonical import json_values, texts

# --- strategies -------------------------------------------------------------------------------

finite_floats = st.floats(allow_nan=False, allow_infinity=False)
# RFC 8785 writes a float in [2**53, 1e21) as integer digits, which parse back as an integer
# beyond 2**53 (see test_a_big_float_in_a_precanonical_is_written_so_that_it_parses_back)
wire_floats = finite_floats.filter(lambda f: not 2**53 <= abs(f) < 1e21)
# values that send a structure to the reference encoder, or make it refuse the structure
FORCE_REFERENCE: list[Any] = [
    0.5,
    -0.0,
    1e21,
    {"\U0001f600": 1, "\ue000": 2},  # UTF-16 order differs from code-point order here
    2**53,
    -(2**53),
    2**64,
    -(2**70),
]
forcers = st.sampled_from(FORCE_REFERENCE) | finite_floats
# JSON with floats: the reference encoder's number formatting, inside and outside a Precanonical
json_with_floats = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53 - 1), 2**53 - 1) | wire_floats | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(texts, json_with_floats, max_size=5)
# anything else a structure may hold next to the object: fast-path values and forcers
others = json_values | json_with_floats | forcers

Holder = Callable[[Any], Any]


@st.composite
def holders(draw: st.DrawFn) -> Holder:
    """A structure with one hole, as a function that fills the hole; ``others`` elsewhere."""
    key = draw(texts)
    other_key = draw(texts.filter(lambda k: k != key))
    other = draw(others)
    shapes: list[Holder] = [
        lambda x: x,
        lambda x: {key: x, other_key: other},
        lambda x: [other, x],
        lambda x: [x, other, x],
        lambda x: {other_key: [other, {key: x}]},
        lambda x: [{key: x, other_key: [x, other]}],  # the same value twice
    ]
    return draw(st.sampled_from(shapes))


def result(value: Any) -> tuple[str, bytes | None]:
    try:
        return "ok", canonicalize(value)
    except MalformedError:
        return "malformed", None


def walk(value: Any) -> list[Any]:
    """Every value inside ``value`` (itself included), looking into ``Precanonical``s too."""
    found = [value]
    if isinstance(value, Precanonical):
        found += walk(value.value)
    elif isinstance(value, dict):
        for sub in value.values():
            found += walk(sub)
    elif isinstance(value, list):
        for sub in value:
            found += walk(sub)
    return found


# --- canonicalize -----------------------------------------------------------------------------


@given(objects, holders())
def test_a_precanonical_object_canonicalizes_as_the_object_it_wraps(
    obj: dict[str, Any], hole: Holder
) -> None:
    wrapped = Precanonical(obj)
    assert wrapped.canonical == canonicalize(obj)
    assert result(hole(wrapped)) == result(hole(obj))


@given(objects, st.lists(forcers, min_size=1, max_size=3), texts)
def test_a_structure_forced_to_the_reference_path_still_splices_the_same_bytes(
    obj: dict[str, Any], forced: list[Any], key: str
) -> None:
    """A sibling that the fast path cannot write sends the whole structure to the reference
    encoder through ``plain``: the bytes (or the refusal) are the reference's for the plain
    structure."""
    structure = {"forced": forced, "fragment": Precanonical(obj), key: [Precanonical(obj)]}
    plain_structure = {"forced": forced, "fragment": obj, key: [obj]}
    assert result(structure) == result(plain_structure)
    try:
        expected = canonicalize_reference(plain_structure)
    except MalformedError:
        return
    assert canonicalize(structure) == expected


def test_the_reference_path_orders_keys_by_utf16_around_a_precanonical() -> None:
    """Code-point order (what the fast path would write) puts U+E000 first; RFC 8785's UTF-16
    order puts the emoji first. So these bytes can only come from the reference path, which got
    the Precanonical's value through ``plain``."""
    inner = {"z": 1.0, "a": [2**53 - 1, "\U0001f600"], "m": {"\ue000": None, "\U0001f600": True}}
    structure = {"\ue000": 0.5, "\U0001f600": Precanonical(inner)}
    expected = (
        '{"\U0001f600":{"a":[9007199254740991,"\U0001f600"],'
        '"m":{"\U0001f600":true,"\ue000":null},"z":1},"\ue000":0.5}'
    ).encode()
    assert canonicalize(structure) == expected
    assert canonicalize({"\ue000": 0.5, "\U0001f600": inner}) == expected


@pytest.mark.parametrize("big", [2**53, -(2**53), 2**64, 10**30])
def test_a_big_integer_next_to_a_precanonical_is_refused_as_without_it(big: int) -> None:
    with pytest.raises(MalformedError):
        canonicalize({"n": big, "fragment": Precanonical({"a": 1})})
    with pytest.raises(MalformedError):
        canonicalize({"n": big, "fragment": {"a": 1}})


def test_a_value_canonicalize_refuses_cannot_be_wrapped() -> None:
    with pytest.raises(MalformedError):
        Precanonical({"n": 2**53})
    with pytest.raises(MalformedError):
        Precanonical({"s": "\ud800"})


# --- plain ------------------------------------------------------------------------------------


@given(objects, holders())
def test_plain_gives_back_the_plain_structure_and_leaves_the_input_alone(
    obj: dict[str, Any], hole: Holder
) -> None:
    wrapped = Precanonical(obj)
    structure = hole(wrapped)
    unwrapped = plain(structure)
    assert unwrapped == hole(obj)
    assert not any(isinstance(v, Precanonical) for v in walk(unwrapped))
    assert wrapped in walk(structure)  # the input still holds its Precanonical
    assert wrapped.value is obj


def test_plain_unwraps_a_precanonical_nested_in_another() -> None:
    nested = Precanonical({"outer": Precanonical({"inner": 1})})
    assert plain({"x": nested}) == {"x": {"outer": {"inner": 1}}}
    assert canonicalize({"f": 0.5, "x": nested}) == b'{"f":0.5,"x":{"outer":{"inner":1}}}'
    assert json.loads(encode_json({"n": 2**70, "x": nested})) == {
        "n": 2**70,
        "x": {"outer": {"inner": 1}},
    }


# --- encode_json ------------------------------------------------------------------------------


@given(objects, holders())
def test_encode_json_writes_the_plain_value(obj: dict[str, Any], hole: Holder) -> None:
    structure = hole(Precanonical(obj))
    written = encode_json(structure)
    expected = plain(structure)
    # the standard library's parser keeps integers beyond 64 bits (orjson's makes them floats)
    assert json.loads(written) == json.loads(encode_json(expected)) == expected
    if not any(isinstance(v, int) and abs(v) >= 2**63 for v in walk(expected)):
        assert orjson.loads(written) == orjson.loads(encode_json(expected)) == expected


@pytest.mark.parametrize("big", [2**64, -(2**63) - 1, 2**70, -(10**40)])
def test_encode_json_falls_back_to_the_standard_library_beyond_64_bits(big: int) -> None:
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(big)  # the fallback is really taken for these
    inner = {"b": "\U0001f600 å \x00", "a": [1, 0.25, None]}
    structure = {"big": big, "fragments": [Precanonical(inner), Precanonical({})], "x": [big]}
    written = encode_json(structure)
    assert json.loads(written) == {"big": big, "fragments": [inner, {}], "x": [big]}
    assert written.decode("utf-8")  # UTF-8, not ASCII escapes of it
    assert "\U0001f600".encode() in written


def test_encode_json_writes_a_precanonical_as_its_canonical_bytes() -> None:
    inner = {"b": 2, "a": 1}
    written = encode_json({"z": Precanonical(inner), "y": inner})
    assert written == b'{"z":{"a":1,"b":2},"y":{"b":2,"a":1}}'


def test_a_big_float_in_a_precanonical_is_written_so_that_it_parses_back() -> None:
    value = {"f": 1e17}
    assert canonicalize(json.loads(encode_json(plain(value)))) == canonicalize(value)
    written = encode_json({"x": Precanonical(value)})
    assert json.loads(written) == {"x": value}
    assert canonicalize(json.loads(written)) == canonicalize({"x": value})


# --- equality and hash ------------------------------------------------------------------------


@given(objects, objects)
def test_equality_and_hash_follow_the_canonical_bytes(a: dict[str, Any], b: dict[str, Any]) -> None:
    pa, pb = Precanonical(a), Precanonical(b)
    assert (pa == pb) == (canonicalize(a) == canonicalize(b))
    reordered = Precanonical(dict(reversed(list(a.items()))))
    assert reordered == pa and hash(reordered) == hash(pa)
    assert len({pa, reordered}) == 1
    assert pa != a and pa != pa.canonical  # only another Precanonical compares equal


def test_different_values_with_one_canonical_form_are_equal() -> None:
    assert Precanonical(1.0) == Precanonical(1)
    assert Precanonical({"a": -0.0}) == Precanonical({"a": 0})
    assert hash(Precanonical({"a": [1.0, 2.50]})) == hash(Precanonical({"a": [1, 2.5]}))
    assert Precanonical({"a": 1}) != Precanonical({"a": True})
    assert Precanonical({"a": "1"}) != Precanonical({"a": 1})


# --- signing an envelope that holds Precanonical fragments ------------------------------------

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
        "fragments": [Precanonical(f) for f in FRAGMENTS],
        "withheld": [{"category": "health", "reason": "no_fragments"}],
    }


def envelope_with_precanonical_fragments(clock: ManualClock) -> dict[str, Any]:
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


def test_sign_object_over_precanonical_fragments_verifies_from_encode_json_bytes(
    clock: ManualClock,
) -> None:
    envelope = envelope_with_precanonical_fragments(clock)
    plain_envelope = plain(envelope)
    # the signature is the one the plain envelope gets: the signed bytes are the same
    assert sign_object(plain_envelope, HOLDER_KEY)["sig"] == envelope["sig"]
    data = encode_json(envelope)
    assert json.loads(data) == plain_envelope
    response = verify_as_requester(data, clock)
    assert [f["fragment_id"] for f in response.fragments] == [f["fragment_id"] for f in FRAGMENTS]


def test_sign_prepared_envelope_over_precanonical_fragments_verifies(clock: ManualClock) -> None:
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
    """The control: the verification above does look at the spliced fragment bytes."""
    data = encode_json(envelope_with_precanonical_fragments(clock))
    tampered = data.replace("Sömn".encode(), b"Somn")
    assert tampered != data
    with pytest.raises(ProtocolError) as info:
        verify_as_requester(tampered, clock)
    assert info.value.reason == Reason.BAD_SIGNATURE
