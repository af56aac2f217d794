"""A plan's life across real nodes: an agency invited later links and is named by the next
consent; closing a plan reaches every participant (also one that was down), after which every
holder withholds ``plan_closed``; only the lead may close (SPEC §7.1, §7.3, §7.11)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.services import plan_close, plans
from node.services.revocation import catch_up
from node.store import closures, records
from node.store.exchange_log import LogFilter, query_log
from node.store.tables import User
from protocol.clock import ManualClock, format_time
from protocol.messages import PlanClose
from tests.conftest import StoreFactory
from tests.integration.test_revocation import ask
from tests.support.federation import (
    BUP,
    POLICE,
    SCHOOL,
    SOCIAL,
    RunningNode,
    federation,
)
from tests.support.plans import (
    add_child,
    add_fragment,
    consent_body,
    create_linked_plan,
    link_invitation,
    rich_fragment,
)
from tests.support.waiting import wait_until_async


@pytest.fixture
async def four(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[list[RunningNode]]:
    async with federation(tmp_path, [SCHOOL, SOCIAL, BUP, POLICE], store_factory, clock) as nodes:
        yield nodes


async def lead_user(node: RunningNode) -> User:
    user = await records.user_by_id(node.node.engine, "lead")
    assert user is not None
    return user


async def consent_to_all(lead: RunningNode, plan_id: str, nodes: list[RunningNode]) -> str:
    """Each of ``nodes`` grants its own category to every other of them."""
    cats = {SCHOOL[0]: "education", SOCIAL[0]: "social", BUP[0]: "mental_health"}
    cats[POLICE[0]] = "police"
    ids = [n.node_id for n in nodes]
    grants = [{"from": n, "to": [m for m in ids if m != n], "categories": [cats[n]]} for n in ids]
    body = consent_body(grants, lead.node.clock.now())
    status, consent = await lead.api("POST", f"/plans/{plan_id}/consents", "lead", body)
    assert status == 201, consent
    return str(consent["consent_id"])


async def test_an_agency_invited_later_links_and_the_next_consent_names_it(
    four: list[RunningNode],
) -> None:
    school, social, bup, police = four
    child = await add_child(school)
    for n in (social, bup, police):
        await add_child(n)
    plan_id = await create_linked_plan(school, child, [social])
    first = await consent_to_all(school, plan_id, [school, social])
    view = await plans.plan_view(school.node, plan_id)
    assert view["life_status"] == "in_force"

    view = await plans.invite_participant(
        school.node, await lead_user(school), plan_id, bup.node_id
    )
    assert view["invited"]["outcome"] == "ok"
    members = await records.participants(school.node.engine, plan_id)
    assert members[bup.node_id] == "pending"
    # the invitation lists everyone taking part, the new node included
    bup_members = await records.participants(bup.node.engine, plan_id)
    assert set(bup_members) == {school.node_id, social.node_id, bup.node_id}
    await link_invitation(bup, plan_id)
    assert (await records.participants(school.node.engine, plan_id))[bup.node_id] == "linked"
    # inviting it again is refused and changes nothing
    with pytest.raises(Exception) as again:
        await plans.invite_participant(school.node, await lead_user(school), plan_id, bup.node_id)
    assert getattr(again.value, "code", "") == "plan_invalid"

    await add_fragment(social, plan_id, rich_fragment("social", "SOC-L"))
    # social learned nothing of BUP yet: it withholds not_participant to it
    assert await ask(bup, social, plan_id, first, "social") == (0, ["not_participant"])
    # the next consent names BUP: social learns it from the lead's signed statement
    second = await consent_to_all(school, plan_id, [school, social, bup])
    assert (await records.participants(social.node.engine, plan_id))[bup.node_id] == "named"
    assert await ask(bup, social, plan_id, second, "social") == (1, [])


async def test_closing_reaches_every_participant_and_holders_withhold_plan_closed(
    four: list[RunningNode],
) -> None:
    school, social, bup, police = four
    child = await add_child(school)
    for n in (social, bup, police):
        await add_child(n)
    plan_id = await create_linked_plan(school, child, [social, bup])
    await add_fragment(social, plan_id, rich_fragment("social", "SOC-C"))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", "BUP-C"))
    consent_id = await consent_to_all(school, plan_id, [school, social, bup])
    assert await ask(school, social, plan_id, consent_id, "social") == (1, [])

    await bup.stop()  # BUP is down while the plan is closed
    result = await plan_close.close_plan(school.node, await lead_user(school), plan_id)
    assert result["notified"] == [bup.node_id, social.node_id]
    view = await plans.plan_view(school.node, plan_id)
    assert view["life_status"] == "closed" and view["closed_at"]

    async def social_closed() -> bool:
        plan = await records.get_plan(social.node.engine, plan_id)
        return plan is not None and plan.status == "closed"

    await wait_until_async(social_closed, timeout=10, what="social records the closure")
    assert await ask(school, social, plan_id, consent_id, "social") == (0, ["plan_closed"])
    # the lead's shared view of the closed plan asks no one: every participant shows
    # plan_closed, the lead's own part stays readable, and no fragments.request leaves the lead
    asked = LogFilter(plan_id=plan_id, message_type="fragments.request")
    before = len(await query_log(school.node.engine, asked, limit=1000))
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200, shared
    assert shared["status"] == "closed"
    others = {p["node_id"]: (p["status"], p.get("reason")) for p in shared["participants"][1:]}
    assert others == {n: ("withheld", "plan_closed") for n in (social.node_id, bup.node_id)}
    assert len(await query_log(school.node.engine, asked, limit=1000)) == before
    # read-only: no consent, no fragments, no invitations, no second closing
    user = await lead_user(school)
    with pytest.raises(Exception) as closed:
        await plan_close.close_plan(school.node, user, plan_id)
    assert getattr(closed.value, "code", "") == "plan_closed"
    with pytest.raises(Exception) as invite:
        await plans.invite_participant(school.node, user, plan_id, police.node_id)
    assert getattr(invite.value, "code", "") == "plan_closed"
    status, body = await school.api(
        "POST",
        f"/plans/{plan_id}/consents",
        "lead",
        consent_body(
            [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}],
            school.node.clock.now(),
        ),
    )
    assert status == 409, body
    status, body = await social.api(
        "POST", f"/plans/{plan_id}/fragments", "prof", rich_fragment("social", "SOC-X")
    )
    assert status >= 400, body

    # BUP comes back having missed the notice: the lead's outbox (reset by BUP's traffic) and
    # its own catch-up both bring it; here the catch-up, before any retry is due
    await bup.start()
    async with bup.node.store.reading() as conn:
        assert await closures.get_closure(conn, plan_id) is None
    await catch_up(bup.node)
    await plan_close.catch_up(bup.node)
    plan = await records.get_plan(bup.node.engine, plan_id)
    assert plan is not None and plan.status == "closed" and plan.closed_at is not None
    assert await ask(school, bup, plan_id, consent_id, "mental_health") == (0, ["plan_closed"])

    # and the queued notice is acknowledged too (BUP's traffic reset the lead's backoff)
    async def delivered() -> bool:
        await school.node.outbox.drain()  # type: ignore[attr-defined]
        async with school.node.store.reading() as conn:
            pending = await closures_pending(conn)
        return not pending

    await wait_until_async(delivered, timeout=10, what="the lead's plan.close notices acked")


async def closures_pending(conn: object) -> list[str]:
    from node.store.revocations import outbox_rows

    return [r.peer for r in await outbox_rows(conn) if r.message_type == "plan.close"]  # type: ignore[arg-type]


async def test_a_participant_cannot_close_the_plan(four: list[RunningNode]) -> None:
    school, social, bup, police = four
    child = await add_child(school)
    for n in (social, bup):
        await add_child(n)
    plan_id = await create_linked_plan(school, child, [social, bup])
    await add_fragment(bup, plan_id, rich_fragment("mental_health", "BUP-N"))
    consent_id = await consent_to_all(school, plan_id, [school, social, bup])
    # not the lead at its own node: the service refuses
    social_lead = await lead_user(social)
    with pytest.raises(Exception) as refused:
        await plan_close.close_plan(social.node, social_lead, plan_id)
    assert getattr(refused.value, "code", "") == "no_led_plan"

    def notice(sender: RunningNode, plan: str) -> PlanClose:
        return PlanClose.model_validate(
            {
                "notice_id": str(uuid.uuid4()),
                "plan_id": plan,
                "closed_at": format_time(sender.node.clock.now()),
                "closed_by": sender.node_id,
                "professional": f"{sender.node_id}/u/lead",
            }
        )

    # a participant sends plan.close for the plan to another participant: not the lead
    result = await social.node.peers.send(bup.node_id, "plan.close", notice(social, plan_id))
    assert result.outcome == "refused" and result.reason == "not_participant"
    # a node outside the plan: not the lead either
    result = await police.node.peers.send(bup.node_id, "plan.close", notice(police, plan_id))
    assert result.outcome == "refused" and result.reason == "not_participant"
    result = await social.node.peers.send(
        bup.node_id, "plan.close", notice(social, str(uuid.uuid4()))
    )
    assert result.outcome == "refused" and result.reason == "plan_unknown"
    # naming the lead as the closing node while sending it oneself is malformed
    forged = notice(social, plan_id).model_copy(update={"closed_by": school.node_id})
    result = await social.node.peers.send(bup.node_id, "plan.close", forged)
    assert result.outcome == "refused" and result.reason == "malformed"
    # nothing changed at BUP
    plan = await records.get_plan(bup.node.engine, plan_id)
    assert plan is not None and plan.status == "active" and plan.closed_at is None
    async with bup.node.store.reading() as conn:
        assert await closures.get_closure(conn, plan_id) is None
    assert await ask(school, bup, plan_id, consent_id, "mental_health") == (1, [])
    # the lead itself repeating a closure is idempotent at the receiver
    await plan_close.close_plan(school.node, await lead_user(school), plan_id)
    again = notice(school, plan_id)
    first = await school.node.peers.send(bup.node_id, "plan.close", again)
    assert first.ok
    second = await school.node.peers.send(
        bup.node_id, "plan.close", again.model_copy(update={"notice_id": str(uuid.uuid4())})
    )
    assert second.ok
    async with bup.node.store.reading() as conn:
        closure = await closures.get_closure(conn, plan_id)
    assert closure is not None


async def test_the_lead_sets_the_plans_details_through_the_api(four: list[RunningNode]) -> None:
    """PUT /plans/{id}/details: the coordinator and the next meeting (Swedish local time) stay
    at the lead; a bad date is refused at its field and changes nothing; only the lead may."""
    school, social, _bup, _police = four
    child = await add_child(school)
    await add_child(social)
    plan_id = await create_linked_plan(school, child, [social])
    details = {
        "reason": "Oro för frånvaro",
        "coordinator_name": "Sara Samordnare",
        "coordinator_contact": "0300-12 34 56",
        "review_date": "2027-02-01",
        "review_time": "14:30",
        "review_place": "Skolans bibliotek",
    }
    status, view = await school.api("PUT", f"/plans/{plan_id}/details", "lead", details)
    assert status == 200, view
    assert view["coordinator_name"] == "Sara Samordnare"
    plan = await records.get_plan(school.node.engine, plan_id)
    assert plan is not None and plan.review_place == "Skolans bibliotek"
    assert plan.review_at is not None and plan.review_at.hour in (13, 14)  # 14:30 CET, as UTC
    status, problem = await school.api(
        "PUT", f"/plans/{plan_id}/details", "lead", {**details, "review_date": "1 februari"}
    )
    assert status == 422 and "review_date" in str(problem), problem
    unchanged = await records.get_plan(school.node.engine, plan_id)
    assert unchanged is not None and unchanged.review_at == plan.review_at
    status, _ = await school.api("PUT", f"/plans/{plan_id}/details", "prof", details)
    assert status == 403
    status, _ = await social.api("PUT", f"/plans/{plan_id}/details", "lead", details)
    assert status == 404  # a participant does not lead the plan: its details are not there


async def test_the_lead_invites_an_agency_later_through_the_api(four: list[RunningNode]) -> None:
    """POST /plans/{id}/participants: the invitation reaches the agency (pending there until
    a professional links it); a second invitation of it is refused; only the lead may."""
    school, social, _bup, police = four
    child = await add_child(school)
    await add_child(social)
    await add_child(police)
    plan_id = await create_linked_plan(school, child, [social])
    status, _ = await school.api(
        "POST", f"/plans/{plan_id}/participants", "prof", {"participant": police.node_id}
    )
    assert status == 403
    status, view = await school.api(
        "POST", f"/plans/{plan_id}/participants", "lead", {"participant": police.node_id}
    )
    assert status == 201, view
    assert view["invited"] == {"node_id": police.node_id, "outcome": "ok"}
    statuses = {p["node_id"]: p["status"] for p in view["participants"]}
    assert statuses[police.node_id] == "pending"
    waiting = await police.api("GET", "/invitations", "prof")
    assert [i["plan_id"] for i in waiting[1]] == [plan_id]
    status, problem = await school.api(
        "POST", f"/plans/{plan_id}/participants", "lead", {"participant": police.node_id}
    )
    assert status == 422 and problem["errors"] == {"participant": "already invited"}, problem


async def test_the_plan_list_shows_active_closed_or_all_plans(four: list[RunningNode]) -> None:
    """GET /api/v1/plans: the active plans by default, ``?status=closed`` the closed ones,
    ``all`` both; any other status is a 422 problem naming the field."""
    school, social, _bup, _police = four
    child = await add_child(school)
    await add_child(social)
    open_plan = await create_linked_plan(school, child, [social])
    closed_plan = await create_linked_plan(school, child, [social])
    await plan_close.close_plan(school.node, await lead_user(school), closed_plan)

    async def listed(query: str) -> list[str]:
        status, views = await school.api("GET", f"/plans{query}", "prof")
        assert status == 200, views
        return [v["plan_id"] for v in views]

    assert await listed("") == [open_plan]
    assert await listed("?status=active") == [open_plan]
    assert await listed("?status=closed") == [closed_plan]
    assert sorted(await listed("?status=all")) == sorted([open_plan, closed_plan])
    status, problem = await school.api("GET", "/plans?status=pending", "prof")
    assert status == 422 and "status" in problem["errors"], problem
