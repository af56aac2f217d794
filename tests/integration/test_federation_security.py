"""Hostile and mistaken requests against a real holder: every one refused or withheld, and logged.

Three real nodes on loopback (school leads the plan; social services and BUP hold fragments).
Envelopes are crafted here with the nodes' real keys (or a stranger's) and POSTed raw to the
holder's federation endpoint, so each test controls exactly one thing that is wrong. Each checks
the HTTP status, the holder's *signed* answer (an ``error`` reply, or a ``fragments.response``
whose withheld list says why), that nothing was released, and the holder's exchange-log row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from node.services.inbound import UNVERIFIED
from node.services.outbound import FEDERATION_PATH, PeerResult
from node.store import records
from node.store.tables import ExchangeLogEntry
from protocol.clock import ManualClock, format_time
from protocol.documents import verify_fragment
from protocol.envelope import StaticKeyRing, Verified, sign_envelope, verify_envelope
from protocol.keys import SigningKey
from protocol.messages import ErrorBody, FragmentsResponse, RevocationsList
from protocol.signing import sign_object
from tests.conftest import StoreFactory
from tests.integration.test_release_flow import add_child, consent_body, fragment, setup_plan
from tests.support.federation import (
    BUP,
    POLICE,
    SCHOOL,
    SOCIAL,
    RunningNode,
    start_federation,
    stop_all,
)
from tests.support.plans import link_invitation

ROOT = Path(__file__).resolve().parents[2]
T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
STRANGER = "okand.example.se"


@dataclass
class World:
    """The federation with plan A set up, fragments authored and one consent recorded."""

    school: RunningNode
    social: RunningNode
    bup: RunningNode
    clock: ManualClock
    plan_id: str
    consent_id: str


async def author(node: RunningNode, plan_id: str, category: str, marker: str) -> None:
    status, body = await node.api(
        "POST", f"/plans/{plan_id}/fragments", "prof", fragment(category, marker)
    )
    assert status == 201, body


async def record_consent(
    lead: RunningNode, plan_id: str, grants: list[dict[str, Any]], **overrides: Any
) -> str:
    status, consent = await lead.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants, **overrides)
    )
    assert status == 201, consent
    assert all(d["status"] == "stored" for d in consent["distribution"]), consent
    return str(consent["consent_id"])


async def build_world(
    trio: list[RunningNode], clock: ManualClock, given: tuple[str, ...] = ("vh1", "vh2")
) -> World:
    """Plan A: social holds ``social`` and ``family`` fragments, BUP ``mental_health``; the
    consent lets social release ``social`` to school only, and BUP ``mental_health`` to school."""
    school, social, bup = trio
    plan_id, statuses = await setup_plan(trio)
    assert set(statuses.values()) == {"lead", "linked"}, statuses
    await author(social, plan_id, "social", "SOC-1")
    await author(social, plan_id, "family", "FAM-1")
    await author(bup, plan_id, "mental_health", "BUP-1")
    await author(school, plan_id, "education", "SKO-1")
    grants = [
        {"from": social.node_id, "to": [school.node_id], "categories": ["social"]},
        {"from": bup.node_id, "to": [school.node_id], "categories": ["mental_health"]},
    ]
    consent_id = await record_consent(school, plan_id, grants, given_by=_given(given))
    return World(school, social, bup, clock, plan_id, consent_id)


def _given(refs: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"ref": r, "role": "guardian"} for r in refs]


def request_body(
    world: World,
    requester: str,
    categories: list[str],
    plan_id: str | None = None,
    consent_id: str | None = None,
) -> dict[str, Any]:
    return {
        "plan_id": plan_id or world.plan_id,
        "consent_id": consent_id or world.consent_id,
        "categories": categories,
        "purpose": "sip",
        "professional": f"{requester}/u/lead",
    }


def craft(
    world: World,
    *,
    sender: str,
    key: SigningKey,
    to: str | None = None,
    categories: list[str] | None = None,
    clock: ManualClock | None = None,
) -> dict[str, Any]:
    """A ``fragments.request`` for plan A as ``sender`` signed by ``key`` (to social by default)."""
    return sign_envelope(
        type="fragments.request",
        body=request_body(world, sender, categories or ["social"]),
        sender=sender,
        to=to or world.social.node_id,
        key=key,
        clock=clock or world.clock,
    )


async def post_raw(
    holder: RunningNode, data: bytes, content_type: str | None = "application/json"
) -> tuple[int, dict[str, Any]]:
    """POST ``data`` as ``content_type`` (None: with no Content-Type header at all)."""
    headers = {"Content-Type": content_type} if content_type is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            holder.url + FEDERATION_PATH,
            data=data,
            headers=headers,
            skip_auto_headers=["Content-Type"],
        ) as resp,
    ):
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert isinstance(body, dict)
        return resp.status, body


async def post(holder: RunningNode, envelope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return await post_raw(holder, json.dumps(envelope).encode())


def verify_reply(holder: RunningNode, reply: dict[str, Any], audience: str) -> Verified:
    """Check the reply's signature with the holder's published keys, addressed to ``audience``."""
    return verify_envelope(
        reply,
        keyring=StaticKeyRing({holder.node_id: holder.node.identity.public_keys()}),
        audience=audience,
        clock=holder.node.clock,
        seen=None,
    )


def assert_error_reply(
    holder: RunningNode, reply: dict[str, Any], audience: str, reason: str
) -> Verified:
    verified = verify_reply(holder, reply, audience)
    assert verified.type == "error"
    assert verified.sender == holder.node_id
    assert isinstance(verified.body, ErrorBody)
    assert verified.body.reason.value == reason
    assert verified.body.detail  # says what is wrong
    assert "fragments" not in reply["body"]
    return verified


def assert_withheld_reply(
    holder: RunningNode, reply: Verified | dict[str, Any], audience: str, expected: list[str]
) -> list[tuple[str | None, str]]:
    raw = reply.raw if isinstance(reply, Verified) else reply
    verified = verify_reply(holder, raw, audience)
    assert verified.type == "fragments.response"
    assert isinstance(verified.body, FragmentsResponse)
    assert verified.body.fragments == []
    withheld = [
        (w.category.value if w.category else None, w.reason.value) for w in verified.body.withheld
    ]
    assert [c for c, _ in withheld] == expected
    return withheld


async def log_rows(node: RunningNode) -> list[dict[str, Any]]:
    async with node.node.engine.connect() as conn:
        rows = (await conn.execute(select(T_LOG).order_by(T_LOG.c.seq))).mappings().all()
    return [dict(r) for r in rows]


async def new_log_row(node: RunningNode, before: list[dict[str, Any]]) -> dict[str, Any]:
    """The one row appended since ``before``; nothing in the whole log was ever released."""
    after = await log_rows(node)
    assert after[: len(before)] == before  # append-only
    new = after[len(before) :]
    assert len(new) == 1, new
    assert all(r["released"] == 0 for r in after)
    return new[0]


def assert_refused_row(row: dict[str, Any], peer: str, reason: str) -> None:
    """A refusal before the signature verified is logged under ``UNVERIFIED``: the ``from`` it
    claims is not known to be true (the error reply is still addressed to it)."""
    assert row["direction"] == "in"
    assert row["peer"] == peer
    assert row["outcome"] == "refused"
    assert row["reason"] == reason
    assert row["released"] == 0


def assert_withheld_row(
    row: dict[str, Any], world: World, peer: str, categories: list[str], reason: str
) -> None:
    assert row["direction"] == "in"
    assert row["peer"] == peer
    assert row["message_type"] == "fragments.request"
    assert row["outcome"] == "withheld"
    assert row["reason"] == reason
    assert row["released"] == 0
    assert row["categories"] == ",".join(sorted(categories))
    assert row["withheld"] == ",".join(f"{c}:{reason}" for c in categories)


@pytest.fixture
async def world(trio: list[RunningNode], clock: ManualClock) -> World:
    return await build_world(trio, clock)


# --- the control: a correctly crafted request is released --------------------------------------


async def test_a_correctly_signed_raw_request_from_the_granted_requester_is_released(
    world: World,
) -> None:
    """The crafting in this file is right: untouched, the same envelope releases the fragment,
    so each refusal below is caused by the one thing that test changes."""
    school, social = world.school, world.social
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 200, reply
    verified = verify_reply(social, reply, school.node_id)
    assert verified.type == "fragments.response" and verified.re == envelope["id"]
    assert isinstance(verified.body, FragmentsResponse)
    assert [f["category"] for f in verified.body.fragments] == ["social"]
    assert verified.body.withheld == []
    after = await log_rows(social)
    (row,) = after[len(before) :]
    assert (row["outcome"], row["released"], row["message_id"]) == ("released", 1, envelope["id"])


# --- envelope failures: signed error replies, logged as refused --------------------------------


async def test_a_body_changed_after_signing_is_refused_as_bad_signature(world: World) -> None:
    school, social = world.school, world.social
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key)
    envelope["body"]["categories"] = ["social", "family"]  # tampered in transit
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 401
    assert_error_reply(social, reply, school.node_id, "bad_signature")
    assert_refused_row(await new_log_row(social, before), UNVERIFIED, "bad_signature")


async def test_the_same_envelope_sent_twice_is_refused_the_second_time_as_replayed(
    world: World,
) -> None:
    school, social = world.school, world.social
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key)
    status, _ = await post(social, envelope)
    assert status == 200  # the original is answered (and releases the granted fragment)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 409
    assert_error_reply(social, reply, school.node_id, "replayed")
    after = await log_rows(social)
    (row,) = after[len(before) :]
    assert_refused_row(row, school.node_id, "replayed")
    # only the original was ever released; the replay released nothing
    assert [r["released"] for r in after if r["released"]] == [1]


async def test_a_replay_is_refused_even_after_the_holder_reloads_its_replay_memory(
    world: World,
) -> None:
    """The seen id is persisted with the log entry, so a restarted holder still refuses it."""
    school, social = world.school, world.social
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key)
    status, _ = await post(social, envelope)
    assert status == 200
    fresh = type(social.node.seen)()
    await fresh.load(social.node.engine, world.clock.now())
    social.node.seen = fresh  # as after a restart: memory rebuilt from the seen_message table
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 409
    assert_error_reply(social, reply, school.node_id, "replayed")
    assert_refused_row((await log_rows(social))[len(before)], school.node_id, "replayed")


async def test_an_envelope_signed_ten_minutes_ago_is_refused_as_expired(world: World) -> None:
    school, social = world.school, world.social
    # Move on an hour first: the nodes' keys became valid at the start (T0), and an envelope
    # issued before its key's validity would be refused earlier, as key_not_valid.
    world.clock.advance(3600)
    past = ManualClock(world.clock.now() - timedelta(minutes=10))
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key, clock=past)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 401
    assert_error_reply(social, reply, school.node_id, "expired")
    assert_refused_row(await new_log_row(social, before), school.node_id, "expired")


async def test_an_envelope_addressed_to_another_node_is_refused_as_wrong_audience(
    world: World,
) -> None:
    school, social, bup = world.school, world.social, world.bup
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key, to=bup.node_id)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 421
    assert_error_reply(social, reply, school.node_id, "wrong_audience")
    assert_refused_row(await new_log_row(social, before), UNVERIFIED, "wrong_audience")


async def test_a_node_that_is_not_a_trusted_peer_is_refused_as_unknown_sender(
    world: World,
) -> None:
    social = world.social
    stranger = SigningKey.generate(STRANGER, world.clock.now() - timedelta(days=1))
    envelope = craft(world, sender=STRANGER, key=stranger)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 401
    assert_error_reply(social, reply, STRANGER, "unknown_sender")
    assert_refused_row(await new_log_row(social, before), UNVERIFIED, "unknown_sender")


async def test_an_envelope_from_school_signed_with_bups_key_is_refused_as_unknown_key(
    world: World,
) -> None:
    school, social, bup = world.school, world.social, world.bup
    envelope = craft(world, sender=school.node_id, key=bup.node.identity.key)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 401
    assert_error_reply(social, reply, school.node_id, "unknown_key")
    assert_refused_row(await new_log_row(social, before), UNVERIFIED, "unknown_key")


async def test_an_envelope_from_school_signed_with_an_unlisted_school_key_is_refused_as_unknown_key(
    world: World,
) -> None:
    """A key whose id names the school but is not in the school's published document."""
    school, social = world.school, world.social
    impostor = SigningKey.generate(school.node_id, world.clock.now() - timedelta(days=1))
    envelope = craft(world, sender=school.node_id, key=impostor)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 401
    assert_error_reply(social, reply, school.node_id, "unknown_key")
    assert_refused_row(await new_log_row(social, before), UNVERIFIED, "unknown_key")


