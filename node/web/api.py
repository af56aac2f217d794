"""``/api/v1``: the local JSON API for this node's professionals (documented in openapi.yaml).

Handlers only parse, call one service, and shape the answer; the services decide.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..domain.consent_people import Person
from ..domain.shared_plan_shape import SharedPlan
from ..domain.statement_json import StatementJson
from ..errors import FieldProblem, InvalidInput, NodeError, NotFound, field_problems
from ..services import children, consent_people, consents, fragments, plans
from ..services.consent_people import ConsentOverview
from ..services.consents import RecordedConsent
from ..services.fragments import FragmentView
from ..services.plan_close import ClosedPlan
from ..services.plans import PlanView
from ..services.revocation import RecordedRevocation
from ..store import records
from .auth import USER_KEY, require
from .keys import NODE_KEY
from .problems import problem, problem_for

routes = web.RouteTableDef()
PROFESSIONALS = ("professional", "lead")
M = TypeVar("M", bound=BaseModel)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", str_max_length=4000)


class ChildIn(Input):
    name: Annotated[str, Field(max_length=200)]
    personnummer: Annotated[str, Field(max_length=20)]


class PlanIn(Input):
    child_id: str
    participants: Annotated[list[str], Field(min_length=1, max_length=64)]
    purpose: str = "sip"
    reason: str = ""
    responsible_node: str | None = None


class LinkIn(Input):
    child_id: str


class ParticipantIn(Input):
    participant: str  # the agency's node id; named as the plan page's field and its errors


class FragmentIn(Input):
    category: str
    indicators: Annotated[list[str], Field(max_length=8)] = []
    content: dict[str, Any]


class ConsenterIn(Input):
    ref: str
    role: str


class GrantIn(Input):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: Annotated[str, Field(alias="from")]
    to: Annotated[list[str], Field(min_length=1)]
    categories: Annotated[list[str], Field(min_length=1)]


class PersonIn(Input):
    """One person whose consent the plan needs, by name (kept at this node; the statement
    carries a generated reference). ``ref`` keeps a person already recorded for the plan."""

    ref: str = ""
    name: Annotated[str, Field(max_length=200)]
    role: str = "guardian"
    required: bool = False
    answer: str = "not_asked"
    answered_on: str = ""
    method: str = ""
    form_ref: str = ""
    age: int | None = None
    maturity: str = ""
    view: str = ""
    # their personal identity number, so they can sign in with e-identification (optional;
    # kept only as a keyed hash; empty keeps what was recorded for ``ref``)
    personnummer: Annotated[str, Field(max_length=13)] = ""


class ConsentPeopleIn(Input):
    people: Annotated[list[PersonIn], Field(min_length=1, max_length=8)]
    grants: Annotated[list[GrantIn], Field(min_length=1)]
    purpose: str = "sip"
    valid_from: str
    valid_until: str
    evidence_ref: str


class AnswerIn(Input):
    ref: str
    answer: str
    answered_on: str = ""
    method: str = ""
    form_ref: str = ""


class DetailsIn(Input):
    """Every detail, every time (an empty string empties it), as the details page sends them."""

    reason: str
    coordinator_name: str
    coordinator_contact: str
    review_date: str
    review_time: str
    review_place: str


class ConsentIn(Input):
    given_by: list[ConsenterIn]
    required: Annotated[list[ConsenterIn], Field(min_length=1)]
    grants: Annotated[list[GrantIn], Field(min_length=1)]
    purpose: str = "sip"
    valid_from: str
    valid_until: str
    evidence_ref: str


async def parse(request: web.Request, model: type[M]) -> M:
    """Parse and validate a JSON body; bad input is ``InvalidInput`` (a problem document),
    nothing saved. Each field's problem carries pydantic's error type as its code."""
    try:
        data = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("the body is not valid JSON", code="malformed_json") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", code="malformed_json")
    if _has_nul(data):
        raise InvalidInput(
            "text must not contain NUL characters",
            code="nul_character",
            fields={
                "body": FieldProblem("nul_character", "contains a NUL (U+0000) character"),
            },
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(
            "fix the listed fields", code="invalid_fields", fields=field_problems(exc)
        ) from None


def _has_nul(value: Any) -> bool:
    """NUL cannot be stored in PostgreSQL text; refuse it as input instead of failing later."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


