"""``records.release_facts``: every read of a holder's release decision, in one read
transaction, on SQLite and PostgreSQL.

Real nodes on loopback: school leads a plan with social services (linked by its professional: it
has the child), BUP and police (no child: pending). Social services, the holder, authors
fragments with several versions, one of which moves between categories; the consent school
records reaches every participant. States the API cannot make (a ``failed`` or extra
participant, a declined plan at a linked holder, plans with no member left) are written through
``node.store.records`` inside ``begin_write``.

For every case the read (with the node's parsed-record cache as the handler passes it, and
without one) is checked against what the plan's, the consent's, the revocation's and the
fragments' own reads say (``records.plan_facts``, ``records.consent_statement``,
``revocations.is_revoked``, ``records.latest_fragments``; the fragments only when the plan, the
consent and no revocation allow them, as the handler does), and against the expected values.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from node.domain.records import FragmentRecord, PlanFacts
from node.store import records, revocations
from node.store.engine import begin_write
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
    add_child,
    create_plan,
    link_invitation,
    record_consent,
    rich_fragment,
)
from tests.support.same import assert_same_records, assert_same_value

FK = "fk.test.se"  # participant rows only the holder's store has (written through the store)
VARD = "vard.test.se"
ALL = ["education", "health", "mental_health", "social", "family", "police", "leisure"]

# --- the federation and the holder's store ---------------------------------------------------


@dataclass
class Fed:
    school: RunningNode  # leads the plans
    social: RunningNode  # the holder whose reads are compared (has the child and links it)
    bup: RunningNode  # no child: its invitation stays pending
    police: RunningNode  # no child: pending, declines in some tests
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


@dataclass
class World:
    plan_id: str
    consent_id: str  # grants social and family from social services to school
    frags: dict[str, str]  # name -> fragment id
    versions: dict[str, int]  # name -> newest version


async def author(
    fed: Fed,
    node: RunningNode,
    plan_id: str,
    category: str,
    marker: str,
    fragment_id: str | None = None,
) -> str:
    """Save a fragment (POST) or a new version of one (PUT), one second after anything before,
    so authored_at orders every version unambiguously; return its fragment id."""
    fed.clock.advance(1)
    body = rich_fragment(category, marker)
    body["indicators"] = [] if marker.startswith("B") else ["nurtured", "safe"]  # B: none
    if fragment_id is None:
        status, answer = await node.api("POST", f"/plans/{plan_id}/fragments", "prof", body)
    else:
        path = f"/plans/{plan_id}/fragments/{fragment_id}"
        status, answer = await node.api("PUT", path, "prof", body)
    assert status == (201 if fragment_id is None else 200), answer
    return str(answer["fragment_id"])


async def build_world(fed: Fed) -> World:
    """The plan as social services holds it: participants school (lead), social services
    (linked), BUP (failed), police (declined), FK (pending) and VARD (invited); fragments
    authored in an order unlike their final authored_at order, with several versions."""
    school, social = fed.school, fed.social
    child_id = await add_child(school)
    await add_child(social)
    plan_id = await create_plan(
        school, child_id, [social.node_id, fed.bup.node_id, fed.police.node_id]
    )
    await link_invitation(social, plan_id)
    frags: dict[str, str] = {}
    versions: dict[str, int] = {}

    async def write(name: str, category: str, marker: str) -> None:
        frags[name] = await author(fed, social, plan_id, category, marker, frags.get(name))
        versions[name] = versions.get(name, 0) + 1

    await write("a", "social", "A1")
    await write("b", "family", "B1")
    await write("c", "social", "C1")
    await write("a", "social", "A2")
    await write("d", "leisure", "D1")  # moves to social in its next version
    await write("c", "social", "C2")
    await write("d", "social", "D2")
    await write("a", "social", "A3")
    await author(fed, school, plan_id, "education", "SKO")  # the lead's own: not social's

    fed.clock.advance(1)
    consent_id = await record_consent(
        school, plan_id, {social.node_id: ["social", "family"]}, fed.clock.now()
    )
    async with begin_write(social.node.engine) as conn:
        await records.set_participant_status(conn, plan_id, fed.bup.node_id, "failed")
        await records.set_participant_status(conn, plan_id, fed.police.node_id, "declined")
        await conn.execute(
            records.T_PART.insert(),
            [
                {"plan_id": plan_id, "node_id": FK, "status": "pending"},
                {"plan_id": plan_id, "node_id": VARD, "status": "invited"},
            ],
        )
    return World(plan_id, consent_id, frags, versions)


async def insert_plan(
    fed: Fed, node: RunningNode, members: dict[str, str], status: str = "active"
) -> str:
    """A participant plan led by school, written straight into ``node``'s store."""
    plan = Plan(
        plan_id=str(uuid.uuid4()),
        child_id=None,
        role="participant",
        status=status,
        lead_node=fed.school.node_id,
        lead_professional=f"{fed.school.node_id}/u/lead",
        responsible_node=node.node_id,  # unlike lead_node, so the two cannot be mixed up
        purpose="sip",
        reason="",
        created_at=fed.clock.now(),
    )
    async with begin_write(node.node.engine) as conn:
        await records.insert_plan(conn, plan, members)
    return plan.plan_id


