"""Who may revoke a consent, decided from what this node itself knows: pure, no I/O.

A revocation is final, so a node applies one only when its own records say the revoking node
takes part in the consent's plan (SPEC.md §7.5, §7.6): a notice or a catch-up entry names a
consent, a plan and a revoking node, and every one of those names is a claim. The consent's plan
is the one its stored statement names; a revocation of a consent not seen yet (a tombstone) is
bound to the plan the notice names and never applies to a consent of another plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.errors import Reason

from .records import PlanFacts


@dataclass(frozen=True)
class RevocationClaim:
    """What a peer says: ``revoked_by`` revoked ``consent_id`` of ``plan_id``; ``via`` is the
    peer that says so (the notice's sender, or the peer a catch-up page came from)."""

    consent_id: str
    plan_id: str
    revoked_by: str
    via: str


def revocation_problem(
    claim: RevocationClaim, plan: PlanFacts | None, consent_plan: str | None
) -> Reason | None:
    """Why this node must not apply ``claim`` (None: apply it).

    ``plan`` is this node's record of the plan the claim names (None when it does not know it);
    ``consent_plan`` is the plan of the consent's statement held here (None when it holds none).
    The revoking node must take part in the plan (the lead or a participant that has not
    declined); the peer passing it on must be that node itself or the plan's lead, the two that
    keep a revocation (a participant relays nothing it did not record); and a consent held here
    is revoked only within its own plan.
    """
    if plan is None:
        return Reason.PLAN_UNKNOWN
    if claim.revoked_by not in plan.participants:
        return Reason.NOT_PARTICIPANT
    if claim.via not in (claim.revoked_by, plan.lead_node):
        return Reason.NOT_PARTICIPANT
    if consent_plan is not None and consent_plan != claim.plan_id:
        return Reason.CONSENT_OTHER_PLAN
    return None