Handler = Callable[[web.Request], Awaitable[Any]]


def json_api(handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Turn a handler's return value into JSON and its errors into problem documents."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        if _has_nul(list(request.match_info.values())) or _has_nul(list(request.query.values())):
            return problem(404, "Not found", "no such resource")
        try:
            result = await handler(request)
        except NodeError as exc:
            return problem_for(exc)
        if isinstance(result, web.StreamResponse):
            return result
        status = 201 if request.method == "POST" else 200
        return web.json_response(
            result, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False)
        )

    wrapped.__name__ = handler.__name__
    return wrapped


@routes.get("/api/v1/me")
@json_api
async def me(request: web.Request) -> dict[str, Any]:
    user = request[USER_KEY]
    node = request.app[NODE_KEY]
    return {
        "user_id": user.user_id,
        "display_name": user.display_name,
        "role": user.role,
        "node_id": node.node_id,
    }


@routes.get("/api/v1/children")
@require(*PROFESSIONALS)
@json_api
async def list_children(request: web.Request) -> list[dict[str, Any]]:
    rows = await records.list_children(request.app[NODE_KEY].engine)
    return [{"child_id": c.child_id, "name": c.name, "personnummer": c.personnummer} for c in rows]


@routes.post("/api/v1/children")
@require(*PROFESSIONALS)
@json_api
async def add_child(request: web.Request) -> dict[str, Any]:
    body = await parse(request, ChildIn)
    node = request.app[NODE_KEY]
    child = await children.add_child(node.engine, body.name, body.personnummer, node.clock.now())
    return {"child_id": child.child_id, "name": child.name, "personnummer": child.personnummer}


@routes.get("/api/v1/plans")
@require(*PROFESSIONALS)
@json_api
async def list_plans(request: web.Request) -> list[PlanView]:
    """This agency's plans: ``?status=active`` (the default), ``closed`` or ``all``."""
    return await plans.list_plan_views(request.app[NODE_KEY], request.query.get("status", "active"))


@routes.post("/api/v1/plans")
@require("lead")
@json_api
async def create_plan(request: web.Request) -> PlanView:
    body = await parse(request, PlanIn)
    return await plans.create_plan(
        request.app[NODE_KEY],
        request[USER_KEY],
        child_id=body.child_id,
        participants=body.participants,
        purpose=body.purpose,
        reason=body.reason,
        responsible_node=body.responsible_node,
    )


@routes.get("/api/v1/plans/{plan_id}")
@require(*PROFESSIONALS)
@json_api
async def get_plan(request: web.Request) -> PlanView:
    return await plans.plan_view(request.app[NODE_KEY], request.match_info["plan_id"])


@routes.get("/api/v1/invitations")
@require(*PROFESSIONALS)
@json_api
async def list_invitations(request: web.Request) -> list[dict[str, Any]]:
    invitations = await plans.list_invitations(request.app[NODE_KEY])
    return [{**i, "received_at": i["received_at"].isoformat()} for i in invitations]


@routes.post("/api/v1/invitations/{plan_id}/link")
@require(*PROFESSIONALS)
@json_api
async def link_invitation(request: web.Request) -> PlanView:
    body = await parse(request, LinkIn)
    return await plans.resolve_invitation(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        child_id=body.child_id,
        decline=False,
    )


@routes.post("/api/v1/invitations/{plan_id}/decline")
@require(*PROFESSIONALS)
@json_api
async def decline_invitation(request: web.Request) -> PlanView:
    return await plans.resolve_invitation(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        child_id=None,
        decline=True,
    )


