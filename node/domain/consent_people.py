"""The people whose consent a plan needs, and whether a consent is complete. Pure.

The lead records each person by name (names stay at the lead node, DESIGN.md invariant 10) with
their answer, when and how. The wire carries only plan-local references (``p1``, ``p2``, …) and
roles (SPEC.md §6.2): ``required`` is every person whose consent is needed, ``given_by`` those
who answered "consents". A consent whose required people have not all consented is incomplete:
holders withhold under it (``consenter_missing``, SPEC.md §11), so every page says so, by name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROLES = ("guardian", "child", "young_person")
ANSWERS = ("consents", "declines", "not_asked", "unreachable")
# e_id: the person answered themselves, signed in with e-identification (the family's pages)
METHODS = ("signed_form", "e_form", "e_id", "meeting")


@dataclass(frozen=True)
class Person:
    """One person as the lead recorded them (the web form's row, the store's row)."""

    ref: str
    name: str
    role: str
    required: bool
    answer: str
    answered_on: str | None = None
    method: str | None = None
    form_ref: str | None = None
    age: int | None = None
    maturity: str | None = None
    view: str | None = None
    # the keyed hash of their personal identity number, when the lead recorded it: how they
    # find the plan when they sign in with e-identification (the number itself is never kept)
    identity_hash: str | None = None


def next_refs(taken: Iterable[str], count: int) -> list[str]:
    """``count`` fresh plan-local references ``p<n>``, after every ``p<n>`` in ``taken``: a
    reference is never reused for another person within the plan."""
    highest = 0
    for ref in taken:
        if ref.startswith("p") and ref[1:].isdigit():
            highest = max(highest, int(ref[1:]))
    return [f"p{highest + i}" for i in range(1, count + 1)]


def consenters(people: Sequence[Person]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(``required``, ``given_by``) of the statement: only references and roles, never names.

    A person who consents is in ``given_by`` whether or not their consent is required."""
    required = [{"ref": p.ref, "role": p.role} for p in people if p.required]
    given = [{"ref": p.ref, "role": p.role} for p in people if p.answer == "consents"]
    return required, given


def missing_refs(statement: Mapping[str, Any]) -> list[str]:
    """The references of the statement's required people who have not consented (the release
    rule's step that withholds ``consenter_missing``), in the statement's order."""
    given = {c["ref"] for c in statement.get("given_by", [])}
    return [c["ref"] for c in statement.get("required", []) if c["ref"] not in given]


def waiting_for(statement: Mapping[str, Any], names: Mapping[str, str]) -> list[str]:
    """Who the statement still waits for: each missing person's name where this node knows it
    (the lead), else their reference."""
    return [names.get(ref, ref) for ref in missing_refs(statement)]


def still_waiting(people: Sequence[Person]) -> list[Person]:
    """The required people who have not (yet) answered "consents"."""
    return [p for p in people if p.required and p.answer != "consents"]
