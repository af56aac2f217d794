"""Turning HTML form fields into the services' inputs, and the services' errors back into fields.

Pure functions, no I/O: a form is a mapping of field name to its values. Rows (needs, goals,
actions, events, people) are named ``section-N-field``; blank rows are kept for re-rendering and
left out of what the service gets. A service's error key (``content.actions.0.start``) points
into what the service got; ``FragmentForm.field_id`` maps it back to the form row it came from.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol.codes import Category

from ...errors import FieldProblem

Form = Mapping[str, list[str]]
ROW = re.compile(r"^(needs|goals|actions|events|person)-(\d{1,3})-([a-z_]+)$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MAX_ROWS = 100

ROW_FIELDS: dict[str, tuple[str, ...]] = {
    "needs": ("what", "indicator"),
    "goals": ("what", "by", "indicator"),
    "actions": ("who", "what", "start", "end", "status", "indicator"),
    "events": ("on", "what"),
    "person": (
        "ref",
        "name",
        "role",
        "required",
        "answer",
        "answered_on",
        "method",
        "form_ref",
        "age",
        "maturity",
        "view",
        "personnummer",
    ),
}
BLANK_ROWS = {"needs": 2, "goals": 2, "actions": 3, "events": 1, "person": 3}
# what a row needs to count as filled in (a default status alone is still a blank row)
ROW_CONTENT: dict[str, tuple[str, ...]] = {
    "needs": ("what",),
    "goals": ("what", "by"),
    "actions": ("who", "what", "start", "end"),
    "events": ("on", "what"),
    "person": ("name",),
}


def first(form: Form, name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip() if values[0] is not None else ""


def rows_of(form: Form, section: str) -> list[dict[str, str]]:
    """Every row of ``section`` in the form, in index order (blank ones too)."""
    found: dict[int, dict[str, str]] = {}
    for name, values in form.items():
        match = ROW.match(name)
        if not match or match.group(1) != section or match.group(3) not in ROW_FIELDS[section]:
            continue
        index = int(match.group(2))
        if index < MAX_ROWS:
            found.setdefault(index, {})[match.group(3)] = (values[0] if values else "").strip()
    return [{f: found[i].get(f, "") for f in ROW_FIELDS[section]} for i in sorted(found)]


def is_blank(section: str, row: Mapping[str, str]) -> bool:
    return not any(row.get(f) for f in ROW_CONTENT[section])


def with_blank_rows(
    section: str, rows: list[dict[str, str]], extra: int = 0
) -> list[dict[str, str]]:
    """Rows to show: the filled ones, then enough blank ones to type into."""
    filled = [r for r in rows if not is_blank(section, r)]
    blanks = max(BLANK_ROWS[section] - len(filled), 1) + extra
    return filled + [dict.fromkeys(ROW_FIELDS[section], "") for _ in range(blanks)]


@dataclass
class FragmentForm:
    """The editor's state: what to show in the form and what to send to the service."""

    category: str = ""
    indicators: list[str] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)
    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # per section: index in the service's list -> index of the form row
    sent_rows: dict[str, list[int]] = field(default_factory=dict)

    TEXTS = ("summary", "child_view", "family_view", "next_review", "internal_note")

    @classmethod
    def parse(cls, form: Form, add_row: str | None = None) -> FragmentForm:
        parsed = cls(
            category=first(form, "category"),
            indicators=[v for v in form.get("indicators", []) if v],
            texts={name: first(form, name) for name in cls.TEXTS},
        )
        for section in ("needs", "goals", "actions", "events"):
            rows = rows_of(form, section)
            filled = [r for r in rows if not is_blank(section, r)]
            parsed.rows[section] = with_blank_rows(section, filled, 1 if add_row == section else 0)
            parsed.sent_rows[section] = list(range(len(filled)))
        return parsed

    @classmethod
    def from_fragment(cls, fragment: Mapping[str, Any]) -> FragmentForm:
        """Prefill the editor from a stored fragment (to save a new version of it)."""
        content = fragment.get("content") or {}
        form = cls(
            category=str(fragment.get("category", "")),
            indicators=list(fragment.get("indicators", [])),
            texts={name: str(content.get(name) or "") for name in cls.TEXTS},
        )
        for section in ("needs", "goals", "actions", "events"):
            rows = [
                {f: str(item.get(f) or "") for f in ROW_FIELDS[section]}
                for item in content.get(section, [])
            ]
            form.rows[section] = with_blank_rows(section, rows)
        return form

    @classmethod
    def empty(cls) -> FragmentForm:
        form = cls(texts=dict.fromkeys(cls.TEXTS, ""))
        for section in ("needs", "goals", "actions", "events"):
            form.rows[section] = with_blank_rows(section, [])
        return form

    def content(self) -> dict[str, Any]:
        """The fragment content for ``fragments.author_fragment`` (blank values left out)."""
        content: dict[str, Any] = {}
        for name in ("summary", "child_view", "family_view", "internal_note"):
            if self.texts.get(name):
                content[name] = self.texts[name]
        if self.texts.get("next_review"):
            content["next_review"] = self.texts["next_review"]
        for section in ("needs", "goals", "actions", "events"):
            items = []
            for row in self.rows.get(section, []):
                if is_blank(section, row):
                    continue
                items.append({k: v for k, v in row.items() if v or k in ("what", "who")})
            if items:
                content[section] = items
        return content

    def field_id(self, error_key: str) -> str:
        """The form field a service error key is about (``content.actions.0.start`` …)."""
        parts = error_key.split(".")
        if parts[0] == "content":
            parts = parts[1:]
        if not parts:
            return "summary"
        if parts[0] in self.sent_rows and len(parts) >= 2 and parts[1].isdigit():
            index = int(parts[1])
            rows = self.sent_rows[parts[0]]
            row = rows[index] if index < len(rows) else index
            name = parts[2] if len(parts) > 2 else ROW_FIELDS[parts[0]][0]
            return f"{parts[0]}-{row}-{name}"
        if parts[0] in self.sent_rows:
            return f"{parts[0]}-0-{ROW_FIELDS[parts[0]][0]}"
        return parts[0]


