"""Consent: the lead records the family's consent, signs it as a statement, distributes it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import NotRequired, TypedDict

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.clock import format_time, parse_time
from protocol.documents import sign_consent
from protocol.errors import MalformedError
from protocol.messages import ConsentAck

from ..domain.consent_people import Person
from ..domain.json_object import JsonObject
from ..errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound
from ..store import consent_people, records
from ..store.tables import ConsentPerson, User
from .outbound import LogContext
from .ports import FederationNode
from .users import professional_ref


def _time_field(value: object, name: str, errors: dict[str, FieldProblem]) -> str:
    try:
        return format_time(parse_time(str(value)))
    except ValueError:
        errors[name] = FieldProblem(
            "rfc3339_time", "an RFC 3339 time with offset, e.g. 2026-12-01T00:00:00Z"
        )
        return ""


async def _led_plan(node: FederationNode, actor: User, plan_id: str) -> None:
    if actor.role != "lead":
        raise Forbidden("only the lead professional records consent", code="not_lead")
    plan = await records.get_plan(node.engine, plan_id)
    if plan is None or plan.role != "lead":
        raise NotFound(
            f"no plan {plan_id} led by this node", code="no_led_plan", params={"plan_id": plan_id}
        )
    if plan.status == "closed":  # read-only once closed (SPEC §7.11)
        raise Conflict("the plan is closed", code="plan_closed")


async def _members(node: FederationNode, plan_id: str) -> set[str]:
    return {
        n
        for n, s in (await records.participants(node.engine, plan_id)).items()
        if s not in ("declined", "failed")
    }


class Delivery(TypedDict):
    """How one participant took the statement sent to it."""

    node_id: str
    outcome: str
    reason: NotRequired[str]
    status: NotRequired[str]


class RecordedConsent(TypedDict):
    """A recorded consent: the signed statement, how it was delivered, and (when recorded as
    people, ``consent_people``) who it still waits for and what it replaced."""

    consent_id: str
    statement: JsonObject
    distribution: list[Delivery]
    waiting_for: NotRequired[list[str]]
    replaces: NotRequired[str | None]


async def record_consent(
    node: FederationNode,
    actor: User,
    plan_id: str,
    *,
    given_by: list[dict[str, str]],
    required: list[dict[str, str]],
    grants: Sequence[Mapping[str, object]],
    purpose: str,
    valid_from: str,
    valid_until: str,
    evidence_ref: str,
    replaces: str | None = None,
    people: list[Person] | None = None,
    errors: dict[str, FieldProblem] | None = None,
) -> RecordedConsent:
    """Sign and store a consent statement, then distribute it to every participant.

    ``replaces`` names the earlier consent of this plan the statement replaces (SPEC §6.2);
    it is marked replaced here in the transaction that stores the new one. ``people`` (the
    names behind the references, kept at this node only) are stored in that transaction too.
    ``errors`` are the caller's own field problems, reported with the ones found here."""
    await _led_plan(node, actor, plan_id)
    members = await _members(node, plan_id)
    errors = dict(errors or {})
    start = _time_field(valid_from, "valid_from", errors)
    until = _time_field(valid_until, "valid_until", errors)
    if start and until and parse_time(until) <= parse_time(start):
        errors["valid_until"] = FieldProblem("ends_before_start", "must be after valid_from")
    for i, grant in enumerate(grants):
        to = grant.get("to")
        nodes = [grant.get("from"), *(to if isinstance(to, list) else [])]
        strangers = [str(n) for n in nodes if n not in members]
        if strangers:
            nodes_text = ", ".join(strangers)
            errors[f"grants.{i}"] = FieldProblem(
                "not_participants",
                f"not participants of the plan: {nodes_text}",
                {"nodes": nodes_text},
            )
    if not evidence_ref.strip():
        errors["evidence_ref"] = FieldProblem(
            "evidence_missing", "reference the signed paper or e-form"
        )
    if errors:
        raise InvalidInput(
            "the consent could not be recorded", code="consent_invalid", fields=errors
        )
    recorded_by = professional_ref(node.node_id, actor)
    statement: JsonObject = {
        "consent_id": str(uuid.uuid4()),
        "plan_id": plan_id,
        "lead": node.node_id,
        "purpose": purpose,
        "required": required,
        "given_by": given_by,
        "grants": [dict(g) for g in grants],
        "valid_from": start,
        "valid_until": until,
        "evidence_ref": evidence_ref.strip(),
        "recorded_by": recorded_by,
        "issued_at": format_time(node.clock.now()),
    }
    if replaces:
        statement["replaces"] = replaces
    try:
        signed = sign_consent(statement, node.identity.key)
    except (MalformedError, ValidationError) as exc:
        raise InvalidInput(
            "the consent could not be recorded",
            code="consent_invalid",
            fields={"consent": FieldProblem("consent_malformed", str(exc))},
        ) from None
    now = node.clock.now()
    async with node.store.writing() as conn:
        await records.insert_consent(conn, signed, parse_time(until), now)
        if replaces:
            await consent_people.record_replacement(
                conn, replaces, plan_id, signed["consent_id"], now
            )
        if people is not None:
            await _store_people(conn, plan_id, people, now)
    context = LogContext(
        plan_id=plan_id,
        consent_id=signed["consent_id"],
        purpose=purpose,
        professional=recorded_by,
    )
    peers = sorted(members - {node.node_id})
    results = await asyncio.gather(
        *(node.peers.send(p, "consent.statement", {"statement": signed}, context) for p in peers)
    )
    distribution: list[Delivery] = []
    for result in results:
        entry: Delivery = {"node_id": result.peer, "outcome": result.outcome}
        if result.reason:
            entry["reason"] = result.reason
        if result.reply is not None and isinstance(result.reply.body, ConsentAck):
            entry["status"] = result.reply.body.status
        distribution.append(entry)
    return {"consent_id": signed["consent_id"], "statement": signed, "distribution": distribution}


async def _store_people(
    conn: AsyncConnection, plan_id: str, people: list[Person], now: datetime
) -> None:
    """Keep exactly ``people`` as the plan's people: update those known by ``ref``, add the
    new, forget the ones the lead removed."""
    known = {p.ref for p in await consent_people.people_for_plan(conn, plan_id)}
    for person in people:
        row = ConsentPerson(plan_id=plan_id, updated_at=now, **dataclasses.asdict(person))
        if person.ref in known:
            await consent_people.update_person(conn, row)
        else:
            await consent_people.insert_person(conn, row)
    await consent_people.delete_people_except(conn, plan_id, [p.ref for p in people])
