"""Signed objects are validated as strictly as the JSON Schemas in schemas/ say, like envelope
bodies: a verified signature over ``"version": "2"`` or a date written as ``0`` is still
``malformed``. (Lax validation coerced these to 2 and 1970-01-01, so this implementation accepted
objects that one checking the schemas would refuse.)"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from protocol.documents import (
    verify_checkpoint,
    verify_consent,
    verify_fragment,
    verify_node_document,
    verify_witness,
)
from protocol.errors import MalformedError
from protocol.federation import verify_members
from protocol.signing import sign_object
from tests.protocol import test_federation as federation
from tests.schemas import test_schemas as examples

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = obj
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[last] = value

    return mutate


def resigned(obj: dict[str, Any], mutate: Mutation, key: Any) -> dict[str, Any]:
    """``obj`` changed and signed again by its own signer: only the types are wrong."""
    changed = copy.deepcopy({k: v for k, v in obj.items() if k != "sig"})
    mutate(changed)
    signed = sign_object(changed, key)
    return dict(json.loads(json.dumps(signed)))  # as received: parsed from JSON text


FRAGMENT_CASES = {
    "version as string": _set("version", "2"),
    "version as float": _set("version", 2.0),
    "date as number": _set("content.next_review", 0),
    "action start as number": _set("content.actions.0.start", 0),
    "indicator as number": _set("indicators", [1]),
    # the timestamp form with no such moment, or with digits other than ASCII: malformed, not
    # a ValueError that broke a whole assembly on one participant's reply
    "impossible day": _set("signed_at", "2026-02-30T00:00:00Z"),
    "arabic-indic digits": _set("signed_at", "\u0662\u0660\u0662\u0666-11-23T09:00:00Z"),
}


@pytest.mark.parametrize("mutate", FRAGMENT_CASES.values(), ids=FRAGMENT_CASES.keys())
def test_a_signed_fragment_with_a_lax_type_is_malformed(mutate: Mutation) -> None:
    fragment = resigned(examples.fragment(), mutate, examples.KB)
    with pytest.raises(MalformedError):
        verify_fragment(fragment, [examples.KB.public()])


def test_the_well_typed_fragment_verifies() -> None:
    fragment = resigned(examples.fragment(), lambda o: None, examples.KB)
    model, key_id = verify_fragment(fragment, [examples.KB.public()])
    assert model.version == 2 and key_id == examples.KB.key_id


def test_a_signed_checkpoint_with_seq_as_string_is_malformed() -> None:
    checkpoint = resigned(examples.checkpoint(), _set("seq", "42"), examples.KA)
    with pytest.raises(MalformedError):
        verify_checkpoint(checkpoint, [examples.KA.public()])
    good = resigned(examples.checkpoint(), lambda o: None, examples.KA)
    assert verify_checkpoint(good, [examples.KA.public()]).seq == 42


def test_a_node_document_with_protocol_versions_as_strings_is_malformed() -> None:
    document = resigned(examples.node_document(), _set("protocol_versions", ["1"]), examples.KA)
    with pytest.raises(MalformedError):
        verify_node_document(document)
    good = resigned(examples.node_document(), lambda o: None, examples.KA)
    assert verify_node_document(good)[0].id == examples.A


def test_a_member_list_with_version_as_string_is_malformed() -> None:
    members = resigned(federation.signed(), _set("version", "1"), federation.FKEY)
    with pytest.raises(MalformedError):
        verify_members(members, federation.FKEY.public_raw)
    good = resigned(federation.signed(), lambda o: None, federation.FKEY)
    assert verify_members(good, federation.FKEY.public_raw).version == 1


def _drop(name: str) -> Mutation:
    return lambda obj: obj.pop(name)


SIGNED_OBJECTS: dict[str, tuple[Callable[[], dict[str, Any]], Any, Callable[[Any], Any]]] = {
    "node document": (examples.node_document, examples.KA, lambda o: verify_node_document(o)),
    "fragment": (
        examples.fragment,
        examples.KB,
        lambda o: verify_fragment(o, [examples.KB.public()]),
    ),
    "consent statement": (
        # issued once the example key is valid (the example's own issued_at is earlier)
        lambda: {**examples.consent_statement(), "issued_at": "2026-11-23T09:00:00Z"},
        examples.KA,
        lambda o: verify_consent(o, [examples.KA.public()]),
    ),
    "checkpoint": (
        examples.checkpoint,
        examples.KA,
        lambda o: verify_checkpoint(o, [examples.KA.public()]),
    ),
    "witness": (examples.witness, examples.KB, lambda o: verify_witness(o, [examples.KB.public()])),
    "member list": (
        federation.signed,
        federation.FKEY,
        lambda o: verify_members(o, federation.FKEY.public_raw),
    ),
}


@pytest.mark.parametrize("member", ["v", "type"])
@pytest.mark.parametrize("kind", sorted(SIGNED_OBJECTS))
def test_a_signed_object_without_v_or_type_is_malformed(kind: str, member: str) -> None:
    """SPEC §4.2, §6.1, §6.2: ``v`` and ``type`` are required; a signature over an object that
    lacks them does not say what was signed (the models defaulted them and took it)."""
    build, key, verify = SIGNED_OBJECTS[kind]
    verify(resigned(build(), lambda o: None, key))  # the control verifies
    with pytest.raises(MalformedError):
        verify(resigned(build(), _drop(member), key))


NULL_CASES = {
    "fragment: content.actions.0.end": (examples.fragment, "content.actions.0.end"),
    "fragment: content.next_review": (examples.fragment, "content.next_review"),
    "fragment: content.needs.0.indicator": (examples.fragment, "content.needs.0.indicator"),
    "node document: keys.0.valid_until": (examples.node_document, "keys.0.valid_until"),
}


@pytest.mark.parametrize("case", sorted(NULL_CASES))
def test_a_signed_null_for_an_absent_member_is_malformed(case: str) -> None:
    """SPEC §5.2: an optional member without a value is omitted; ``null`` is malformed."""
    build, path = NULL_CASES[case]
    kind = "fragment" if case.startswith("fragment") else "node document"
    _, key, verify = SIGNED_OBJECTS[kind]
    with pytest.raises(MalformedError):
        verify(resigned(build(), _set(path, None), key))


DOCUMENT_TEXTS = {
    "duplicated member": lambda text: '{"agency_name": "Evil", ' + text[1:],
    "v is 1.0": lambda text: text.replace('"v": 1,', '"v": 1.0,'),
    "v is 1e0": lambda text: text.replace('"v": 1,', '"v": 1e0,'),
    "byte-order mark": lambda text: "\ufeff" + text,
}


@pytest.mark.parametrize("spelling", sorted(DOCUMENT_TEXTS))
def test_a_node_document_text_is_read_with_the_envelope_parser(spelling: str) -> None:
    """A received text goes through the one strict parser (jsontext): a lenient parse of each of
    these verifies (the signature covers the canonical form, in which 1.0 is 1)."""
    text = json.dumps(examples.node_document())
    assert verify_node_document(text)[0].id == examples.A
    with pytest.raises(MalformedError):
        verify_node_document(DOCUMENT_TEXTS[spelling](text))
    with pytest.raises(MalformedError):
        verify_node_document(DOCUMENT_TEXTS[spelling](text).encode())
