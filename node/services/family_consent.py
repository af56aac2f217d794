"""The family and the plan's consent, at the lead's node: see it, answer it, withdraw it.

A resident sees the consent of a plan they are on (``family_plan.person_on_plan``; any other
plan reads as not found): who may share what with whom, until when, and who has answered. They
give **their own** answer to a consent the lead proposed, through the one path a lead's
recorded answer takes (``consent_people.record_answer``: a new statement that ``replaces`` the
current one, complete when everyone required has consented), and a person whose consent the
plan needs may **withdraw** it, through the one path every revocation takes
(``revocation.record_revocation``: recorded once, every participant notified until it
acknowledges). On the wire nothing changes: the statement's ``recorded_by`` and the notice's
``professional`` name the plan's lead professional, for whom the lead's node acts (SPEC §6.2,
§7.5); no resident is ever named there.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from ..errors import Conflict, FieldProblem, Forbidden, InvalidInput
from ..store.tables import ConsentPerson, User
from . import consent_people, revocation
from .consent_people import ConsentOverview
from .consents import RecordedConsent
from .family_plan import lead_professional_for, person_on_plan
from .ports import FederationNode
from .revocation import RecordedRevocation

# the answers a resident gives themselves (not_asked and unreachable are the lead's to record)
OWN_ANSWERS = ("consents", "declines")
CHOICES = ", ".join(OWN_ANSWERS)
# how an answer given on the family's own page is recorded: by the person themselves, signed in
# with e-identification, on Min plan
METHOD = "e_id"
FORM_REF = "Min plan"
log = structlog.get_logger("barnplan.family")


@dataclass(frozen=True)
class FamilyConsent:
    """The plan's consent as a person on it sees it: who they are, the consent overview (the
    people, the current statement, its state, who it waits for), whether they may answer now
    and whether they may withdraw it."""

    person: ConsentPerson
    overview: ConsentOverview
    may_answer: bool
    may_withdraw: bool


def _open(overview: ConsentOverview) -> bool:
    return overview["current"] is not None and overview["state"] not in ("revoked", "expired")


async def read_family_consent(node: FederationNode, resident: User, plan_id: str) -> FamilyConsent:
    """The consent of ``plan_id`` for ``resident``, with what they may do about it."""
    person = await person_on_plan(node, resident, plan_id)
    overview = await consent_people.consent_overview(node, plan_id)
    mine = next((p for p in overview["people"] if p.ref == person.ref), None)
    unanswered = mine is not None and mine.answer not in OWN_ANSWERS
    return FamilyConsent(
        person,
        overview,
        may_answer=_open(overview) and unanswered,
        may_withdraw=_open(overview) and person.required,
    )


async def answer_for_family(
    node: FederationNode, resident: User, plan_id: str, answer: str
) -> RecordedConsent:
    """``resident``'s own answer to the plan's proposed consent: a new statement replacing the
    current one, recorded in the name of the plan's lead professional."""
    consent = await read_family_consent(node, resident, plan_id)
    if answer not in OWN_ANSWERS:
        raise InvalidInput(
            "answer yes or no",
            code="family_answer",
            fields={"answer": FieldProblem("one_of", f"one of {CHOICES}", {"choices": CHOICES})},
        )
    if not _open(consent.overview):
        raise Conflict("there is no consent to answer now", code="no_consent_to_answer")
    if not consent.may_answer:
        raise Conflict("you have already answered", code="already_answered")
    acting = await lead_professional_for(node, plan_id)
    today = node.clock.now().date().isoformat()
    result = await consent_people.record_answer(
        node,
        acting,
        plan_id,
        consent.person.ref,
        answer=answer,
        answered_on=today,
        method=METHOD,
        form_ref=FORM_REF,
    )
    log.info("family.consent_answered", plan_id=plan_id, answer=answer)
    return result


async def withdraw_for_family(
    node: FederationNode, resident: User, plan_id: str
) -> RecordedRevocation:
    """``resident`` withdraws the plan's current consent: a revocation like any other,
    recorded in the name of the plan's lead professional and sent to every participant."""
    consent = await read_family_consent(node, resident, plan_id)
    current = consent.overview["current"]
    if current is None or consent.overview["state"] == "revoked":
        raise Conflict("there is no consent to withdraw", code="no_consent_to_withdraw")
    if not consent.person.required:
        raise Forbidden(
            "only a person whose consent the plan needs may withdraw it",
            code="family_withdraw_not_required",
        )
    acting = await lead_professional_for(node, plan_id)
    result = await revocation.record_revocation(node, acting, current["consent_id"])
    log.info("family.consent_withdrawn", plan_id=plan_id, notified=len(result["notified"]))
    return result