# --- HTTP-level refusals -----------------------------------------------------------------------

NOT_JSON = (
    None,  # no Content-Type at all
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "application/json; charset=iso-8859-1",
    "application/json; profile=x",
    "application/jsonx",
    "text/json",
)


async def test_a_message_not_sent_as_json_is_refused_with_415_and_nothing_is_applied(
    world: World,
) -> None:
    """SPEC §8: a message is sent as ``application/json`` (at most ``charset=utf-8``). Anything
    else is refused, signed and logged, before the body is read as a message: the granted
    request below releases nothing until it comes as JSON, and then it is not a replay."""
    school, social = world.school, world.social
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key)
    data = json.dumps(envelope).encode()
    for content_type in NOT_JSON:
        before = await log_rows(social)
        status, reply = await post_raw(social, data, content_type)
        assert status == 415, content_type
        refusal = assert_error_reply(social, reply, school.node_id, "malformed")
        assert refusal.re == envelope["id"]  # the requester can match it to its request
        row = await new_log_row(social, before)
        assert_refused_row(row, UNVERIFIED, "malformed")  # its signature was never checked
    status, reply = await post_raw(social, data, "application/json; charset=UTF-8")
    assert status == 200, reply
    verified = verify_reply(social, reply, school.node_id)
    assert isinstance(verified.body, FragmentsResponse)
    assert [f["category"] for f in verified.body.fragments] == ["social"]


