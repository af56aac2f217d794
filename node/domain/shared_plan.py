"""Merging verified fragments into the shared plan: pure, no I/O.

The shared plan is built for one request and never stored (DESIGN.md invariant 1). Every item
carries its provenance (origin node, fragment, key id, signature verified) so a reader can tell
who said what.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.codes import Indicator
from protocol.models import Fragment

from .shared_plan_shape import (
    Action,
    Event,
    IndicatorContent,
    Merged,
    Provenance,
    Text,
    View,
    Views,
)

UNASSIGNED = "unassigned"


@dataclass(frozen=True)
class VerifiedFragment:
    fragment: Fragment
    key_id: str


def _provenance(item: VerifiedFragment) -> Provenance:
    f = item.fragment
    return {
        "origin": f.origin,
        "fragment_id": f.fragment_id,
        "version": f.version,
        "category": f.category.value,
        "key_id": item.key_id,
        "signature_verified": True,
    }


def merge_fragments(items: list[VerifiedFragment]) -> Merged:
    """Arrange fragments by SHANARRI indicator, with views, actions, review date, chronology."""
    by_indicator: dict[str, IndicatorContent] = {
        i.value: {"needs": [], "goals": [], "actions": []} for i in Indicator
    }
    by_indicator[UNASSIGNED] = {"needs": [], "goals": [], "actions": []}
    views: Views = {"child": [], "family": []}
    summaries: list[Text] = []
    actions: list[Action] = []
    chronology: list[Event] = []
    reviews: list[tuple[str, Provenance]] = []
    for item in sorted(items, key=lambda v: (v.fragment.origin, v.fragment.fragment_id)):
        f, prov = item.fragment, _provenance(item)
        fallback = f.indicators[0].value if f.indicators else UNASSIGNED
        content = f.content
        if content.summary:
            summaries.append({"text": content.summary, "provenance": prov})
        for need in content.needs:
            slot = need.indicator.value if need.indicator else fallback
            by_indicator[slot]["needs"].append({"what": need.what, "provenance": prov})
        for goal in content.goals:
            slot = goal.indicator.value if goal.indicator else fallback
            by_indicator[slot]["goals"].append(
                {
                    "what": goal.what,
                    "by": goal.by.isoformat() if goal.by else None,
                    "provenance": prov,
                }
            )
        for action in content.actions:
            slot = action.indicator.value if action.indicator else fallback
            entry: Action = {
                "what": action.what,
                "who": action.who,
                "start": action.start.isoformat() if action.start else None,
                "end": action.end.isoformat() if action.end else None,
                "status": action.status.value,
                "indicator": slot,
                "provenance": prov,
            }
            by_indicator[slot]["actions"].append(entry)
            actions.append(entry)
        for text, kept in (
            (content.child_view, views["child"]),
            (content.family_view, views["family"]),
        ):
            if text:
                view: View = {"text": text, "provenance": prov}
                if content.written_by is not None:  # the family's own words (SPEC §6.1)
                    who = content.written_by
                    view["written_by"] = {"ref": who.ref, "role": who.role}
                kept.append(view)
        for event in content.events:
            chronology.append({"on": event.on.isoformat(), "what": event.what, "provenance": prov})
        if content.next_review:
            reviews.append((content.next_review.isoformat(), prov))
    actions.sort(key=lambda a: (a["start"] or "9999", a["what"]))
    chronology.sort(key=lambda e: str(e["on"]))
    next_review = min(reviews, key=lambda r: r[0]) if reviews else None
    return {
        "summaries": summaries,
        "indicators": {k: v for k, v in by_indicator.items() if any(v.values())},
        "actions": actions,
        "views": views,
        "chronology": chronology,
        "next_review": (
            {"date": next_review[0], "provenance": next_review[1]} if next_review else None
        ),
        "fragments": [_provenance(i) for i in items],
    }