# --- the two reads ----------------------------------------------------------------------------


@dataclass
class Facts:
    plan: PlanFacts | None
    statement: dict[str, Any] | None
    revoked: bool
    fragments: dict[str, list[FragmentRecord]]
    current: dict[str, list[FragmentRecord]]  # latest_fragments asked regardless of the gate


async def separate_facts(
    node: RunningNode, plan_id: str, consent_id: str, categories: Sequence[str]
) -> Facts:
    """The same facts, each from its own read."""
    async with node.node.engine.connect() as conn:
        plan = await records.plan_facts(conn, plan_id)
        statement = await records.consent_statement(conn, consent_id)
        # revoked within the consent's own plan; a tombstone within the plan asked about
        bound = statement["plan_id"] if statement is not None else plan_id
        revoked = await revocations.is_revoked(conn, consent_id, bound)
        current = await records.latest_fragments(conn, plan_id, list(categories))
    allowed = plan is not None and statement is not None and not revoked
    return Facts(plan, statement, revoked, current if allowed else {}, current)


async def release_facts(
    node: RunningNode,
    plan_id: str,
    consent_id: str,
    categories: Sequence[str],
    parsed: records.RecordCache | None,
) -> tuple[PlanFacts | None, str | None, bool, dict[str, list[FragmentRecord]]]:
    facts = await node.node.store.read(
        records.release_facts, plan_id, consent_id, list(categories), parsed
    )
    return facts.plan, facts.statement, facts.revoked, facts.fragments


def assert_same_plan(got: PlanFacts | None, expected: PlanFacts | None) -> None:
    assert (got is None) == (expected is None), (got, expected)
    if got is None or expected is None:
        return
    assert type(got) is PlanFacts
    for f in dataclasses.fields(PlanFacts):
        assert_same_value(f.name, getattr(got, f.name), getattr(expected, f.name))
    assert "" not in got.participants
    assert got == expected


def assert_same_exact_records(
    got: dict[str, list[FragmentRecord]], expected: dict[str, list[FragmentRecord]]
) -> None:
    """``assert_same_records``, and every record exactly a ``FragmentRecord``."""
    assert all(type(g) is FragmentRecord for have in got.values() for g in have)
    assert_same_records(got, expected)
    assert got == expected


async def both(
    node: RunningNode, plan_id: str, consent_id: str, categories: Sequence[str]
) -> tuple[tuple[PlanFacts | None, str | None, bool, dict[str, list[FragmentRecord]]], Facts]:
    """(``release_facts``, separate) facts, checked equal; ``release_facts`` runs with the
    node's own parsed cache (as the handler calls it) and without one, both equal."""
    expected = await separate_facts(node, plan_id, consent_id, categories)
    cache = node.node.release_cache.records
    first = await release_facts(node, plan_id, consent_id, categories, cache)
    for got in (first, await release_facts(node, plan_id, consent_id, categories, None)):
        plan, raw, revoked, fragments = got
        assert_same_plan(plan, expected.plan)
        assert (raw is None) == (expected.statement is None), (raw, expected.statement)
        if raw is not None:
            assert isinstance(raw, str)
            assert json.loads(raw) == expected.statement
        assert_same_value("revoked", revoked, expected.revoked)
        assert_same_exact_records(fragments, expected.fragments)
    return first, expected


