"""Property: ``decide_release`` releases exactly what the consent allows, and explains the rest.

The oracle below is written from the rule in DESIGN.md §6.2, not from the code: a holder releases
its own fragments of the requested categories that some grant *from the holder to the requester*
covers — and only while the plan is known here with the requester as a participant, and the
consent is known, not revoked, for this plan, inside its validity window, for this purpose and
given by everyone required. Otherwise nothing. Every requested category not released is withheld
once, with a reason that is true of the facts.

Facts are generated so that each check fails only now and then (about one in eight), which makes
fully valid consents common enough to exercise the per-grant logic; the oracle never looks at
how a fact was generated, only at the fact.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from node.domain.records import FragmentRecord, PlanFacts
from node.domain.release import ConsentFacts, Decision, ReleaseRequest, decide_release
from protocol.clock import format_time, parse_time
from protocol.codes import Category, Purpose
from protocol.errors import Reason
from protocol.models import ConsentStatement

NODES = ["skola.test.se", "ifo.test.se", "bup.test.se", "polis.test.se"]
CATEGORIES = [c.value for c in Category]
PURPOSES = [p.value for p in Purpose]
PLAN_A = "11111111-1111-4111-8111-111111111111"
PLAN_B = "22222222-2222-4222-8222-222222222222"
CONSENT_ID = "33333333-3333-4333-8333-333333333333"
ROLES = {"vh1": "guardian", "vh2": "guardian", "barn": "child", "ung": "young_person"}
T = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)

CONSENT_REASONS = {
    Reason.PLAN_UNKNOWN,
    Reason.NOT_PARTICIPANT,
    Reason.CONSENT_REVOKED,
    Reason.CONSENT_UNKNOWN,
    Reason.CONSENT_OTHER_PLAN,
    Reason.CONSENT_NOT_YET_VALID,
    Reason.CONSENT_EXPIRED,
    Reason.PURPOSE_NOT_GRANTED,
    Reason.CONSENTER_MISSING,
}
CATEGORY_REASONS = {Reason.REQUESTER_NOT_GRANTED, Reason.CATEGORY_NOT_GRANTED, Reason.NO_FRAGMENTS}


@dataclass(frozen=True)
class Case:
    """Everything the holder knows at decision time, in plain generated form."""

    holder: str
    requester: str
    plan_id: str
    purpose: str
    categories: tuple[str, ...]
    plan: PlanFacts | None
    statement: dict[str, Any] | None  # the raw statement, as the oracle reads it
    revoked: bool
    fragments: dict[str, list[FragmentRecord]]
    now: datetime


# Strategies are built once here: building them inside every draw costs more than the draws.
RARELY = st.integers(0, 7).map(lambda n: n == 0)  # True about one time in eight
NODE = st.sampled_from(NODES)
NODE_LIST = st.lists(NODE, max_size=4, unique=True)
CATEGORY_LIST = st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=4)
GRANT = st.fixed_dictionaries(
    {
        "from": NODE,
        "to": st.lists(NODE, min_size=1, max_size=4, unique=True),
        "categories": CATEGORY_LIST,
    }
)
GRANT_LIST = st.lists(GRANT, max_size=3)
REFS = sorted(ROLES)
REF_LIST = st.lists(st.sampled_from(REFS), min_size=1, max_size=3, unique=True)
SUBSET_MASK = st.lists(st.booleans(), min_size=len(REFS), max_size=len(REFS))
DAY = 86400
COUNTS = st.lists(st.integers(-1, 2), min_size=len(CATEGORIES), max_size=len(CATEGORIES))
REQUESTED = st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=len(CATEGORIES) + 2)


def _span(low: int, high: int) -> st.SearchStrategy[timedelta]:
    """A span in whole seconds, often a round number of hours (so boundaries coincide)."""
    return st.one_of(
        st.integers(low // 3600, high // 3600).map(lambda h: timedelta(hours=h)),
        st.integers(low, high).map(lambda s: timedelta(seconds=s)),
    )


AT_LEAST_0 = _span(0, 400 * DAY)
AT_LEAST_1 = _span(1, 400 * DAY)
ANY_LENGTH = _span(-3 * DAY, 400 * DAY)
NOW_OFFSET = _span(-30 * DAY, 30 * DAY)


def grants(draw: st.DrawFn, holder: str, requester: str) -> list[dict[str, Any]]:
    result = draw(GRANT_LIST)
    if not result or draw(st.integers(0, 3)) > 0:  # usually one grant from holder to requester
        others = draw(NODE_LIST)
        result.insert(
            draw(st.integers(0, len(result))),
            {
                "from": holder,
                "to": list(dict.fromkeys([requester, *others])),
                "categories": draw(CATEGORY_LIST),
            },
        )
    return result


def window(draw: st.DrawFn, now: datetime, inside: bool) -> tuple[datetime, datetime]:
    """(valid_from, valid_until) with ``now`` inside [from, until) or, if not ``inside``,
    outside it — before from, or at/after until. Outside windows may even be inverted."""
    if inside:
        return now - draw(AT_LEAST_0), now + draw(AT_LEAST_1)
    if draw(st.booleans()):
        start = now + draw(AT_LEAST_1)
        return start, start + draw(ANY_LENGTH)
    until = now - draw(AT_LEAST_0)
    return until - draw(ANY_LENGTH), until


def consenters(draw: st.DrawFn, all_given: bool) -> tuple[list[str], list[str]]:
    """Required refs and the refs that gave consent (all required, or at least one missing)."""
    required = draw(REF_LIST)
    mask = draw(SUBSET_MASK)
    given_refs = [r for r, keep in zip(REFS, mask, strict=True) if keep or r in required]
    if not all_given:
        missing = required[draw(st.integers(0, len(required) - 1))]
        given_refs = [r for r in given_refs if r != missing]
    if draw(st.booleans()):
        given_refs.reverse()
    return required, given_refs


def fragment_record(category: str, plan_id: str, n: int) -> FragmentRecord:
    return FragmentRecord(
        fragment_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{category}/{n}")),
        plan_id=plan_id,
        version=1 + n,
        category=category,
        indicators=("safe",),
        content={"summary": f"{category} {n}"},
        authored_at=T,
    )


@st.composite
def cases(draw: st.DrawFn) -> Case:
    index = draw(st.integers(0, len(NODES) - 1))
    holder = NODES[index]
    requester = NODES[(index + draw(st.integers(1, len(NODES) - 1))) % len(NODES)]
    plan_id = draw(st.sampled_from([PLAN_A, PLAN_B]))
    purpose = draw(st.sampled_from(PURPOSES))
    now = T + draw(NOW_OFFSET)

    plan: PlanFacts | None = None
    if not draw(RARELY):
        members = {holder, *draw(NODE_LIST)}
        if draw(RARELY):
            members.discard(requester)
        else:
            members.add(requester)
        plan = PlanFacts(plan_id, draw(NODE), frozenset(members), "active")

    statement: dict[str, Any] | None = None
    if not draw(RARELY):
        start, until = window(draw, now, inside=not draw(RARELY))
        required, given_refs = consenters(draw, all_given=not draw(RARELY))
        other_plan = PLAN_B if plan_id == PLAN_A else PLAN_A
        statement = {
            "v": 1,
            "type": "consent",
            "consent_id": CONSENT_ID,
            "plan_id": other_plan if draw(RARELY) else plan_id,
            "lead": draw(NODE),
            "purpose": draw(st.sampled_from(PURPOSES)) if draw(RARELY) else purpose,
            "required": [{"ref": r, "role": ROLES[r]} for r in required],
            "given_by": [{"ref": r, "role": ROLES[r]} for r in given_refs],
            "grants": grants(draw, holder, requester),
            "valid_from": format_time(start),
            "valid_until": format_time(until),
            "evidence_ref": "Samtyckesblankett",
            "recorded_by": "skola.test.se/u/lead",
            "issued_at": format_time(T),
            "sig": {"alg": "Ed25519", "key": "skola.test.se#0123456789abcdef", "value": "A" * 86},
        }

    fragments: dict[str, list[FragmentRecord]] = {}
    for category, count in zip(CATEGORIES, draw(COUNTS), strict=True):
        if count >= 0:  # -1: the category is absent from the mapping
            fragments[category] = [fragment_record(category, plan_id, n) for n in range(count)]

    return Case(
        holder=holder,
        requester=requester,
        plan_id=plan_id,
        purpose=purpose,
        categories=tuple(draw(REQUESTED)),
        plan=plan,
        statement=statement,
        revoked=draw(RARELY),
        fragments=fragments,
        now=now,
    )


# --- the oracle -------------------------------------------------------------------------------


def consent_holds(case: Case) -> bool:
    """The consent-level conditions, straight from the rule (DESIGN.md §6.2)."""
    s = case.statement
    if case.plan is None or case.requester not in case.plan.participants:
        return False
    if case.revoked or s is None or s["plan_id"] != case.plan_id:
        return False
    if not parse_time(s["valid_from"]) <= case.now < parse_time(s["valid_until"]):
        return False
    if s["purpose"] != case.purpose:
        return False
    given_refs = {c["ref"] for c in s["given_by"]}
    return all(c["ref"] in given_refs for c in s["required"])


def granted_to_requester(case: Case) -> set[str] | None:
    """Categories some grant from the holder to the requester covers; None if no such grant."""
    assert case.statement is not None
    grants_ = [
        g
        for g in case.statement["grants"]
        if g["from"] == case.holder and case.requester in g["to"]
    ]
    return {c for g in grants_ for c in g["categories"]} if grants_ else None


def expected_release(case: Case) -> list[str]:
    if not consent_holds(case):
        return []
    granted = granted_to_requester(case) or set()
    wanted = set(case.categories) & granted
    return sorted(f.fragment_id for c in wanted for f in case.fragments.get(c, []))


def reason_is_true(case: Case, category: str, reason: Reason) -> bool:
    """Does ``reason`` actually describe the facts (whatever order the checks run in)?"""
    s = case.statement
    plan = case.plan
    consent_level = {
        Reason.PLAN_UNKNOWN: lambda: plan is None,
        Reason.NOT_PARTICIPANT: lambda: (
            plan is not None and case.requester not in plan.participants
        ),
        Reason.CONSENT_REVOKED: lambda: case.revoked,
        Reason.CONSENT_UNKNOWN: lambda: s is None,
        Reason.CONSENT_OTHER_PLAN: lambda: s is not None and s["plan_id"] != case.plan_id,
        Reason.CONSENT_NOT_YET_VALID: lambda: (
            s is not None and case.now < parse_time(s["valid_from"])
        ),
        Reason.CONSENT_EXPIRED: lambda: s is not None and case.now >= parse_time(s["valid_until"]),
        Reason.PURPOSE_NOT_GRANTED: lambda: s is not None and s["purpose"] != case.purpose,
        Reason.CONSENTER_MISSING: lambda: (
            s is not None
            and not {c["ref"] for c in s["required"]} <= {c["ref"] for c in s["given_by"]}
        ),
    }
    if reason in consent_level:
        return consent_level[reason]()
    if not consent_holds(case):
        return False  # a per-category reason while the consent itself fails hides the cause
    granted = granted_to_requester(case)
    if reason is Reason.REQUESTER_NOT_GRANTED:
        return granted is None
    if reason is Reason.CATEGORY_NOT_GRANTED:
        return granted is not None and category not in granted
    if reason is Reason.NO_FRAGMENTS:
        return granted is not None and category in granted and not case.fragments.get(category)
    return False


# --- the property -----------------------------------------------------------------------------


def decide(case: Case) -> Decision:
    request = ReleaseRequest(
        holder=case.holder,
        requester=case.requester,
        plan_id=case.plan_id,
        consent_id=CONSENT_ID,
        categories=case.categories,
        purpose=case.purpose,
    )
    statement = (
        ConsentStatement.model_validate(case.statement) if case.statement is not None else None
    )
    fragments: Mapping[str, Sequence[FragmentRecord]] = case.fragments
    return decide_release(
        request, case.plan, ConsentFacts(statement, case.revoked), fragments, case.now
    )


@settings(max_examples=2000 if os.environ.get("HYPOTHESIS_PROFILE") == "ci" else 200, deadline=None)
@given(cases())
def test_release_is_exactly_what_the_consent_allows_and_every_other_category_is_explained(
    case: Case,
) -> None:
    decision = decide(case)
    released_ids = [f.fragment_id for f in decision.released]
    assert sorted(released_ids) == expected_release(case)  # never more, never less
    assert len(set(released_ids)) == len(released_ids)  # nothing twice

    requested = set(case.categories)
    released_categories = {f.category for f in decision.released}
    withheld_categories = [c for c, _ in decision.withheld]
    assert released_categories <= requested
    assert all(f.plan_id == case.plan_id for f in decision.released)
    assert len(withheld_categories) == len(set(withheld_categories))  # each at most once
    assert set(withheld_categories) == requested - released_categories  # ... and at least once
    assert not released_categories & set(withheld_categories)
    for category, reason in decision.withheld:
        assert isinstance(reason, Reason)
        assert reason in CONSENT_REASONS | CATEGORY_REASONS
        assert reason_is_true(case, category, reason), (category, reason)


def test_the_generator_reaches_both_released_and_withheld_outcomes() -> None:
    """Guards the property against a generator that never lets anything through."""
    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, database=None)
    @given(cases())
    def collect(case: Case) -> None:
        decision = decide(case)
        if decision.released:
            seen.add("released")
        if consent_holds(case) and decision.withheld:
            seen.add("withheld_per_category")
        if not consent_holds(case):
            seen.add("consent_fails")

    collect()
    assert seen == {"released", "withheld_per_category", "consent_fails"}
