"""The plan status (node/domain/plan_status.py) and who may close a plan
(node/domain/closing.py): pure functions over the facts a node holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from node.domain.closing import close_problem
from node.domain.plan_status import ConsentState, PlanStatus, PlanStatusFacts, plan_status
from node.domain.records import PlanFacts
from node.domain.release import ConsentFacts, ReleaseRequest, decide_release
from protocol.errors import Reason

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
LEAD, A, B = "lead.test.se", "a.test.se", "b.test.se"


def consent(
    *,
    given: tuple[str, ...] = ("vh1", "vh2"),
    revoked: bool = False,
    days_left: int = 30,
    issued: int = 0,
) -> ConsentState:
    return ConsentState(
        issued_at=NOW - timedelta(days=10 - issued),
        valid_until=NOW + timedelta(days=days_left),
        required=frozenset({"vh1", "vh2"}),
        given_by=frozenset(given),
        revoked=revoked,
    )


def facts(
    status: str = "active",
    role: str = "lead",
    members: dict[str, str] | None = None,
    consents: tuple[ConsentState, ...] = (),
) -> PlanStatusFacts:
    return PlanStatusFacts(
        role, status, members or {LEAD: "lead", A: "linked", B: "linked"}, consents
    )


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (facts(members={LEAD: "lead", A: "invited", B: "linked"}), "waiting_for_links"),
        (facts(members={LEAD: "lead", A: "pending"}), "waiting_for_links"),
        (facts(), "waiting_for_consent"),
        (facts(members={LEAD: "lead", A: "linked", B: "declined"}), "waiting_for_consent"),
        (facts(consents=(consent(given=("vh1",)),)), "consent_incomplete"),
        (facts(consents=(consent(),)), "in_force"),
        (facts(consents=(consent(revoked=True),)), "consent_revoked"),
        (facts(consents=(consent(days_left=0),)), "consent_expired"),
        # the newest consent decides: a new, complete one after a revoked one is in force
        (facts(consents=(consent(revoked=True), consent(issued=1))), "in_force"),
        (facts(consents=(consent(), consent(issued=1, given=()))), "consent_incomplete"),
        # closed whatever its consent says
        (facts(status="closed", consents=(consent(),)), "closed"),
        (facts(status="closed"), "closed"),
        # at an invited node
        (facts(status="pending", role="participant"), "waiting_for_links"),
        (facts(status="declined", role="participant"), "declined"),
        (facts(role="participant", members={LEAD: "lead", A: "invited"}), "waiting_for_consent"),
        (facts(role="participant", consents=(consent(),)), "in_force"),
    ],
)
def test_plan_status_from_the_facts(given: PlanStatusFacts, expected: str) -> None:
    assert plan_status(given, NOW) == PlanStatus(expected)


def plan(status: str = "active") -> PlanFacts:
    return PlanFacts("p", LEAD, frozenset({LEAD, A, B}), status)


def test_only_the_lead_closes_and_only_the_lead_passes_a_closure_on() -> None:
    assert close_problem(LEAD, LEAD, plan()) is None
    assert close_problem(LEAD, LEAD, plan("closed")) is None  # idempotent
    assert close_problem(A, A, plan()) == Reason.NOT_PARTICIPANT
    assert close_problem(LEAD, A, plan()) == Reason.NOT_PARTICIPANT  # relayed by a participant
    assert close_problem("x.test.se", "x.test.se", plan()) == Reason.NOT_PARTICIPANT
    assert close_problem(LEAD, LEAD, None) == Reason.PLAN_UNKNOWN


def test_a_closed_plan_withholds_every_category_after_the_participant_check() -> None:
    request = ReleaseRequest(A, LEAD, "p", "c", ("social", "health"), "sip")
    nothing = ConsentFacts(None, False)
    decision = decide_release(request, plan("closed"), nothing, {}, NOW)
    assert decision.withheld == (("social", Reason.PLAN_CLOSED), ("health", Reason.PLAN_CLOSED))
    stranger = ReleaseRequest(A, "x.test.se", "p", "c", ("social",), "sip")
    decision = decide_release(stranger, plan("closed"), nothing, {}, NOW)
    assert decision.withheld == (("social", Reason.NOT_PARTICIPANT),)


def test_a_consent_completed_by_a_replacing_statement_is_in_force_issued_the_same_second() -> None:
    incomplete = ConsentState(
        issued_at=NOW, valid_until=NOW + timedelta(days=30), required=frozenset({"vh1", "vh2"}),
        given_by=frozenset({"vh1"}), revoked=False, replaced=True,
    )  # fmt: skip
    completed = ConsentState(
        issued_at=NOW, valid_until=NOW + timedelta(days=30), required=frozenset({"vh1", "vh2"}),
        given_by=frozenset({"vh1", "vh2"}), revoked=False,
    )  # fmt: skip
    for order in ((incomplete, completed), (completed, incomplete)):
        assert plan_status(facts(consents=order), NOW) is PlanStatus.IN_FORCE
