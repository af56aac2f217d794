"""Consent as people: the lead records each person whose consent the plan needs by name, with
their answer, when and how; the signed statement carries only references (SPEC.md §6.2).

Completing a consent later is one step: ``record_answer`` records one person's answer and signs
a new statement that ``replaces`` the current one (SPEC.md §7.3), with the same grants and
validity. Names never leave this node.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TypedDict

from protocol.clock import parse_time

from ..domain.consent_people import (
    ANSWERS,
    METHODS,
    ROLES,
    Person,
    consenters,
    next_refs,
    waiting_for,
)
from ..domain.personnummer import PersonnummerError
from ..domain.statement_json import StatementJson
from ..errors import Conflict, FieldProblem, Forbidden, NotFound
from ..oidc.resident import identity_hash
from ..store import consent_people as people_store
from ..store import records
from ..store import revocations as revocation_store
from ..store.tables import ConsentPerson, User
from . import consents
from .consents import RecordedConsent
from .ports import FederationNode
from .provider_sign_in import subject_key

MAX_NAME = 200
MAX_TEXT = 2000
MAX_AGE = 25
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _text(value: object) -> str:
    return str(value).strip() if value is not None else ""


def _answer_fields(
    row: Mapping[str, object], prefix: str, errors: dict[str, FieldProblem]
) -> tuple[str, str | None, str | None, str | None]:
    """(answer, answered_on, method, form_ref) of a row, each checked at its field."""
    answer = _text(row.get("answer")) or "not_asked"
    answered_on = _text(row.get("answered_on")) or None
    method = _text(row.get("method")) or None
    form_ref = _text(row.get("form_ref")) or None
    if answer not in ANSWERS:
        errors[f"{prefix}answer"] = FieldProblem(
            "one_of", f"one of {', '.join(ANSWERS)}", {"choices": ", ".join(ANSWERS)}
        )
    answered = answer in ("consents", "declines")
    if answered_on is not None:
        try:
            if not _DATE.fullmatch(answered_on):
                raise ValueError(answered_on)
            date.fromisoformat(answered_on)
        except ValueError:
            errors[f"{prefix}answered_on"] = FieldProblem("date_parsing", "a date YYYY-MM-DD")
    elif answered:
        errors[f"{prefix}answered_on"] = FieldProblem(
            "answer_date_missing", "when the person answered"
        )
    if method is not None and method not in METHODS:
        errors[f"{prefix}method"] = FieldProblem(
            "one_of", f"one of {', '.join(METHODS)}", {"choices": ", ".join(METHODS)}
        )
    elif method is None and answered:
        errors[f"{prefix}method"] = FieldProblem(
            "answer_method_missing",
            "how the person answered: signed form, e-form, e-identification or meeting",
        )
    if method == "signed_form" and not form_ref:
        errors[f"{prefix}form_ref"] = FieldProblem(
            "form_ref_missing", "the signed form's reference"
        )
    if form_ref is not None and len(form_ref) > MAX_NAME:
        errors[f"{prefix}form_ref"] = FieldProblem(
            "max_length", f"at most {MAX_NAME} characters", {"max_length": MAX_NAME}
        )
    return answer, answered_on, method, form_ref


def parse_people(
    rows: Sequence[Mapping[str, object]],
    taken: list[str],
    errors: dict[str, FieldProblem],
    hash_number: Callable[[str], str] | None = None,
    known_hashes: Mapping[str, str | None] | None = None,
) -> list[Person]:
    """The people of a submitted form or API body, each problem at its field
    (``people.<i>.<field>``). A row keeps its ``ref`` when it names a person already recorded
    for the plan (``taken``); every other row gets a fresh ``p<n>``: references are generated,
    never typed, so no name can reach the wire. A ``personnummer`` given is kept only as
    ``hash_number`` of it; none given keeps what was recorded for that ``ref``."""
    fresh = iter(next_refs(taken, len(rows)))
    known_hashes = known_hashes or {}
    people: list[Person] = []
    for i, row in enumerate(rows):
        prefix = f"people.{i}."
        name = _text(row.get("name"))
        if not name:
            errors[f"{prefix}name"] = FieldProblem("missing", "the person's name")
        elif len(name) > MAX_NAME:
            errors[f"{prefix}name"] = FieldProblem(
                "max_length", f"at most {MAX_NAME} characters", {"max_length": MAX_NAME}
            )
        role = _text(row.get("role")) or "guardian"
        if role not in ROLES:
            errors[f"{prefix}role"] = FieldProblem(
                "one_of", f"one of {', '.join(ROLES)}", {"choices": ", ".join(ROLES)}
            )
        answer, answered_on, method, form_ref = _answer_fields(row, prefix, errors)
        age: int | None = None
        age_text = _text(row.get("age"))
        if age_text:
            if age_text.isdigit() and int(age_text) <= MAX_AGE:
                age = int(age_text)
            else:
                errors[f"{prefix}age"] = FieldProblem(
                    "child_age", f"an age in whole years, 0–{MAX_AGE}", {"max": MAX_AGE}
                )
        elif role != "guardian":
            errors[f"{prefix}age"] = FieldProblem(
                "child_age_missing", "the child's age (their view is weighed by age and maturity)"
            )
        maturity = _text(row.get("maturity")) or None
        view = _text(row.get("view")) or None
        for key, value in (("maturity", maturity), ("view", view)):
            if value is not None and len(value) > MAX_TEXT:
                errors[f"{prefix}{key}"] = FieldProblem(
                    "max_length", f"at most {MAX_TEXT} characters", {"max_length": MAX_TEXT}
                )
        ref = _text(row.get("ref"))
        if ref not in taken or ref in (p.ref for p in people):
            ref = next(fresh)
        identity = known_hashes.get(ref)
        number = _text(row.get("personnummer"))
        if number and hash_number is not None:
            try:
                identity = hash_number(number)
            except PersonnummerError as exc:
                errors[f"{prefix}personnummer"] = FieldProblem(exc.code, exc.message)
        people.append(
            Person(
                ref=ref,
                name=name,
                role=role,
                required=bool(row.get("required")),
                answer=answer,
                answered_on=answered_on,
                method=method,
                form_ref=form_ref,
                age=age,
                maturity=maturity if role != "guardian" else None,
                view=view if role != "guardian" else None,
                identity_hash=identity,
            )
        )
    if (rows and not any(p.required for p in people)) or not rows:
        errors["people"] = FieldProblem(
            "no_required_consenter", "at least one person whose consent is required"
        )
    return people


def _person(row: ConsentPerson) -> Person:
    return Person(**{f.name: getattr(row, f.name) for f in dataclasses.fields(Person)})


async def plan_people(node: FederationNode, plan_id: str) -> list[Person]:
    """The plan's people as the lead recorded them (empty at a participant)."""
    async with node.store.reading() as conn:
        return [_person(r) for r in await people_store.people_for_plan(conn, plan_id)]