# --- release decisions: signed fragments.response, everything withheld, logged as withheld -----


async def test_a_consent_of_another_plan_held_here_withholds_everything_as_consent_other_plan(
    world: World,
) -> None:
    """Plan B (same child, same agencies) has its own consent, which social services holds.
    The holder checks plan, participant, revocation, that it knows the consent, and then that
    the consent is for the requested plan — so the answer is consent_other_plan."""
    school, social, bup = world.school, world.social, world.bup
    child_id = (await school.api("GET", f"/plans/{world.plan_id}"))[1]["child_id"]
    status, plan_b = await school.api(
        "POST",
        "/plans",
        "lead",
        {"child_id": child_id, "participants": [social.node_id, bup.node_id]},
    )
    assert status == 201, plan_b
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    consent_b = await record_consent(school, plan_b["plan_id"], grants)
    body = request_body(world, school.node_id, ["social"], consent_id=consent_b)
    before = await log_rows(social)
    result = await school.node.peers.send(social.node_id, "fragments.request", body)
    assert result.ok, result
    assert result.reply is not None
    assert assert_withheld_reply(social, result.reply, school.node_id, ["social"]) == [
        ("social", "consent_other_plan")
    ]
    row = await new_log_row(social, before)
    assert_withheld_row(row, world, school.node_id, ["social"], "consent_other_plan")
    assert row["consent_id"] == consent_b and row["plan_id"] == world.plan_id