def ids(fragments: dict[str, list[FragmentRecord]]) -> dict[str, list[tuple[str, int]]]:
    return {c: [(r.fragment_id, r.version) for r in group] for c, group in fragments.items()}


# --- the cases ---------------------------------------------------------------------------------


async def test_a_participant_plan_of_mixed_member_statuses_reads_as_it_holds_it(fed: Fed) -> None:
    w = await build_world(fed)
    school, social = fed.school, fed.social
    members = await records.participants(social.node.engine, w.plan_id)
    assert members == {
        school.node_id: "lead",
        social.node_id: "linked",
        fed.bup.node_id: "failed",
        fed.police.node_id: "declined",
        FK: "pending",
        VARD: "invited",
    }

    (plan, raw, revoked, fragments), expected = await both(
        social, w.plan_id, w.consent_id, ["social", "family", "leisure"]
    )
    assert plan == PlanFacts(
        w.plan_id, school.node_id, frozenset({school.node_id, social.node_id, FK, VARD}), "active"
    )
    assert raw is not None and json.loads(raw)["consent_id"] == w.consent_id
    assert expected.statement is not None and expected.statement["plan_id"] == w.plan_id
    assert revoked is False
    # only the newest version of each fragment, by authored_at; "d" left leisure for social
    assert ids(fragments) == {
        "family": [(w.frags["b"], 1)],
        "social": [(w.frags["c"], 2), (w.frags["d"], 2), (w.frags["a"], 3)],
    }
    assert fragments["social"][2].content["summary"] == "Sammanfattning A3"
    assert fragments["social"][2].indicators == ("nurtured", "safe")
    assert fragments["family"][0].indicators == ()
    assert all(r.plan_id == w.plan_id for group in fragments.values() for r in group)

    for categories in (ALL, ["social"], ["family"], ["family", "social"], ["social", "social"]):
        _, again = await both(social, w.plan_id, w.consent_id, categories)
        assert again.fragments and set(again.fragments) <= set(categories)


async def test_a_lead_holding_its_own_plan_reads_as_it_holds_it(fed: Fed) -> None:
    """At the lead every status comes from the API: lead, linked, pending, declined."""
    w = await build_world(fed)
    school = fed.school
    status, answer = await fed.police.api("POST", f"/invitations/{w.plan_id}/decline", "prof")
    assert status == 201 and answer["lead_notified"] == "ok", answer
    assert await records.participants(school.node.engine, w.plan_id) == {
        school.node_id: "lead",
        fed.social.node_id: "linked",
        fed.bup.node_id: "pending",
        fed.police.node_id: "declined",
    }
    (plan, _, _, fragments), _ = await both(school, w.plan_id, w.consent_id, ALL)
    assert plan is not None
    assert plan.participants == {school.node_id, fed.social.node_id, fed.bup.node_id}
    assert list(fragments) == ["education"]


async def test_pending_and_declined_plans_as_their_holders_keep_them(fed: Fed) -> None:
    w = await build_world(fed)
    school, social, bup, police = fed.school, fed.social, fed.bup, fed.police

    # BUP's plan waits for a professional (pending), the consent reached it
    (plan, raw, _, fragments), _ = await both(bup, w.plan_id, w.consent_id, ALL)
    assert plan is not None and plan.status == "pending"
    assert plan.participants == {school.node_id, social.node_id, bup.node_id, police.node_id}
    assert raw is not None and fragments == {}  # it authored none

    # police declines through the API: its plan is declined, though it holds the consent
    status, answer = await police.api("POST", f"/invitations/{w.plan_id}/decline", "prof")
    assert status == 201, answer
    stored = await records.get_plan(police.node.engine, w.plan_id)
    assert stored is not None and stored.status == "declined"
    (plan, raw, revoked, _), _ = await both(police, w.plan_id, w.consent_id, ALL)
    assert plan is None and raw is not None and revoked is False

    # the holder of fragments, its plan declined in its store: no plan, so no fragments
    async with begin_write(social.node.engine) as conn:
        await records.update_plan(conn, w.plan_id, status="declined")
    (plan, raw, revoked, fragments), expected = await both(social, w.plan_id, w.consent_id, ALL)
    assert plan is None and raw is not None and revoked is False
    assert fragments == {} and expected.current  # only the declined plan withholds them