async def current_consent(node: FederationNode, plan_id: str) -> StatementJson | None:
    """The plan's current consent: its newest statement that no later one replaced (whatever
    its state: it may be revoked or expired; the caller says so)."""
    statements = await records.consents_for_plan(node.engine, plan_id)
    async with node.store.reading() as conn:
        replaced = await people_store.replacements_for_plan(conn, plan_id)
    live = [s for s in statements if s["consent_id"] not in replaced]
    return live[-1] if live else None


async def _is_revoked(node: FederationNode, consent_id: str, plan_id: str) -> bool:
    async with node.store.reading() as conn:
        return await revocation_store.is_revoked(conn, consent_id, plan_id)


async def record_consent_people(
    node: FederationNode,
    actor: User,
    plan_id: str,
    *,
    people: Sequence[Mapping[str, object]],
    grants: Sequence[Mapping[str, object]],
    purpose: str,
    valid_from: str,
    valid_until: str,
    evidence_ref: str,
) -> RecordedConsent:
    """Record the people (by name, with their answers) and sign the consent they give: a new
    statement replacing the plan's current consent unless that one was revoked (a revocation
    is final; the family's new consent is then a new consent). The result says who the
    consent still waits for (``waiting_for``, names): until then holders withhold."""
    if actor.role != "lead":
        raise Forbidden("only the lead professional records consent", code="not_lead")
    known = await plan_people(node, plan_id)
    errors: dict[str, FieldProblem] = {}
    key, today = subject_key(node.config.directory), node.clock.now().date()
    parsed = parse_people(
        people,
        [p.ref for p in known],
        errors,
        hash_number=lambda number: identity_hash(number, key, today),
        known_hashes={p.ref: p.identity_hash for p in known},
    )
    required, given = consenters(parsed)
    current = await current_consent(node, plan_id)
    replaces = None
    if current is not None and not await _is_revoked(node, current["consent_id"], plan_id):
        replaces = current["consent_id"]
    result = await consents.record_consent(
        node,
        actor,
        plan_id,
        given_by=given,
        required=required or [{"ref": "p0", "role": "guardian"}],
        grants=grants,
        purpose=purpose,
        valid_from=valid_from,
        valid_until=valid_until,
        evidence_ref=evidence_ref,
        replaces=replaces,
        people=parsed,
        errors=errors,
    )
    names = {p.ref: p.name for p in parsed}
    result["waiting_for"] = waiting_for(result["statement"], names)
    result["replaces"] = replaces
    return result