async def test_a_consent_the_holder_never_received_withholds_everything_as_consent_unknown(
    world: World,
) -> None:
    """Plan C involves only BUP, so its consent never reaches social services."""
    school, social, bup = world.school, world.social, world.bup
    child_id = (await school.api("GET", f"/plans/{world.plan_id}"))[1]["child_id"]
    status, plan_c = await school.api(
        "POST", "/plans", "lead", {"child_id": child_id, "participants": [bup.node_id]}
    )
    assert status == 201, plan_c
    grants = [{"from": bup.node_id, "to": [school.node_id], "categories": ["mental_health"]}]
    consent_c = await record_consent(school, plan_c["plan_id"], grants)
    body = request_body(world, school.node_id, ["social"], consent_id=consent_c)
    before = await log_rows(social)
    result = await school.node.peers.send(social.node_id, "fragments.request", body)
    assert result.ok and result.reply is not None, result
    assert assert_withheld_reply(social, result.reply, school.node_id, ["social"]) == [
        ("social", "consent_unknown")
    ]
    assert_withheld_row(
        await new_log_row(social, before), world, school.node_id, ["social"], "consent_unknown"
    )


async def test_a_participant_the_consent_does_not_grant_to_gets_requester_not_granted(
    world: World,
) -> None:
    """BUP takes part in the plan, but the family let social services share only with school."""
    social, bup = world.social, world.bup
    body = request_body(world, bup.node_id, ["social"])
    before = await log_rows(social)
    result: PeerResult = await bup.node.peers.send(social.node_id, "fragments.request", body)
    assert result.ok and result.reply is not None, result
    assert assert_withheld_reply(social, result.reply, bup.node_id, ["social"]) == [
        ("social", "requester_not_granted")
    ]
    assert_withheld_row(
        await new_log_row(social, before), world, bup.node_id, ["social"], "requester_not_granted"
    )