def field_errors(form: FragmentForm, errors: Mapping[str, str]) -> dict[str, str]:
    """The service's field errors (already worded) under the form's own field ids."""
    mapped: dict[str, str] = {}
    for key, message in errors.items():
        mapped.setdefault(form.field_id(key), message)
    return mapped


@dataclass
class ConsentForm:
    """The consent form: the people (by name, each with their answer, when and how), the grant
    grid and validity. References (``p1``, ``p2`` …) are generated by the service, never typed."""

    people: list[dict[str, str]]
    grants: set[tuple[str, str, str]]  # (from, to, category)
    valid_from: str
    valid_until: str
    evidence_ref: str
    purpose: str
    confirmed_incomplete: bool = False
    # after ``service_args``: the "from" agency of each grant sent, and the grid's rows
    grant_sources: list[str] = field(default_factory=list)
    froms: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, form: Form, add_row: bool = False) -> ConsentForm:
        people = rows_of(form, "person")
        people = [p for p in people if not is_blank("person", p)]
        extra = [dict.fromkeys(ROW_FIELDS["person"], "")] * (1 if add_row or not people else 0)
        grants: set[tuple[str, str, str]] = set()
        for value in form.get("grant", []):
            parts = value.split("|")
            if len(parts) == 3 and all(parts):
                grants.add((parts[0], parts[1], parts[2]))
        return cls(
            people=people + [dict(e) for e in extra],
            grants=grants,
            valid_from=first(form, "valid_from"),
            valid_until=first(form, "valid_until"),
            evidence_ref=first(form, "evidence_ref"),
            purpose=first(form, "purpose") or "sip",
            confirmed_incomplete=first(form, "confirm_incomplete") == "yes",
        )

    @classmethod
    def initial(
        cls,
        today: str,
        until: str,
        purpose: str,
        known: list[dict[str, str]] | None = None,
        grants: set[tuple[str, str, str]] | None = None,
    ) -> ConsentForm:
        """Prefilled with the plan's people as recorded (a new consent of the same family), or
        rows for two guardians and the child."""
        blank = dict.fromkeys(ROW_FIELDS["person"], "")
        people = known or [
            {**blank, "role": "guardian", "required": "on"},
            {**blank, "role": "guardian", "required": "on"},
            {**blank, "role": "child"},
        ]
        return cls(people, grants or set(), today, until, "", purpose)

    def waiting_for(self) -> list[str]:
        """The names of the required people who have not consented (as typed)."""
        return [
            p["name"]
            for p in self.people
            if p.get("name") and p.get("required") and p.get("answer") != "consents"
        ]

    def service_args(self, froms: list[str]) -> tuple[dict[str, Any], dict[str, FieldProblem]]:
        """Keyword arguments for ``consent_people.record_consent_people`` and the form's own
        field errors. The service reports people by index (``people.<i>.<field>``) and grants
        by index (mapped back with ``field_id``)."""
        errors: dict[str, FieldProblem] = {}
        people = [
            {**p, "required": bool(p.get("required"))}
            for p in self.people
            if not is_blank("person", p)
        ]
        grouped: dict[tuple[str, str], list[str]] = {}
        for source, target, category in sorted(self.grants):
            if category in {c.value for c in Category}:
                grouped.setdefault((source, target), []).append(category)
        grants = [
            {"from": source, "to": [target], "categories": categories}
            for (source, target), categories in grouped.items()
        ]
        if not grants:
            errors["grants"] = FieldProblem(
                "no_grants", "tick at least one category that may be shared"
            )
        self.grant_sources = [source for source, _ in grouped]
        self.froms = froms
        args = {
            "people": people,
            "grants": grants,
            "purpose": self.purpose,
            "valid_from": rfc3339(self.valid_from, end_of_day=False),
            "valid_until": rfc3339(self.valid_until, end_of_day=True),
            "evidence_ref": self.evidence_ref,
        }
        return args, errors

    def field_id(self, key: str) -> str:
        if key.startswith("grants."):
            index = key.split(".")[1]
            if index.isdigit() and int(index) < len(self.grant_sources):
                source = self.grant_sources[int(index)]
                return f"grants-{self.froms.index(source)}" if source in self.froms else "grants"
            return "grants"
        if key.startswith("people."):
            parts = key.split(".")
            if len(parts) == 3 and parts[1].isdigit():
                return f"person-{parts[1]}-{parts[2]}"
        if key in ("consent", "required", "given_by"):
            return "form"
        return key


def rfc3339(value: str, *, end_of_day: bool) -> str:
    """A date from a date input as an RFC 3339 UTC time; anything else as typed (the service
    then says what is wrong with it)."""
    if DATE.match(value):
        return f"{value}T23:59:59Z" if end_of_day else f"{value}T00:00:00Z"
    return value


def plan_args(form: Form) -> dict[str, Any]:
    return {
        "child_id": first(form, "child_id"),
        "participants": [p for p in form.get("participants", []) if p],
        "purpose": first(form, "purpose") or "sip",
        "reason": first(form, "reason"),
        "responsible_node": first(form, "responsible_node") or None,
    }