async def record_answer(
    node: FederationNode,
    actor: User,
    plan_id: str,
    ref: str,
    *,
    answer: str,
    answered_on: str,
    method: str,
    form_ref: str = "",
) -> RecordedConsent:
    """One person's answer, recorded on the plan's consent page: the one step that completes
    a consent. Signs a statement with the current one's grants and validity and the people as
    they now stand, which ``replaces`` the current one (SPEC.md §7.3)."""
    if actor.role != "lead":
        raise Forbidden("only the lead professional records consent", code="not_lead")
    current = await current_consent(node, plan_id)
    if current is None:
        raise NotFound(
            f"no consent recorded for plan {plan_id}",
            code="no_consent_to_complete",
            params={"plan_id": plan_id},
        )
    if await _is_revoked(node, current["consent_id"], plan_id):
        raise Conflict(
            "the consent is revoked: record a new consent",
            code="consent_revoked_record_new",
        )
    known = await plan_people(node, plan_id)
    person = next((p for p in known if p.ref == ref), None)
    if person is None:
        raise NotFound(f"no person {ref} in the plan's consent", code="no_person")
    errors: dict[str, FieldProblem] = {}
    row = {"answer": answer, "answered_on": answered_on, "method": method, "form_ref": form_ref}
    new_answer, new_on, new_method, new_form_ref = _answer_fields(row, "", errors)
    updated = dataclasses.replace(
        person, answer=new_answer, answered_on=new_on, method=new_method, form_ref=new_form_ref
    )
    people = [updated if p.ref == ref else p for p in known]
    required, given = consenters(people)
    result = await consents.record_consent(
        node,
        actor,
        plan_id,
        given_by=given,
        required=required,
        grants=current["grants"],
        purpose=current["purpose"],
        valid_from=current["valid_from"],
        valid_until=current["valid_until"],
        evidence_ref=current["evidence_ref"],
        replaces=current["consent_id"],
        people=people,
        errors=errors,
    )
    result["waiting_for"] = waiting_for(result["statement"], {p.ref: p.name for p in people})
    result["replaces"] = current["consent_id"]
    return result


class ConsentOverview(TypedDict):
    """The plan's consent as people see it (``consent_overview``)."""

    people: list[Person]
    current: StatementJson | None
    state: str
    waiting_for: list[str]


async def consent_overview(node: FederationNode, plan_id: str) -> ConsentOverview:
    """The plan's consent as people see it: the people (at the lead), the current statement,
    its state (``none``, ``incomplete``, ``in_force``, ``revoked``, ``expired``,
    ``not_yet_valid``) and who it waits for, by name where this node knows names."""
    people = await plan_people(node, plan_id)
    current = await current_consent(node, plan_id)
    names = {p.ref: p.name for p in people}
    state, waiting = "none", []
    if current is not None:
        now = node.clock.now()
        waiting = waiting_for(current, names)
        if await _is_revoked(node, current["consent_id"], plan_id):
            state = "revoked"
        elif waiting:
            state = "incomplete"
        elif now >= parse_time(current["valid_until"]):
            state = "expired"
        elif now < parse_time(current["valid_from"]):
            state = "not_yet_valid"
        else:
            state = "in_force"
    return {"people": people, "current": current, "state": state, "waiting_for": waiting}