async def test_a_plan_without_other_members_has_no_empty_member(fed: Fed) -> None:
    w = await build_world(fed)
    school, social, bup, police = fed.school, fed.social, fed.bup, fed.police
    others_gone = {school.node_id: "declined", bup.node_id: "failed", police.node_id: "failed"}

    alone = await insert_plan(fed, social, {**others_gone, social.node_id: "linked"})
    own = await author(fed, social, alone, "family", "ALONE")
    (plan, raw, _, fragments), _ = await both(social, alone, w.consent_id, ALL)
    assert plan == PlanFacts(alone, school.node_id, frozenset({social.node_id}), "active")
    assert raw is not None and ids(fragments) == {"family": [(own, 1)]}

    cases = {
        "everyone declined or failed": {**others_gone, social.node_id: "declined"},
        "only failed": {school.node_id: "failed", social.node_id: "failed"},
        "no participant rows": {},
    }
    for name, members in cases.items():
        plan_id = await insert_plan(fed, social, members)
        (plan, _, _, fragments), expected = await both(social, plan_id, w.consent_id, ALL)
        assert expected.plan == PlanFacts(plan_id, school.node_id, frozenset(), "active"), name
        assert plan is not None and plan.participants == frozenset(), name
        assert fragments == {}, name


async def test_an_unknown_plan_reads_as_none(fed: Fed) -> None:
    w = await build_world(fed)
    for consent_id in (w.consent_id, str(uuid.uuid4())):
        (plan, raw, revoked, fragments), _ = await both(
            fed.social, str(uuid.uuid4()), consent_id, ALL
        )
        assert plan is None and revoked is False and fragments == {}
        assert (raw is None) == (consent_id != w.consent_id)


async def test_an_unknown_consent_reads_as_none_with_no_fragments(fed: Fed) -> None:
    w = await build_world(fed)
    (plan, raw, revoked, fragments), expected = await both(
        fed.social, w.plan_id, str(uuid.uuid4()), ALL
    )
    assert plan is not None and plan.plan_id == w.plan_id
    assert raw is None and revoked is False
    assert fragments == {} and expected.current  # only the missing consent withholds them


async def wait_revoked(node: RunningNode, consent_id: str, plan_id: str) -> None:
    """Until the lead's notice (delivered by its outbox) is stored at ``node``."""
    for _ in range(400):
        async with node.node.engine.connect() as conn:
            if await revocations.is_revoked(conn, consent_id, plan_id):
                return
        await asyncio.sleep(0.025)
    raise AssertionError(f"revocation of {consent_id} never reached {node.node_id}")