async def test_a_category_outside_the_grant_is_withheld_as_category_not_granted(
    world: World,
) -> None:
    """Social services holds a family fragment, but the consent grants only ``social``."""
    school, social = world.school, world.social
    envelope = craft(
        world, sender=school.node_id, key=school.node.identity.key, categories=["family"]
    )
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 200
    assert assert_withheld_reply(social, reply, school.node_id, ["family"]) == [
        ("family", "category_not_granted")
    ]
    assert_withheld_row(
        await new_log_row(social, before), world, school.node_id, ["family"], "category_not_granted"
    )


async def test_after_the_consent_is_past_its_valid_until_everything_is_withheld_as_expired(
    world: World,
) -> None:
    school, social = world.school, world.social
    world.clock.set(datetime(2027, 11, 1, 0, 0, 1, tzinfo=UTC))  # valid_until + 1 s
    body = request_body(world, school.node_id, ["social"])
    before = await log_rows(social)
    result = await school.node.peers.send(social.node_id, "fragments.request", body)
    assert result.ok and result.reply is not None, result
    assert assert_withheld_reply(social, result.reply, school.node_id, ["social"]) == [
        ("social", "consent_expired")
    ]
    assert_withheld_row(
        await new_log_row(social, before), world, school.node_id, ["social"], "consent_expired"
    )


async def test_at_the_exact_valid_until_instant_the_consent_no_longer_releases(
    world: World,
) -> None:
    school, social = world.school, world.social
    world.clock.set(datetime(2027, 11, 1, 0, 0, 0, tzinfo=UTC))
    body = request_body(world, school.node_id, ["social"])
    before = await log_rows(social)
    result = await school.node.peers.send(social.node_id, "fragments.request", body)
    assert result.ok and result.reply is not None, result
    assert assert_withheld_reply(social, result.reply, school.node_id, ["social"]) == [
        ("social", "consent_expired")
    ]
    await new_log_row(social, before)


async def test_a_consent_given_by_one_of_two_required_guardians_withholds_as_consenter_missing(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    world = await build_world(trio, clock, given=("vh1",))
    school, social = world.school, world.social
    envelope = craft(world, sender=school.node_id, key=school.node.identity.key)
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 200
    assert assert_withheld_reply(social, reply, school.node_id, ["social"]) == [
        ("social", "consenter_missing")
    ]
    assert_withheld_row(
        await new_log_row(social, before), world, school.node_id, ["social"], "consenter_missing"
    )


# --- what the requester learns from a refusal ------------------------------------------------


async def test_a_requester_the_holder_no_longer_trusts_learns_the_signed_reason_unknown_sender(
    world: World,
) -> None:
    school, social = world.school, world.social
    from node.store.peers import delete_peer

    assert await delete_peer(social.node.engine, school.node_id)  # as 'barnplan peers remove'
    await social.node.reload_peers()
    body = request_body(world, school.node_id, ["social"])
    result = await school.node.peers.send(social.node_id, "fragments.request", body)
    assert (result.outcome, result.reason) == ("refused", "unknown_sender")


# --- a member gone bad: a node that declined the plan is not a participant ---------------------


@dataclass
class Declined:
    """School leads plan A with social services and BUP (linked) and police, which has no
    record of the child and declined; the consent (recorded after that) grants social ->
    school ``social``. Police stays a trusted member of the federation."""

    school: RunningNode
    social: RunningNode
    police: RunningNode
    plan_id: str
    consent_id: str
    statement: dict[str, Any]


@pytest.fixture
async def declined(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[Declined]:
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL, BUP, POLICE], store_factory, clock)
    try:
        school, social, bup, police = nodes
        for node in (school, social, bup):
            await add_child(node)
        child_id = (await school.api("GET", "/children", "prof"))[1][0]["child_id"]
        status, plan = await school.api(
            "POST",
            "/plans",
            "lead",
            {"child_id": child_id, "participants": [social.node_id, bup.node_id, POLICE[0]]},
        )
        assert status == 201, plan
        plan_id = plan["plan_id"]
        for node in (social, bup):  # a professional at each links (SPEC §7.1)
            await link_invitation(node, plan_id)
        status, answer = await police.api("POST", f"/invitations/{plan_id}/decline", "prof")
        assert status < 300 and answer["lead_notified"] == "ok", answer
        assert await participant_status(school, plan_id, police.node_id) == "declined"
        await author(social, plan_id, "social", "SOC-D")
        grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
        status, consent = await school.api(
            "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
        )
        assert status == 201, consent
        assert [d["node_id"] for d in consent["distribution"]] == [bup.node_id, social.node_id]
        yield Declined(school, social, police, plan_id, consent["consent_id"], consent["statement"])
    finally:
        await stop_all(nodes)


