"""Who may close a plan, decided from what this node itself knows: pure, no I/O.

Closing is final, so a node applies a ``plan.close`` (or a catch-up entry) only when its own
record of the plan says the closing node leads it (SPEC.md §7.11, DESIGN.md invariant 9): the
plan id and the closing node the message names are claims.
"""

from __future__ import annotations

from protocol.errors import Reason

from .records import PlanFacts


def close_problem(closed_by: str, via: str, plan: PlanFacts | None) -> Reason | None:
    """Why this node must not apply a closure of ``plan`` by ``closed_by`` that ``via`` told it
    of (None: apply it). ``plan`` is this node's record of the plan (a declined one included),
    None when it does not know it. Only the plan's lead closes it and only it passes a closure
    on."""
    if plan is None:
        return Reason.PLAN_UNKNOWN
    if closed_by != plan.lead_node or via != plan.lead_node:
        return Reason.NOT_PARTICIPANT
    return None