async def test_a_revoked_consent_reads_revoked_with_no_fragments(fed: Fed) -> None:
    w = await build_world(fed)
    school, social = fed.school, fed.social
    fed.clock.advance(1)
    later = await record_consent(school, w.plan_id, {social.node_id: ["social"]}, fed.clock.now())

    fed.clock.advance(5)
    status, answer = await school.api("POST", f"/consents/{w.consent_id}/revoke", "prof")
    assert status == 201, answer
    await wait_revoked(social, w.consent_id, w.plan_id)

    (plan, raw, revoked, fragments), expected = await both(social, w.plan_id, w.consent_id, ALL)
    assert plan is not None and raw is not None and revoked is True
    assert fragments == {} and expected.current  # only the revocation withholds them
    (_, _, revoked, fragments), _ = await both(school, w.plan_id, w.consent_id, ALL)
    assert revoked is True and fragments == {}

    # the later consent is not revoked: its fragments are read again
    (_, _, revoked, fragments), _ = await both(social, w.plan_id, later, ALL)
    assert revoked is False and list(fragments) == ["family", "social"]

    # a tombstone: revoked before its statement ever arrived here
    tombstone = str(uuid.uuid4())
    async with begin_write(social.node.engine) as conn:
        await revocations.insert_revocation(
            conn,
            consent_id=tombstone,
            plan_id=w.plan_id,
            revoked_at=fed.clock.now(),
            revoked_by=school.node_id,
            notice_id=str(uuid.uuid4()),
            now=fed.clock.now(),
        )
    (plan, raw, revoked, fragments), _ = await both(social, w.plan_id, tombstone, ALL)
    assert plan is not None and raw is None and revoked is True and fragments == {}

    # a revocation bound to another plan revokes nothing in this one, by either read: not a
    # consent held here for this plan, nor a tombstone asked about under this plan
    elsewhere, stray = str(uuid.uuid4()), str(uuid.uuid4())
    async with begin_write(social.node.engine) as conn:
        for consent_id in (later, stray):
            await revocations.insert_revocation(
                conn,
                consent_id=consent_id,
                plan_id=elsewhere,
                revoked_at=fed.clock.now(),
                revoked_by=school.node_id,
                notice_id=str(uuid.uuid4()),
                now=fed.clock.now(),
            )
    (_, _, revoked, fragments), _ = await both(social, w.plan_id, later, ALL)
    assert revoked is False and list(fragments) == ["family", "social"]
    (plan, raw, revoked, fragments), _ = await both(social, w.plan_id, stray, ALL)
    assert plan is not None and raw is None and revoked is False and fragments == {}


async def test_no_categories_or_none_with_fragments_read_empty(fed: Fed) -> None:
    w = await build_world(fed)
    social = fed.social
    for categories in ([], ["leisure"], ["police", "health"], ["education"]):
        # leisure holds only an old version of "d"; education is the lead's, not social's
        (plan, raw, revoked, fragments), expected = await both(
            social, w.plan_id, w.consent_id, categories
        )
        assert plan is not None and raw is not None and revoked is False, categories
        assert fragments == {} and expected.current == {}, categories


async def test_only_the_newest_version_of_each_fragment_is_read(fed: Fed) -> None:
    w = await build_world(fed)
    social = fed.social
    cache = social.node.release_cache.records
    (_, _, _, first), _ = await both(social, w.plan_id, w.consent_id, ["social"])
    assert ids(first) == {"social": [(w.frags["c"], 2), (w.frags["d"], 2), (w.frags["a"], 3)]}

    # a new version committed after the last read is the one read next, and moves "c" last
    await author(fed, social, w.plan_id, "social", "C3", w.frags["c"])
    (_, _, _, after), _ = await both(social, w.plan_id, w.consent_id, ["social"])
    assert ids(after) == {"social": [(w.frags["d"], 2), (w.frags["a"], 3), (w.frags["c"], 3)]}
    assert after["social"][2].content["summary"] == "Sammanfattning C3"
    # the unchanged versions are the very records parsed before (the node's cache)
    assert after["social"][0] is first["social"][1] and after["social"][1] is first["social"][2]
    assert cache.get((w.frags["c"], 3)) is after["social"][2]

    # moving a fragment to another category takes it out of the old one
    await author(fed, social, w.plan_id, "family", "A4", w.frags["a"])
    (_, _, _, moved), _ = await both(social, w.plan_id, w.consent_id, ["social", "family"])
    assert ids(moved) == {
        "family": [(w.frags["b"], 1), (w.frags["a"], 4)],
        "social": [(w.frags["d"], 2), (w.frags["c"], 3)],
    }


class FailingCache:
    """A parsed-record cache that fails, as a read error inside the transaction would."""

    def get(self, key: Any) -> Any:
        raise RuntimeError("cache failure")

    def put(self, key: Any, value: Any) -> None:
        raise AssertionError("not reached")


async def test_a_failure_inside_the_read_leaves_the_store_serving(fed: Fed) -> None:
    w = await build_world(fed)
    with pytest.raises(RuntimeError, match="cache failure"):
        await release_facts(fed.social, w.plan_id, w.consent_id, ["social"], FailingCache())
    await both(fed.social, w.plan_id, w.consent_id, ["social"])  # the store still serves