async def participant_status(lead: RunningNode, plan_id: str, node_id: str) -> str:
    status, view = await lead.api("GET", f"/plans/{plan_id}", "lead")
    assert status == 200, view
    return str({p["node_id"]: p["status"] for p in view["participants"]}[node_id])


async def assert_refused_and_logged(
    result: PeerResult, holder: RunningNode, sender: str, reason: str
) -> None:
    """A signed refusal (``peers.send`` verified it) with ``reason``, in the holder's log."""
    assert (result.outcome, result.reason) == ("refused", reason), result
    row = [r for r in await log_rows(holder) if r["direction"] == "in"][-1]
    assert (row["peer"], row["outcome"], row["reason"]) == (sender, "refused", reason)


async def test_a_node_that_declined_cannot_rejoin_the_plan_by_sending_plan_link(
    declined: Declined,
) -> None:
    d = declined
    body = {"plan_id": d.plan_id, "status": "linked", "professional": f"{POLICE[0]}/u/prof"}
    result = await d.police.node.peers.send(d.school.node_id, "plan.link", body)
    await assert_refused_and_logged(result, d.school, POLICE[0], "not_participant")
    assert await participant_status(d.school, d.plan_id, POLICE[0]) == "declined"


async def test_a_node_that_declined_cannot_revoke_the_plans_consent(declined: Declined) -> None:
    d = declined
    notice = {
        "notice_id": str(uuid.uuid4()),
        "consent_id": d.consent_id,
        "plan_id": d.plan_id,
        "revoked_at": format_time(d.school.node.clock.now()),
        "revoked_by": POLICE[0],
        "professional": f"{POLICE[0]}/u/prof",
    }
    result = await d.police.node.peers.send(d.school.node_id, "consent.revoke", notice)
    await assert_refused_and_logged(result, d.school, POLICE[0], "not_participant")
    status, shared = await d.school.api("GET", f"/plans/{d.plan_id}/shared", "lead")
    assert status == 200 and shared["status"] == "active", shared
    assert [f["origin"] for f in shared["fragments"]] == [SOCIAL[0]]


async def test_a_node_that_declined_hears_of_no_revocation_of_the_plan(declined: Declined) -> None:
    d = declined
    status, revoked = await d.school.api("POST", f"/consents/{d.consent_id}/revoke", "lead")
    assert status == 201 and POLICE[0] not in revoked["notified"], revoked
    for asker in (d.police, d.social):  # the control: social services takes part, and hears
        result = await asker.node.peers.send(d.school.node_id, "revocations.since", {"cursor": 0})
        assert result.ok and isinstance(result.reply and result.reply.body, RevocationsList)
        assert result.reply is not None
        listed = [r.consent_id for r in result.reply.body.revocations]  # type: ignore[attr-defined]
        assert listed == ([] if asker is d.police else [d.consent_id])