@routes.get("/api/v1/plans/{plan_id}/fragments")
@require(*PROFESSIONALS)
@json_api
async def list_fragments(request: web.Request) -> list[FragmentView]:
    return await fragments.list_fragments(
        request.app[NODE_KEY], request[USER_KEY], request.match_info["plan_id"]
    )


@routes.post("/api/v1/plans/{plan_id}/fragments")
@require(*PROFESSIONALS)
@json_api
async def add_fragment(request: web.Request) -> FragmentView:
    body = await parse(request, FragmentIn)
    return await fragments.author_fragment(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        category=body.category,
        indicators=body.indicators,
        content=body.content,
    )


@routes.put("/api/v1/plans/{plan_id}/fragments/{fragment_id}")
@require(*PROFESSIONALS)
@json_api
async def edit_fragment(request: web.Request) -> FragmentView:
    body = await parse(request, FragmentIn)
    return await fragments.author_fragment(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        category=body.category,
        indicators=body.indicators,
        content=body.content,
        fragment_id=request.match_info["fragment_id"],
    )


@routes.get("/api/v1/plans/{plan_id}/consents")
@require(*PROFESSIONALS)
@json_api
async def list_consents(request: web.Request) -> list[StatementJson]:
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    await plans.plan_view(node, plan_id)  # 404 for an unknown plan
    return await records.consents_for_plan(node.engine, plan_id)


@routes.post("/api/v1/plans/{plan_id}/consents")
@require("lead")
@json_api
async def record_consent(request: web.Request) -> RecordedConsent:
    body = await parse(request, ConsentIn)
    return await consents.record_consent(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        given_by=[c.model_dump() for c in body.given_by],
        required=[c.model_dump() for c in body.required],
        grants=[g.model_dump(by_alias=True) for g in body.grants],
        purpose=body.purpose,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        evidence_ref=body.evidence_ref,
    )


def _overview_json(overview: ConsentOverview) -> dict[str, Any]:
    current = overview["current"]
    return {
        "state": overview["state"],
        "waiting_for": overview["waiting_for"],
        "consent_id": current["consent_id"] if current else None,
        "people": [_person_json(p) for p in overview["people"]],
    }


def _person_json(person: Person) -> dict[str, Any]:
    """A person as the API shows them: whether they can sign in with e-identification, never
    the keyed hash of their identity number."""
    shown = dataclasses.asdict(person)
    shown["can_sign_in"] = shown.pop("identity_hash") is not None
    return shown


@routes.get("/api/v1/plans/{plan_id}/consent")
@require("lead")
@json_api
async def consent_overview(request: web.Request) -> dict[str, Any]:
    """The plan's current consent as people: its state, who it waits for, each person's
    answer (names: the lead only)."""
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    view = await plans.plan_view(node, plan_id)  # 404 for an unknown plan
    if view["role"] != "lead":
        raise NotFound(
            f"no plan {plan_id} led by this node", code="no_led_plan", params={"plan_id": plan_id}
        )
    return _overview_json(await consent_people.consent_overview(node, plan_id))


@routes.post("/api/v1/plans/{plan_id}/consent")
@require("lead")
@json_api
async def record_consent_people(request: web.Request) -> RecordedConsent:
    body = await parse(request, ConsentPeopleIn)
    return await consent_people.record_consent_people(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        people=[p.model_dump() for p in body.people],
        grants=[g.model_dump(by_alias=True) for g in body.grants],
        purpose=body.purpose,
        valid_from=body.valid_from,
        valid_until=body.valid_until,
        evidence_ref=body.evidence_ref,
    )


