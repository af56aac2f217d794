"""A holder's real reply to ``fragments.request`` is a valid, verifiable ``fragments.response``.

The holder signs its release replies with ``sign_prepared_envelope``, which does not validate the
body against ``FragmentsResponse`` (the body holds resent signed fragments from the cache).
So these tests take the reply exactly as the federation endpoint writes it (``Inbound.handle``,
then ``reply_bytes``) and check what the requester would: the envelope verifies with the holder's
keys, the body validates against the model and the committed JSON Schema, every fragment verifies
against its origin's keys, and a later request gets the same signed fragment objects back.

Two real nodes (school leads the plan and asks; social services holds fragments), on SQLite and
on PostgreSQL (``store_factory``).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from node.web.federation import reply_bytes
from protocol.canonical import canonicalize
from protocol.clock import ManualClock
from protocol.documents import verify_fragment
from protocol.envelope import MemorySeenIds, Verified, sign_envelope, verify_envelope
from protocol.messages import FragmentsResponse
from tests.conftest import StoreFactory
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, start_federation, stop_all
from tests.support.plans import add_child, create_linked_plan, record_consent, rich_fragment

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@dataclass
class World:
    """School leads plan A with social services linked. Social holds two ``social`` fragments
    and one ``family`` fragment; the consent lets social release ``social`` and ``leisure``
    (of which it holds none) to school, and not ``family``."""

    school: RunningNode
    social: RunningNode
    clock: ManualClock
    plan_id: str
    consent_id: str
    social_fragments: set[str]


@pytest.fixture
async def pair(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[list[RunningNode]]:
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL], store_factory, clock)
    try:
        yield nodes
    finally:
        await stop_all(nodes)


async def author(node: RunningNode, plan_id: str, category: str, marker: str) -> str:
    status, body = await node.api(
        "POST", f"/plans/{plan_id}/fragments", "prof", rich_fragment(category, marker)
    )
    assert status == 201, body
    return str(body["fragment_id"])


@pytest.fixture
async def world(pair: list[RunningNode], clock: ManualClock) -> World:
    school, social = pair
    child = await add_child(school)
    await add_child(social)
    plan_id = await create_linked_plan(school, child, [social])
    social_fragments = {
        await author(social, plan_id, "social", "SOC-1 \U0001f600"),
        await author(social, plan_id, "social", 'SOC-2 "citat" \\ \x01'),
    }
    await author(social, plan_id, "family", "FAM-1")
    await author(school, plan_id, "education", "SKO-1")
    consent_id = await record_consent(
        school, plan_id, {social.node_id: ["social", "leisure"]}, clock.now()
    )
    return World(school, social, clock, plan_id, consent_id, social_fragments)


def request_bytes(world: World, categories: list[str], consent_id: str | None = None) -> bytes:
    """A ``fragments.request`` from school to social, with a fresh message id."""
    envelope = sign_envelope(
        type="fragments.request",
        body={
            "plan_id": world.plan_id,
            "consent_id": consent_id or world.consent_id,
            "categories": categories,
            "purpose": "sip",
            "professional": f"{world.school.node_id}/u/lead",
        },
        sender=world.school.node_id,
        to=world.social.node_id,
        key=world.school.node.identity.key,
        clock=world.clock,
    )
    return json.dumps(envelope).encode()


@dataclass
class Reply:
    request_id: str
    wire: bytes
    signed: dict[str, Any]  # the reply object as the holder signed it
    verified: Verified
    body: FragmentsResponse


async def ask(world: World, categories: list[str], consent_id: str | None = None) -> Reply:
    """Send a request through the holder's federation endpoint logic, and take the reply as the
    requester would: from the bytes the endpoint writes."""
    data = request_bytes(world, categories, consent_id)
    refusal, signed = await world.social.node.inbound.handle(data)
    assert refusal is None, signed
    wire = reply_bytes(signed)
    school = world.school.node
    verified = verify_envelope(
        wire,
        keyring=school.keyring,
        audience=school.node_id,
        clock=school.clock,
        seen=MemorySeenIds(),
        skew_s=school.config.protocol.clock_skew_s,
        expect_type="fragments.response",
    )
    assert verified.type == "fragments.response"  # not an ``error`` reply
    assert verified.sender == world.social.node_id
    assert verified.re == json.loads(data)["id"]
    assert verified.key_id == world.social.node.identity.key.key_id
    raw_body = verified.raw["body"]
    body = FragmentsResponse.model_validate(raw_body)
    assert body == verified.body
    assert schema_errors("messages/fragments.response", raw_body) == []
    assert (body.plan_id, body.consent_id) == (world.plan_id, consent_id or world.consent_id)
    return Reply(json.loads(data)["id"], wire, signed, verified, body)


@functools.cache
def validator(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(name: str, instance: Any) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator(name).iter_errors(instance)]


def check_fragments(world: World, reply: Reply) -> list[dict[str, Any]]:
    """Each released fragment verifies against social's published keys and belongs here."""
    keys = world.social.node.identity.public_keys()
    fragments = reply.body.fragments
    for sent in fragments:
        model, key_id = verify_fragment(sent, keys)
        assert key_id == world.social.node.identity.key.key_id
        assert model.origin == world.social.node_id
        assert (model.plan_id, model.consent_id) == (world.plan_id, world.consent_id)
        assert model.category.value == "social"
        assert schema_errors("fragment", sent) == []
    # the holder resent its cached signed objects; the wire carries exactly their values
    resent = reply.signed["body"]["fragments"]
    assert resent == fragments
    assert [canonicalize(p) for p in resent] == [canonicalize(f) for f in fragments]
    return fragments


def withheld(reply: Reply) -> list[tuple[str | None, str]]:
    return [(w.category.value if w.category else None, w.reason.value) for w in reply.body.withheld]


async def test_a_reply_releasing_some_categories_and_withholding_others_verifies(
    world: World,
) -> None:
    first = await ask(world, ["social", "family", "leisure"])
    fragments = check_fragments(world, first)
    assert {f["fragment_id"] for f in fragments} == world.social_fragments
    assert withheld(first) == [("family", "category_not_granted"), ("leisure", "no_fragments")]
    assert b"FAM-1" not in first.wire and b"SKO-1" not in first.wire

    world.clock.advance(90)  # a fresh signature would carry a new signed_at
    second = await ask(world, ["social", "family", "leisure"])
    assert second.request_id != first.request_id
    assert second.verified.id != first.verified.id
    assert check_fragments(world, second) == fragments  # the same signed objects, sig and all
    assert [f["signed_at"] for f in second.body.fragments] == [f["signed_at"] for f in fragments]
    assert withheld(second) == withheld(first)


@pytest.mark.parametrize(
    ("categories", "unknown_consent", "expected"),
    [
        (
            ["family", "leisure"],
            False,
            [("family", "category_not_granted"), ("leisure", "no_fragments")],
        ),
        (
            ["social", "family"],
            True,
            [("social", "consent_unknown"), ("family", "consent_unknown")],
        ),
    ],
    ids=["categories-withheld", "consent-unknown"],
)
async def test_a_reply_releasing_nothing_verifies(
    world: World,
    categories: list[str],
    unknown_consent: bool,
    expected: list[tuple[str, str]],
) -> None:
    consent_id = str(uuid.uuid4()) if unknown_consent else None
    first = await ask(world, categories, consent_id)
    assert first.body.fragments == [] and first.signed["body"]["fragments"] == []
    assert withheld(first) == expected

    world.clock.advance(90)
    second = await ask(world, categories, consent_id)
    assert second.verified.id != first.verified.id
    assert second.body.fragments == [] and withheld(second) == expected
