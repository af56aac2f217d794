"""The pure rules of consent as people: generated references, the statement's consenters,
who a consent waits for; and the release rule's place for ``consent_replaced``."""

from __future__ import annotations

from datetime import UTC, datetime

from node.domain.consent_people import Person, consenters, next_refs, still_waiting, waiting_for
from node.domain.records import PlanFacts
from node.domain.release import ConsentFacts, ReleaseRequest, decide_release
from protocol.errors import Reason
from protocol.models import ConsentStatement

ANNA = Person("p1", "Anna Testsson", "guardian", True, "consents", "2026-11-20", "e_form")
BERTIL = Person("p2", "Bertil Testsson", "guardian", True, "declines", "2026-11-20", "meeting")
KIM = Person("p3", "Kim Testsson", "child", False, "consents", age=12, view="Ja")


def test_references_are_fresh_and_never_reused_within_a_plan() -> None:
    assert next_refs([], 2) == ["p1", "p2"]
    assert next_refs(["p1", "p4", "vh1"], 2) == ["p5", "p6"]


def test_the_statement_carries_references_and_roles_never_names() -> None:
    required, given = consenters([ANNA, BERTIL, KIM])
    assert required == [{"ref": "p1", "role": "guardian"}, {"ref": "p2", "role": "guardian"}]
    assert given == [{"ref": "p1", "role": "guardian"}, {"ref": "p3", "role": "child"}]
    assert "Testsson" not in repr((required, given))


def test_a_consent_waits_for_each_required_person_who_has_not_consented_by_name() -> None:
    required, given = consenters([ANNA, BERTIL, KIM])
    statement = {"required": required, "given_by": given}
    assert waiting_for(statement, {"p1": ANNA.name, "p2": BERTIL.name}) == ["Bertil Testsson"]
    assert waiting_for(statement, {}) == ["p2"]  # at a participant: references only
    assert still_waiting([ANNA, BERTIL, KIM]) == [BERTIL]


PLAN = "11111111-1111-4111-8111-111111111111"
CONSENT = "33333333-3333-4333-8333-333333333333"
HOLDER, REQUESTER = "ifo.test.se", "skola.test.se"


def statement(given: list[str]) -> ConsentStatement:
    return ConsentStatement.model_validate(
        {
            "v": 1,
            "type": "consent",
            "consent_id": CONSENT,
            "plan_id": PLAN,
            "lead": REQUESTER,
            "purpose": "sip",
            "required": [{"ref": "p1", "role": "guardian"}, {"ref": "p2", "role": "guardian"}],
            "given_by": [{"ref": r, "role": "guardian"} for r in given],
            "grants": [{"from": HOLDER, "to": [REQUESTER], "categories": ["social"]}],
            "valid_from": "2026-11-01T00:00:00Z",
            "valid_until": "2027-11-01T00:00:00Z",
            "evidence_ref": "x",
            "recorded_by": f"{REQUESTER}/u/lead",
            "issued_at": "2026-11-01T00:00:00Z",
            "sig": {"alg": "Ed25519", "key": f"{REQUESTER}#0123456789abcdef", "value": "A" * 86},
        }
    )


def decide(consent: ConsentFacts, now: datetime) -> set[Reason]:
    request = ReleaseRequest(HOLDER, REQUESTER, PLAN, CONSENT, ("social",), "sip")
    plan = PlanFacts(PLAN, REQUESTER, frozenset({HOLDER, REQUESTER}), "linked")
    return {r for _, r in decide_release(request, plan, consent, {}, now).withheld}


def test_a_replaced_consent_is_withheld_consent_replaced_before_its_other_faults() -> None:
    now = datetime(2026, 12, 1, tzinfo=UTC)
    incomplete = statement(["p1"])
    assert decide(ConsentFacts(incomplete, False), now) == {Reason.CONSENTER_MISSING}
    assert decide(ConsentFacts(incomplete, False, replaced=True), now) == {Reason.CONSENT_REPLACED}
    expired = datetime(2028, 1, 1, tzinfo=UTC)
    assert decide(ConsentFacts(incomplete, False, replaced=True), expired) == {
        Reason.CONSENT_REPLACED
    }
    # revocation comes first (§11 step 4)
    assert decide(ConsentFacts(incomplete, True, replaced=True), now) == {Reason.CONSENT_REVOKED}
