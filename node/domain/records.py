"""Plain value objects the domain decides over, independent of how the store keeps them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class PlanFacts:
    """What a node knows about a plan it takes part in."""

    plan_id: str
    lead_node: str
    participants: frozenset[str]
    status: str


@dataclass(frozen=True)
class FragmentRecord:
    """The latest version of one of this node's own fragments."""

    fragment_id: str
    plan_id: str
    version: int
    category: str
    indicators: tuple[str, ...]
    content: dict[str, Any]
    authored_at: datetime