@routes.post("/api/v1/plans/{plan_id}/consent/answers")
@require("lead")
@json_api
async def record_answer(request: web.Request) -> RecordedConsent:
    """One person's answer: a new statement replaces the plan's current consent."""
    body = await parse(request, AnswerIn)
    return await consent_people.record_answer(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        body.ref,
        answer=body.answer,
        answered_on=body.answered_on,
        method=body.method,
        form_ref=body.form_ref,
    )


@routes.get("/api/v1/plans/{plan_id}/shared")
@require(*PROFESSIONALS)
@json_api
async def shared_plan(request: web.Request) -> SharedPlan:
    """Assemble the shared plan now from every participant, as the consent grants this node
    (any professional at a participating agency; nothing received is stored)."""
    from ..services.assembly import assemble

    consent_id = request.query.get("consent_id")
    return await assemble(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        consent_id=consent_id,
    )


@routes.get("/api/v1/plans/{plan_id}/access-report")
@require("lead")
@json_api
async def access_report(request: web.Request) -> dict[str, Any]:
    """Who has received what about the child: every participant's releases under the plan's
    consents, asked now (SPEC §7.12), with this node's own, newest first."""
    from ..services.access_report import report_for

    timeline = await report_for(
        request.app[NODE_KEY], request[USER_KEY], request.match_info["plan_id"]
    )
    return timeline.as_json()


@routes.post("/api/v1/consents/{consent_id}/revoke")
@require(*PROFESSIONALS)
@json_api
async def revoke_consent(request: web.Request) -> RecordedRevocation:
    """Record the family's withdrawal; every participant is notified (durably, via the outbox)."""
    from ..services.revocation import record_revocation

    return await record_revocation(
        request.app[NODE_KEY], request[USER_KEY], request.match_info["consent_id"]
    )


@routes.post("/api/v1/plans/{plan_id}/participants")
@require("lead")
@json_api
async def invite_participant(request: web.Request) -> PlanView:
    """Invite one more agency to an open plan this node leads, as its plan page does."""
    body = await parse(request, ParticipantIn)
    return await plans.invite_participant(
        request.app[NODE_KEY], request[USER_KEY], request.match_info["plan_id"], body.participant
    )


@routes.put("/api/v1/plans/{plan_id}/details")
@require("lead")
@json_api
async def update_details(request: web.Request) -> PlanView:
    """The plan's details at the lead (why, the coordinator and how to reach them, the next
    review meeting), as the plan's details page edits them: each given in full every time."""
    body = await parse(request, DetailsIn)
    return await plans.update_details(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        reason=body.reason,
        coordinator_name=body.coordinator_name,
        coordinator_contact=body.coordinator_contact,
        review_date=body.review_date,
        review_time=body.review_time,
        review_place=body.review_place,
    )


@routes.post("/api/v1/plans/{plan_id}/close")
@require("lead")
@json_api
async def close_plan(request: web.Request) -> ClosedPlan:
    """Close a plan this node leads: final; every participant is notified durably (SPEC §7.11)."""
    from ..services.plan_close import close_plan as close

    return await close(request.app[NODE_KEY], request[USER_KEY], request.match_info["plan_id"])


@routes.get("/api/v1/plans/{plan_id}/shared.fhir")
@require("lead")
@json_api
async def shared_plan_fhir(request: web.Request) -> web.Response:
    """The shared plan, assembled now, as a FHIR R4 Bundle for the lead's record systems.

    Lead only, like ``/shared``: the bundle carries the child's personnummer (official OID) so
    the receiving system can match its patient; see ``node.services.fhir``.
    """
    from ..services.assembly import assemble
    from ..services.fhir import shared_plan_to_fhir

    shared = await assemble(
        request.app[NODE_KEY],
        request[USER_KEY],
        request.match_info["plan_id"],
        consent_id=request.query.get("consent_id"),
        led_here=True,
    )
    return web.Response(
        text=json.dumps(shared_plan_to_fhir(shared), ensure_ascii=False),
        content_type="application/fhir+json",
        charset="utf-8",
    )