async def test_a_node_that_declined_keeps_no_consent_of_the_plan(declined: Declined) -> None:
    """The lead's statement, sent to the node that declined (as a lead that missed the decline
    would), is refused ``plan_unknown`` and not stored: it keeps only consents of plans it is
    in."""
    d = declined
    result = await d.school.node.peers.send(
        POLICE[0], "consent.statement", {"statement": d.statement}
    )
    await assert_refused_and_logged(result, d.police, SCHOOL[0], "plan_unknown")
    async with d.police.node.engine.connect() as conn:
        assert await records.consent_statement(conn, d.consent_id) is None


# --- consent statements: only the lead distributes one, and only a whole one -------------------


async def stored_statement(lead: RunningNode, consent_id: str) -> dict[str, Any]:
    async with lead.node.engine.connect() as conn:
        statement = await records.consent_statement(conn, consent_id)
    assert statement is not None
    return statement


async def test_a_participant_relaying_the_leads_statement_is_refused_as_malformed(
    world: World,
) -> None:
    """SPEC §7.3: a statement is distributed by its lead. Social services forwards the school's
    genuine statement to BUP: refused malformed (400), as §7.1 and §7.5 refuse a body naming
    another node than the sender, not ``unknown_key`` (no key was unknown), and nothing stored."""
    school, social, bup = world.school, world.social, world.bup
    genuine = await stored_statement(school, world.consent_id)
    relayed = {**genuine, "consent_id": str(uuid.uuid4())}  # one BUP has not seen
    relayed = sign_object(
        {k: v for k, v in relayed.items() if k != "sig"}, school.node.identity.key
    )
    envelope = sign_envelope(
        type="consent.statement",
        body={"statement": relayed},
        sender=social.node_id,
        to=bup.node_id,
        key=social.node.identity.key,
        clock=world.clock,
    )
    before = await log_rows(bup)
    status, reply = await post(bup, envelope)
    assert status == 400
    assert_error_reply(bup, reply, social.node_id, "malformed")
    assert_refused_row(await new_log_row(bup, before), social.node_id, "malformed")
    async with bup.node.engine.connect() as conn:
        assert await records.consent_statement(conn, relayed["consent_id"]) is None


@pytest.mark.parametrize("member", ["v", "type"])
async def test_a_statement_without_v_or_type_from_the_lead_is_refused_as_malformed(
    world: World, member: str
) -> None:
    """SPEC §6.2: ``v`` and ``type`` are required members of the signed statement; the lead's
    correctly signed statement without one was stored (the model defaulted it)."""
    school, social = world.school, world.social
    genuine = await stored_statement(school, world.consent_id)
    cut = {k: v for k, v in genuine.items() if k not in ("sig", member)}
    cut["consent_id"] = str(uuid.uuid4())
    statement = sign_object(cut, school.node.identity.key)
    envelope = sign_envelope(
        type="consent.statement",
        body={"statement": statement},
        sender=school.node_id,
        to=social.node_id,
        key=school.node.identity.key,
        clock=world.clock,
    )
    before = await log_rows(social)
    status, reply = await post(social, envelope)
    assert status == 400
    assert_error_reply(social, reply, school.node_id, "malformed")
    assert_refused_row(await new_log_row(social, before), school.node_id, "malformed")
    async with social.node.engine.connect() as conn:
        assert await records.consent_statement(conn, cut["consent_id"]) is None


# --- what a holder releases: no null for an empty member -----------------------------------------


def nulls(value: Any, path: str = "") -> list[str]:
    if value is None:
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in nulls(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in nulls(v, f"{path}.{i}")]
    return []


async def test_a_released_fragment_omits_empty_members_rather_than_sending_null(
    world: World,
) -> None:
    """SPEC §5.2, §6.1: social services' fragment has a need without an indicator (stored as
    null by the local API); released, the member is absent, the fragment verifies under the
    strict rule and matches schemas/fragment.json."""
    school, social = world.school, world.social
    status, reply = await post(
        social, craft(world, sender=school.node_id, key=school.node.identity.key)
    )
    assert status == 200, reply
    (released,) = reply["body"]["fragments"]
    assert nulls(released) == []
    assert "indicator" not in released["content"]["needs"][0]
    verify_fragment(released, social.node.identity.public_keys())
    schema = json.loads((ROOT / "schemas" / "fragment.json").read_text(encoding="utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(released)) == []
