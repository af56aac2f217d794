"""Where a plan stands in its life, from the facts a node holds: pure, no I/O.

One function decides the status every page shows (DESIGN.md §3: created, linked, consent
incomplete, in force, revoked, closed — each visible to everyone taking part), so the plan list,
the plan page and its next step cannot disagree. The order of the checks is the order of a
plan's life read backwards: a closed plan is closed whatever its consent says; then the newest
consent decides; without one, the plan waits for the agencies to link, then for consent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PlanStatus(StrEnum):
    """A plan's status as pages show it (labels in the page catalogs)."""

    CLOSED = "closed"
    DECLINED = "declined"  # this agency declined the invitation
    WAITING_FOR_LINKS = "waiting_for_links"
    WAITING_FOR_CONSENT = "waiting_for_consent"
    CONSENT_INCOMPLETE = "consent_incomplete"
    CONSENT_REVOKED = "consent_revoked"
    CONSENT_EXPIRED = "consent_expired"
    IN_FORCE = "in_force"


# participant states in which the lead still waits for the invited agency's answer (§7.2)
AWAITING_ANSWER = frozenset({"invited", "pending"})


@dataclass(frozen=True)
class ConsentState:
    """One consent statement of the plan as this node holds it."""

    issued_at: datetime
    valid_until: datetime
    required: frozenset[str]  # consenter refs
    given_by: frozenset[str]
    revoked: bool
    replaced: bool = False  # by a later statement of the lead (SPEC §7.3): never the current one


@dataclass(frozen=True)
class PlanStatusFacts:
    """``role``: lead | participant; ``status``: the plan row's (active, pending, declined,
    closed); ``participants``: node id → participant state as this node knows it."""

    role: str
    status: str
    participants: Mapping[str, str]
    consents: Sequence[ConsentState]


def plan_status(facts: PlanStatusFacts, now: datetime) -> PlanStatus:
    """The one status of a plan (see the module docstring for the order)."""
    if facts.status == "closed":
        return PlanStatus.CLOSED
    if facts.status == "declined":
        return PlanStatus.DECLINED
    if facts.status == "pending":  # an invitation a professional here has not answered yet
        return PlanStatus.WAITING_FOR_LINKS
    current = [c for c in facts.consents if not c.replaced] or list(facts.consents)
    if current:
        newest = max(current, key=lambda c: c.issued_at)
        if newest.revoked:
            return PlanStatus.CONSENT_REVOKED
        if now >= newest.valid_until:
            return PlanStatus.CONSENT_EXPIRED
        if not newest.required <= newest.given_by:
            return PlanStatus.CONSENT_INCOMPLETE
        return PlanStatus.IN_FORCE
    if facts.role == "lead" and any(s in AWAITING_ANSWER for s in facts.participants.values()):
        return PlanStatus.WAITING_FOR_LINKS
    return PlanStatus.WAITING_FOR_CONSENT
