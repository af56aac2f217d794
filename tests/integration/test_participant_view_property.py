"""Property: a participant's view is exactly what the holders' consent grants that participant.

Three real nodes on loopback (IFO leads; the school and BUP take part), started once; each
example is a new plan with generated fragments at the lead and at BUP and a generated consent.
A professional at the school assembles. For each holder, the released categories are the
categories the consent grants from that holder to the school that it holds fragments in; every
other category the school asked for is withheld as ``no_fragments``; every category the consent
lets the holder release to someone else but not to the school is listed as not granted, with
the reason the holder would give; a holder that grants the school nothing is not asked. Few
examples (each builds a plan over HTTP), so it is marked slow.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.clock import ManualClock
from protocol.codes import Category
from tests.conftest import T0
from tests.support.federation import (
    BUP,
    SCHOOL,
    SOCIAL,
    RunningNode,
    sqlite_stores,
    start_federation,
    stop_all,
)
from tests.support.plans import (
    add_child,
    add_fragment,
    consent_body,
    create_linked_plan,
    rich_fragment,
)

CATEGORIES = [c.value for c in Category]
subsets = st.sets(st.sampled_from(CATEGORIES))


@st.composite
def holder_cases(draw: st.DrawFn) -> dict[str, Any]:
    """What one holder holds, grants the school, and grants only the other participant."""
    return {"held": draw(subsets), "to_school": draw(subsets), "to_other": draw(subsets)}


async def one_example(
    nodes: list[RunningNode],
    children: dict[str, str],
    lead_case: dict[str, Any],
    bup_case: dict[str, Any],
) -> None:
    school, social, bup = nodes
    plan_id = await create_linked_plan(social, children[social.node_id], [school, bup])
    cases = {social.node_id: lead_case, bup.node_id: bup_case}
    other = {social.node_id: bup.node_id, bup.node_id: social.node_id}
    for holder in (social, bup):
        for category in sorted(cases[holder.node_id]["held"]):
            await add_fragment(
                holder, plan_id, rich_fragment(category, f"{holder.node_id}-{category}")
            )
    grants: list[dict[str, Any]] = [
        {"from": school.node_id, "to": [social.node_id], "categories": ["education"]}
    ]
    for holder, case in cases.items():
        if case["to_school"]:
            grants.append(
                {"from": holder, "to": [school.node_id], "categories": sorted(case["to_school"])}
            )
        if case["to_other"]:
            grants.append(
                {"from": holder, "to": [other[holder]], "categories": sorted(case["to_other"])}
            )
    body = consent_body(grants, social.node.clock.now())
    status, consent = await social.api("POST", f"/plans/{plan_id}/consents", "lead", body)
    assert status == 201, consent

    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "prof")
    assert status == 200, shared
    parts = {p["node_id"]: p for p in shared["participants"]}
    released: set[tuple[str, str]] = set()
    granted_any: set[str] = set()
    for holder, case in cases.items():
        part = parts[holder]
        granted = set(case["to_school"])
        granted_any |= granted
        expected = granted & case["held"]
        released |= {(holder, c) for c in expected}
        missing = sorted(set(case["to_other"]) - granted)
        reason = "category_not_granted" if granted else "requester_not_granted"
        assert part.get("not_granted", []) == [{"category": c, "reason": reason} for c in missing]
        if not granted:
            assert (part["status"], part["reason"]) == ("not_requested", "requester_not_granted")
            assert "categories" not in part
            continue
        assert part["requested"] == sorted(granted)
        assert part["categories"] == sorted(expected)
        assert part["status"] == ("included" if expected else "withheld")
        assert sorted((w["category"], w["reason"]) for w in part["withheld"]) == [
            (c, "no_fragments") for c in sorted(granted - case["held"])
        ]
    # every fragment in the view: released by a holder as granted, none other
    assert {(f["origin"], f["category"]) for f in shared["fragments"]} == released
    assert shared["not_granted"] == [c for c in CATEGORIES if c not in granted_any]
    # what the page explains is exactly what was withheld or not granted
    explained = {
        (n["node_id"], n["reason"], c) for n in shared["not_shown"] for c in n["categories"]
    }
    expected_explained = set()
    for holder, case in cases.items():
        granted = set(case["to_school"])
        reason = "category_not_granted" if granted else "requester_not_granted"
        expected_explained |= {(holder, reason, c) for c in set(case["to_other"]) - granted}
        expected_explained |= {(holder, "no_fragments", c) for c in granted - case["held"]}
    assert explained == expected_explained


@pytest.mark.slow
def test_a_participants_view_is_exactly_what_the_holders_consent_grants_it(tmp_path: Path) -> None:
    loop = asyncio.new_event_loop()
    clock = ManualClock(T0)
    nodes = loop.run_until_complete(
        start_federation(tmp_path, [SCHOOL, SOCIAL, BUP], sqlite_stores(tmp_path), clock)
    )
    try:
        children = {n.node_id: loop.run_until_complete(add_child(n)) for n in nodes}

        @settings(
            max_examples=12,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        )
        @given(holder_cases(), holder_cases())
        def check(lead_case: dict[str, Any], bup_case: dict[str, Any]) -> None:
            clock.advance(1)
            loop.run_until_complete(one_example(nodes, children, lead_case, bup_case))

        check()
    finally:
        loop.run_until_complete(stop_all(nodes))
        loop.close()
