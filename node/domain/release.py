"""The release decision: what a holder may release to a requester, from the consent it holds.

Pure (DESIGN.md invariant 2): inputs are the facts the holder knows now, the output lists exactly
what to release and, for everything else, why not. Default deny — a category is released only
when every check passes. The order of checks is SPEC.md §11's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from protocol.errors import Reason
from protocol.models import ConsentStatement

from .records import FragmentRecord, PlanFacts


@dataclass(frozen=True)
class ReleaseRequest:
    holder: str
    requester: str
    plan_id: str
    consent_id: str
    categories: tuple[str, ...]
    purpose: str


@dataclass(frozen=True)
class ConsentFacts:
    """What the holder knows of the named consent: the statement (if any), revocation, and
    whether a later statement of the same plan by its lead replaced it (SPEC.md §7.3)."""

    statement: ConsentStatement | None
    revoked: bool
    replaced: bool = False


@dataclass(frozen=True)
class Decision:
    released: tuple[FragmentRecord, ...]
    withheld: tuple[tuple[str, Reason], ...]

    @property
    def released_categories(self) -> list[str]:
        return sorted({f.category for f in self.released})


def _consent_problem(
    request: ReleaseRequest, plan: PlanFacts | None, consent: ConsentFacts, now: datetime
) -> Reason | None:
    if plan is None:
        return Reason.PLAN_UNKNOWN
    if request.requester not in plan.participants:
        return Reason.NOT_PARTICIPANT
    if consent.revoked:
        return Reason.CONSENT_REVOKED
    statement = consent.statement
    if statement is None:
        return Reason.CONSENT_UNKNOWN
    if statement.plan_id != request.plan_id:
        return Reason.CONSENT_OTHER_PLAN
    if consent.replaced:
        return Reason.CONSENT_REPLACED
    if now < _time(statement.valid_from):
        return Reason.CONSENT_NOT_YET_VALID
    if now >= _time(statement.valid_until):
        return Reason.CONSENT_EXPIRED
    if statement.purpose.value != request.purpose:
        return Reason.PURPOSE_NOT_GRANTED
    given = {c.ref for c in statement.given_by}
    if any(c.ref not in given for c in statement.required):
        return Reason.CONSENTER_MISSING
    return None


def _time(text: str) -> datetime:
    from protocol.clock import parse_time

    return parse_time(text)


def decide_release(
    request: ReleaseRequest,
    plan: PlanFacts | None,
    consent: ConsentFacts,
    fragments: Mapping[str, Sequence[FragmentRecord]],
    now: datetime,
) -> Decision:
    """Decide a ``fragments.request``; ``fragments`` maps category → holder's latest fragments."""
    categories = tuple(dict.fromkeys(request.categories))
    problem = _consent_problem(request, plan, consent, now)
    if problem is not None:
        return Decision((), tuple((c, problem) for c in categories))
    assert consent.statement is not None
    to_requester = [
        g
        for g in consent.statement.grants
        if g.from_ == request.holder and request.requester in g.to
    ]
    granted = {c.value for g in to_requester for c in g.categories}
    released: list[FragmentRecord] = []
    withheld: list[tuple[str, Reason]] = []
    for category in categories:
        if not to_requester:
            withheld.append((category, Reason.REQUESTER_NOT_GRANTED))
        elif category not in granted:
            withheld.append((category, Reason.CATEGORY_NOT_GRANTED))
        elif not fragments.get(category):
            withheld.append((category, Reason.NO_FRAGMENTS))
        else:
            released.extend(fragments[category])
    return Decision(tuple(released), tuple(withheld))
