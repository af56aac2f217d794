"""``assembly_facts``: every read of an assembly in one read transaction, on SQLite and PostgreSQL.

A real federation on loopback builds the lead's store through the API (children, plans,
invitations linked, left pending and declined, consents, fragment versions, a revocation); one
plan without a child is written through the store, as the API cannot make one. For each case the
read gives the expected ``AssemblyFacts`` (times aware UTC), the same with a parsed-record cache and
without one, or raises ``NotFound``. ``records.latest_fragments_sync`` filters by category and
reuses parsed versions from the cache it is given.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import SQLModel

from node.domain.records import FragmentRecord
from node.errors import NotFound
from node.services.assembly import AssemblyFacts, assembly_facts
from node.services.release_cache import ReleaseCache
from node.store import records
from node.store.engine import begin_write
from node.store.store import Store
from node.store.tables import Plan
from protocol.clock import ManualClock
from tests.conftest import StoreFactory
from tests.support.federation import (
    BUP,
    POLICE,
    SCHOOL,
    SOCIAL,
    RunningNode,
    start_federation,
    stop_all,
)
from tests.support.plans import (
    CHILD_NAME,
    add_child,
    consent_body,
    create_linked_plan,
    create_plan,
    link_invitation,
    rich_fragment,
)
from tests.support.same import assert_same_records, assert_same_value

# --- the federation and what the lead's store holds --------------------------------------------


@dataclass
class Fed:
    school: RunningNode  # the lead whose reads are compared
    social: RunningNode  # has the child: linked
    bup: RunningNode  # no child: the invitation stays pending
    police: RunningNode  # no child: declines the invitation
    clock: ManualClock


@pytest.fixture
async def fed(
    tmp_path: Path, clock: ManualClock, store_factory: StoreFactory
) -> AsyncIterator[Fed]:
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL, BUP, POLICE], store_factory, clock)
    school, social, bup, police = nodes
    try:
        yield Fed(school, social, bup, police, clock)
    finally:
        await stop_all(nodes)


async def author(
    node: RunningNode, plan_id: str, body: dict[str, Any], fragment_id: str | None = None
) -> str:
    """Save a fragment (POST) or a new version of one (PUT); return its fragment id."""
    if fragment_id is None:
        status, answer = await node.api("POST", f"/plans/{plan_id}/fragments", "prof", body)
    else:
        path = f"/plans/{plan_id}/fragments/{fragment_id}"
        status, answer = await node.api("PUT", path, "prof", body)
    assert status == (201 if fragment_id is None else 200), answer
    return str(answer["fragment_id"])


async def consent(fed: Fed, plan_id: str, grants: dict[str, list[str]]) -> str:
    """Record a consent granting each ``{node: categories}`` to the lead; one second later than
    anything before, so the newest consent is unambiguous by ``received_at``."""
    fed.clock.advance(1)
    lead = fed.school
    body = consent_body(
        [{"from": n, "to": [lead.node_id], "categories": c} for n, c in grants.items()],
        fed.clock.now(),
    )
    status, answer = await lead.api("POST", f"/plans/{plan_id}/consents", "lead", body)
    assert status == 201, answer
    return str(answer["consent_id"])


@dataclass
class World:
    plan_id: str
    child_id: str
    older: str  # consent ids, oldest first
    newer: str
    current: list[tuple[str, int]]  # (fragment id, newest version) ordered by authored_at
    frags: dict[str, str]  # name -> fragment id


async def lead_plan(fed: Fed) -> World:
    """School leads a plan with social (linked), BUP (pending) and police (declined); its own
    fragments have several versions in several categories; two consents, one second apart."""
    school, social, bup, police = fed.school, fed.social, fed.bup, fed.police
    child_id = await add_child(school)
    await add_child(social)
    plan_id = await create_plan(school, child_id, [social.node_id, bup.node_id, police.node_id])
    await link_invitation(social, plan_id)
    status, answer = await police.api("POST", f"/invitations/{plan_id}/decline", "prof")
    assert status == 201, answer
    assert answer["lead_notified"] == "ok", answer

    frags: dict[str, str] = {}
    versions: dict[str, int] = {}

    async def write(name: str, category: str, marker: str, *indicators: str) -> None:
        fed.clock.advance(1)
        body = rich_fragment(category, marker)
        body["indicators"] = list(indicators)
        frags[name] = await author(school, plan_id, body, frags.get(name))
        versions[name] = versions.get(name, 0) + 1

    # authored in an order unlike the final authored_at order: "a" is edited last
    await write("a", "education", "A1", "achieving")
    await write("b", "health", "B1", "healthy")
    await write("c", "education", "C1", "included")
    await write("b", "health", "B2", "healthy", "safe")
    await write("d", "social", "D1", "nurtured")  # moves to family in its next version
    await write("c", "education", "C2", "included", "respected")
    await write("b", "health", "B3", "healthy")
    await write("d", "family", "D2", "nurtured", "safe")
    await write("a", "education", "A2", "achieving", "active")
    await write("a", "education", "A3", "achieving", "responsible")
    order = ["c", "b", "d", "a"]  # by the authored_at of each fragment's newest version

    older = await consent(fed, plan_id, {social.node_id: ["social"]})
    newer = await consent(fed, plan_id, {social.node_id: ["social"], bup.node_id: ["health"]})
    return World(
        plan_id=plan_id,
        child_id=child_id,
        older=older,
        newer=newer,
        current=[(frags[n], versions[n]) for n in order],
        frags=frags,
    )


# --- comparing, field by field --------------------------------------------------------------


def assert_same_model(got: SQLModel | None, expected: SQLModel | None) -> None:
    assert (got is None) == (expected is None), (got, expected)
    if got is None or expected is None:
        return
    assert type(got) is type(expected)
    for name in type(expected).model_fields:
        assert_same_value(name, getattr(got, name), getattr(expected, name))


def assert_same_facts(got: AssemblyFacts, expected: AssemblyFacts) -> None:
    assert_same_model(got.plan, expected.plan)
    assert got.consent == expected.consent
    assert got.members == expected.members
    assert_same_model(got.revocation, expected.revocation)
    assert_same_model(got.child, expected.child)
    assert_same_records(got.own, expected.own)


async def both(
    fed: Fed, plan_id: str, consent_id: str | None, parsed: Any = None
) -> tuple[AssemblyFacts, AssemblyFacts]:
    """(with a parsed-record cache, without one) facts, checked equal."""
    engine = fed.school.node.engine
    cache = ReleaseCache().records if parsed is None else parsed  # an empty cache is falsy
    got = await Store(engine).read(assembly_facts, plan_id, consent_id, fed.clock.now(), cache)
    expected = await Store(engine).read(assembly_facts, plan_id, consent_id, fed.clock.now())
    assert_same_facts(got, expected)
    return got, expected


async def both_not_found(
    fed: Fed, plan_id: str, consent_id: str | None = None, error: type[Exception] = NotFound
) -> None:
    engine = fed.school.node.engine
    with pytest.raises(error) as cached_error:
        await Store(engine).read(
            assembly_facts, plan_id, consent_id, fed.clock.now(), ReleaseCache().records
        )
    with pytest.raises(error) as plain_error:
        await Store(engine).read(assembly_facts, plan_id, consent_id, fed.clock.now())
    assert str(cached_error.value) == str(plain_error.value)


def ids(own: dict[str, list[FragmentRecord]]) -> list[tuple[str, int]]:
    """(fragment id, version) of every record, by authored_at across categories."""
    flat = sorted((r for group in own.values() for r in group), key=lambda r: r.authored_at)
    return [(r.fragment_id, r.version) for r in flat]


# --- the cases -------------------------------------------------------------------------------


async def test_a_led_plan_reads_the_same_newest_or_asked_consent(fed: Fed) -> None:
    w = await lead_plan(fed)
    school, social, bup, police = fed.school, fed.social, fed.bup, fed.police

    facts, _ = await both(fed, w.plan_id, None)
    assert facts.plan.plan_id == w.plan_id and facts.plan.role == "lead"
    assert facts.consent["consent_id"] == w.newer  # the newest by received_at
    assert facts.members == {
        school.node_id: "lead",
        social.node_id: "linked",
        bup.node_id: "pending",
        police.node_id: "declined",
    }
    assert facts.revocation is None
    assert facts.child is not None
    assert facts.child.child_id == w.child_id and facts.child.name == CHILD_NAME
    # only the newest version of each fragment, ordered by authored_at
    assert ids(facts.own) == w.current
    assert list(facts.own) == ["education", "health", "family"]
    assert [(r.fragment_id, r.version) for r in facts.own["education"]] == [
        (w.frags["c"], 2),
        (w.frags["a"], 3),
    ]
    assert facts.own["family"][0].indicators == ("nurtured", "safe")
    assert facts.own["family"][0].content["summary"] == "Sammanfattning D2"
    assert "social" not in facts.own  # "d" moved out of it in its newest version

    older, _ = await both(fed, w.plan_id, w.older)
    assert older.consent["consent_id"] == w.older
    assert older.consent != facts.consent and older.revocation is None
    assert ids(older.own) == w.current

    await both_not_found(fed, w.plan_id, str(uuid.uuid4()))  # a consent of no plan here


async def test_a_revoked_consent_reads_the_same_record_and_no_own_fragments(fed: Fed) -> None:
    w = await lead_plan(fed)
    fed.clock.advance(5)
    status, answer = await fed.school.api("POST", f"/consents/{w.newer}/revoke", "prof")
    assert status == 201, answer

    # by default the consent still in force is read (the older one), not the revoked one
    default, _ = await both(fed, w.plan_id, None)
    assert default.consent["consent_id"] == w.older and default.revocation is None

    revoked, _ = await both(fed, w.plan_id, w.newer)
    assert revoked.consent["consent_id"] == w.newer
    assert revoked.revocation is not None
    assert revoked.revocation.consent_id == w.newer
    assert revoked.revocation.plan_id == w.plan_id
    assert revoked.revocation.revoked_by == fed.school.node_id
    assert revoked.revocation.recorded_at == fed.clock.now()
    assert revoked.own == {}

    # the older consent is not revoked: its facts carry the fragments again
    older, _ = await both(fed, w.plan_id, w.older)
    assert older.revocation is None and ids(older.own) == w.current


async def test_a_led_plan_without_a_child_reads_as_held(fed: Fed) -> None:
    school, social = fed.school, fed.social
    plan = Plan(
        plan_id=str(uuid.uuid4()),
        child_id=None,
        role="lead",
        status="active",
        lead_node=school.node_id,
        lead_professional=f"{school.node_id}/u/lead",
        responsible_node=school.node_id,
        purpose="sip",
        reason="",
        created_at=fed.clock.now(),
    )
    async with begin_write(school.node.engine) as conn:
        await records.insert_plan(conn, plan, {school.node_id: "lead", social.node_id: "linked"})
    fed.clock.advance(1)
    fragment_id = await author(school, plan.plan_id, rich_fragment("education", "NOCHILD"))
    consent_id = await consent(fed, plan.plan_id, {social.node_id: ["social"]})

    facts, _ = await both(fed, plan.plan_id, None)
    assert facts.plan.child_id is None and facts.child is None
    assert facts.plan.created_at == plan.created_at
    assert facts.consent["consent_id"] == consent_id
    assert ids(facts.own) == [(fragment_id, 1)]


async def test_joined_plans_read_and_unknown_or_unconsented_are_not_found(
    fed: Fed,
) -> None:
    school, social = fed.school, fed.social
    await add_child(school)
    child_at_social = await add_child(social)

    await both_not_found(fed, str(uuid.uuid4()))  # not taking part: nothing held here

    # social leads, the school only takes part (linked, with the consent it was sent)
    theirs = await create_linked_plan(social, child_at_social, [school])
    fed.clock.advance(1)
    body = consent_body(
        [{"from": school.node_id, "to": [social.node_id], "categories": ["education"]}],
        fed.clock.now(),
    )
    status, answer = await social.api("POST", f"/plans/{theirs}/consents", "lead", body)
    assert status == 201, answer
    stored = await records.get_plan(school.node.engine, theirs)
    assert stored is not None and stored.role == "participant" and stored.status == "active"
    # a plan joined here reads as one led here: with the consent this node was sent
    joined, _ = await both(fed, theirs, None)
    assert joined.plan.role == "participant"
    assert joined.consent["consent_id"] == answer["consent_id"]
    assert joined.members[social.node_id] == "lead"
    await both_not_found(fed, theirs, str(uuid.uuid4()))

    # led here, but no consent recorded yet (fragments alone do not make one)
    child_id = (await school.api("GET", "/children", "prof"))[1][0]["child_id"]
    ours = await create_plan(school, child_id, [social.node_id])
    await author(school, ours, rich_fragment("education", "UNCONSENTED"))
    await both_not_found(fed, ours)


# --- latest_fragments_sync ---------------------------------------------------------------------


async def fragments(
    fed: Fed, plan_id: str, categories: list[str] | None, parsed: Any = None
) -> Any:
    return await fed.school.node.store.read(
        records.latest_fragments_sync, plan_id, categories, parsed
    )


async def test_latest_fragments_filter_by_category_and_reuse_parsed_versions(fed: Fed) -> None:
    w = await lead_plan(fed)
    assert await fragments(fed, w.plan_id, []) == {}

    everything = await fragments(fed, w.plan_id, None)
    for categories in (
        ["education"],
        ["family", "health"],
        ["social"],  # only an old version of "d" is in it: nothing current
        ["police", "education"],
    ):
        picked = await fragments(fed, w.plan_id, categories)
        assert picked == {c: everything[c] for c in categories if c in everything}
    assert sorted(await fragments(fed, w.plan_id, ["family", "health"])) == ["family", "health"]
    assert await fragments(fed, w.plan_id, ["social"]) == {}

    # the same ``parsed`` cache: the very same record objects on the second read
    cache = ReleaseCache().records
    first = await fragments(fed, w.plan_id, None, cache)
    second = await fragments(fed, w.plan_id, None, cache)
    assert list(first) == list(second)
    for category, group in first.items():
        assert all(a is b for a, b in zip(group, second[category], strict=True))
    only = await fragments(fed, w.plan_id, ["education"], cache)
    assert all(a is b for a, b in zip(only["education"], first["education"], strict=True))
    # without a cache: equal records, parsed afresh
    fresh = await fragments(fed, w.plan_id, None)
    assert fresh == first
    assert all(a is not b for a, b in zip(fresh["health"], first["health"], strict=True))

    # assembly_facts through the same cache hands out the same objects too
    facts, _ = await both(fed, w.plan_id, None, cache)
    for category, group in first.items():
        assert all(a is b for a, b in zip(group, facts.own[category], strict=True))

    # a new version is parsed (and is current); the unchanged ones are still reused
    fed.clock.advance(1)
    await author(fed.school, w.plan_id, rich_fragment("health", "B4"), w.frags["b"])
    after, _ = await both(fed, w.plan_id, None, cache)
    (b4,) = after.own["health"]
    assert (b4.fragment_id, b4.version) == (w.frags["b"], 4)
    assert b4 is not first["health"][0]
    assert (await fragments(fed, w.plan_id, ["health"], cache))["health"][0] is b4
    assert all(a is b for a, b in zip(after.own["education"], first["education"], strict=True))
    assert after.own["family"][0] is first["family"][0]
