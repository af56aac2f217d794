"""Pages for the lead professional: record consent, the family's copy and the FHIR export, and
record a revocation; and the shared plan, which every professional at a participating agency
opens (each sees what the consent grants their agency)."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from protocol.codes import Category

from ...domain.consent_people import ANSWERS, METHODS, ROLES, Person
from ...domain.shared_plan_shape import SharedPlan
from ...errors import Conflict, InvalidInput, NotFound
from ...services import consent_people as people_service
from ...services import plan_close
from ...services import plans as plan_service
from ...services.access_report import report_for
from ...services.assembly import assemble
from ...services.consents import RecordedConsent
from ...services.family_views import family_writers
from ...services.plans import MEETING_TIME, PlanView
from ...services.revocation import record_revocation
from ...store import records
from ..keys import NODE_KEY
from .common import agency_names, consents_with_state, coordinator_of, meeting_of, read_form
from .core import (
    PROFESSIONALS,
    error_page,
    flash,
    render,
    roles,
    see_other,
    translator,
    user_of,
)
from .forms import ConsentForm, first
from .i18n import N_, Translator

routes = web.RouteTableDef()


# --- consent --------------------------------------------------------------------------------


def _person_row(person: Person) -> dict[str, str]:
    """A recorded person as a row of the consent form (for a new consent of the family)."""
    values = dataclasses.asdict(person)
    can_sign_in = values.pop("identity_hash") is not None  # the hash itself is never shown
    row = {k: "" if v is None else str(v) for k, v in values.items()}
    row["required"] = "on" if person.required else ""
    row["personnummer"] = ""
    row["can_sign_in"] = "on" if can_sign_in else ""
    return row


async def _consent_page(
    request: web.Request,
    form: ConsentForm | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    *,
    confirm: bool = False,
    answer_ref: str = "",
    answer_errors: dict[str, str] | None = None,
    answer_values: dict[str, str] | None = None,
) -> web.Response:
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    view = await plan_service.plan_view(node, plan_id)
    if view["role"] != "lead":
        raise NotFound(
            f"no plan {plan_id} led by this node",
            code="no_led_plan",
            params={"plan_id": plan_id},
        )
    if view["status"] == "closed":  # read-only once closed (SPEC §7.11)
        raise Conflict("the plan is closed", code="plan_closed")
    members = [
        p["node_id"] for p in view["participants"] if p["status"] not in ("declined", "failed")
    ]
    froms = [m for m in members if m != node.node_id]
    targets = [node.node_id, *froms]
    today = node.clock.now().date()
    overview = await people_service.consent_overview(node, plan_id)
    if form is None:
        current = overview["current"]
        granted = {
            (g["from"], to, c)
            for g in (current["grants"] if current else [])
            for to in g["to"]
            for c in g["categories"]
        }
        form = ConsentForm.initial(
            today.isoformat(),
            (today + timedelta(days=365)).isoformat(),
            view["purpose"],
            [_person_row(p) for p in overview["people"]],
            granted,
        )
    t = translator(request)
    return await render(
        request,
        "consent.html",
        {
            "plan": view,
            "form": form,
            "errors": errors or {},
            "froms": froms,
            "targets": targets,
            "categories": [c.value for c in Category],
            "agencies": await agency_names(node),
            "overview": overview,
            "confirm": confirm,
            "today": today.isoformat(),
            "roles": [(r, t.term("role", r)) for r in ROLES],
            "answers": [(a, t.term("answer", a)) for a in ANSWERS],
            "methods": [(m, t.term("method", m)) for m in METHODS],
            "answer_ref": answer_ref,
            "answer_errors": answer_errors or {},
            "answer_values": answer_values or {},
        },
        status,
    )


@routes.get("/plans/{plan_id}/consent")
@roles("lead")
async def consent_form(request: web.Request) -> web.StreamResponse:
    return await _consent_page(request)


def _sent_messages(t: Translator, result: RecordedConsent) -> list[str]:
    """What the lead is told after a statement was signed and sent."""
    messages = [t.gettext("Samtycket är registrerat och skickat.")]
    if result.get("replaces"):
        messages.append(t.gettext("Det ersätter det tidigare samtycket."))
    if result.get("waiting_for"):
        messages.append(
            t.gettext(
                "Ofullständigt – väntar på %(names)s. Deltagarna lämnar inte ut något förrän "
                "det är komplett.",
                names=", ".join(result["waiting_for"]),
            )
        )
    outcomes = ", ".join(f"{d['node_id']}: {d['outcome']}" for d in result["distribution"])
    if outcomes:
        messages.append(f"{t.gettext('Utskick')}: {outcomes}")
    return messages


@routes.post("/plans/{plan_id}/consent")
@roles("lead")
async def record_consent(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    raw = await read_form(request)
    add_row = first(raw, "add_row") == "person"
    form = ConsentForm.parse(raw, add_row)
    if add_row:
        return await _consent_page(request, form)
    members = await records.participants(node.engine, plan_id)
    froms = sorted(
        n for n, s in members.items() if n != node.node_id and s not in ("declined", "failed")
    )
    args, errors = form.service_args(froms)
    t = translator(request)
    if errors:
        shown = {form.field_id(k): t.problem(v) for k, v in errors.items()}
        return await _consent_page(request, form, shown, 422)
    if form.waiting_for() and not form.confirmed_incomplete:
        # told before it is sent: holders withhold under an incomplete consent
        return await _consent_page(request, form, confirm=True)
    try:
        result = await people_service.record_consent_people(node, user_of(request), plan_id, **args)
    except InvalidInput as exc:
        mapped: dict[str, str] = {}
        for key, message in t.fields(exc).items():
            mapped.setdefault(form.field_id(key), message)
        return await _consent_page(request, form, mapped, 422)
    session = await get_session(request)
    for message in _sent_messages(t, result):
        flash(session, message)
    return see_other(f"/plans/{plan_id}")


@routes.post("/plans/{plan_id}/consent/answer")
@roles("lead")
async def record_answer(request: web.Request) -> web.StreamResponse:
    """The one step that completes a consent: one person's answer; a new statement replaces
    the current one."""
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    raw = await read_form(request)
    ref = first(raw, "ref")
    values = {k: first(raw, k) for k in ("answer", "answered_on", "method", "form_ref")}
    t = translator(request)
    try:
        result = await people_service.record_answer(node, user_of(request), plan_id, ref, **values)
    except InvalidInput as exc:
        shown = {f"answer-{ref}-{k}": message for k, message in t.fields(exc).items()}
        return await _consent_page(
            request, status=422, answer_ref=ref, answer_errors=shown, answer_values=values
        )
    session = await get_session(request)
    for message in _sent_messages(t, result):
        flash(session, message)
    return see_other(f"/plans/{plan_id}/consent")


# --- the shared plan ------------------------------------------------------------------------


async def _assembled(request: web.Request, *, led_here: bool = False) -> SharedPlan | web.Response:
    """The shared plan of the URL, or the page saying no consent is recorded yet (any other
    error is the page's, ``roles``)."""
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    try:
        return await assemble(node, user_of(request), plan_id, led_here=led_here)
    except NotFound as exc:
        if exc.code != "no_consent":
            raise
        plan = await records.get_plan(node.engine, plan_id)
        return await render(
            request,
            "no_consent.html",
            {"plan_id": plan_id, "led_here": plan is not None and plan.role == "lead"},
            status=404,
        )


@routes.get("/plans/{plan_id}/shared")
@roles(*PROFESSIONALS)
async def shared_plan(request: web.Request) -> web.StreamResponse:
    shared = await _assembled(request)
    if isinstance(shared, web.Response):
        return shared
    node = request.app[NODE_KEY]
    return await render(
        request,
        "shared.html",
        {
            "shared": shared,
            "agencies": await agency_names(node),
            "fhir_available": fhir_converter() is not None,
            "coordinator": await coordinator_of(node, shared["plan_id"]),
            "writers": await family_writers(node, shared["plan_id"]),
        },
    )


@routes.get("/plans/{plan_id}/access")
@roles("lead")
async def access_report(request: web.Request) -> web.StreamResponse:
    """Vem har fått vad: every participant's releases for the plan, asked now."""
    node = request.app[NODE_KEY]
    report = await report_for(node, user_of(request), request.match_info["plan_id"])
    return await render(
        request, "access_report.html", {"report": report, "agencies": await agency_names(node)}
    )


@routes.get("/plans/{plan_id}/family")
@roles("lead")
async def family_copy(request: web.Request) -> web.StreamResponse:
    shared = await _assembled(request, led_here=True)
    if isinstance(shared, web.Response):
        return shared
    node = request.app[NODE_KEY]
    return await render(
        request,
        "family.html",
        {
            "shared": shared,
            "agencies": await agency_names(node),
            "coordinator": await coordinator_of(node, shared["plan_id"]),
            "meeting": await meeting_of(node, shared["plan_id"]),
            "writers": await family_writers(node, shared["plan_id"]),
        },
    )


def fhir_converter() -> Callable[..., Any] | None:
    """``node.services.fhir.shared_plan_to_fhir`` when that module is installed, else None."""
    try:
        module = importlib.import_module("node.services.fhir")
    except ImportError:
        return None
    converter = getattr(module, "shared_plan_to_fhir", None)
    return converter if callable(converter) else None


@routes.get("/plans/{plan_id}/fhir")
@roles("lead")
async def fhir_export(request: web.Request) -> web.StreamResponse:
    converter = fhir_converter()
    if converter is None:
        return await error_page(request, 404, N_("FHIR-export finns inte ännu här."))
    shared = await _assembled(request, led_here=True)
    if isinstance(shared, web.Response):
        return shared
    bundle = converter(shared)
    if inspect.isawaitable(bundle):
        bundle = await bundle
    plan_id = request.match_info["plan_id"]
    return web.Response(
        text=json.dumps(bundle, ensure_ascii=False, indent=2),
        content_type="application/fhir+json",
        headers={"Content-Disposition": f'attachment; filename="barnplan-{plan_id}.fhir.json"'},
    )


# --- revocation -----------------------------------------------------------------------------


async def _revoke_page(
    request: web.Request, consent_id: str, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    consents = [
        c
        for c in await consents_with_state(node, plan_id)
        if c["statement"]["consent_id"] == consent_id
    ]
    if not consents:
        return await error_page(request, 404)
    return await render(
        request,
        "revoke.html",
        {"plan_id": plan_id, "consent": consents[0], "errors": errors or {}},
        status,
    )


@routes.get("/plans/{plan_id}/revoke")
@roles(*PROFESSIONALS)
async def revoke_form(request: web.Request) -> web.StreamResponse:
    return await _revoke_page(request, request.query.get("consent_id", ""))


@routes.post("/plans/{plan_id}/revoke")
@roles(*PROFESSIONALS)
async def revoke(request: web.Request) -> web.StreamResponse:
    plan_id = request.match_info["plan_id"]
    form = await read_form(request)
    consent_id = first(form, "consent_id")
    t = translator(request)
    if first(form, "confirm") != "yes":
        return await _revoke_page(
            request, consent_id, {"confirm": t.gettext("Bekräfta genom att kryssa i rutan.")}, 422
        )
    statement = next(
        (
            c["statement"]
            for c in await consents_with_state(request.app[NODE_KEY], plan_id)
            if c["statement"]["consent_id"] == consent_id
        ),
        None,
    )
    if statement is None:
        return await error_page(request, 404)
    result = await record_revocation(request.app[NODE_KEY], user_of(request), consent_id)
    flash(
        await get_session(request),
        t.gettext("Samtycket är återkallat. %(n)s deltagare meddelas.", n=len(result["notified"])),
    )
    return see_other(_after(request, first(form, "back")))


def _after(request: web.Request, back: str) -> str:
    plan_id = request.match_info["plan_id"]
    return f"/plans/{plan_id}/shared" if back == "shared" else f"/plans/{plan_id}"


# --- a plan's life: details, a further agency, closing --------------------------------------

DETAIL_FIELDS = (
    "reason",
    "coordinator_name",
    "coordinator_contact",
    "review_date",
    "review_time",
    "review_place",
)


async def _led_view(request: web.Request) -> PlanView:
    """The plan of the URL if this node leads it (``NotFound`` otherwise: the 404 page)."""
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    view = await plan_service.plan_view(node, plan_id)
    if view["role"] != "lead":
        raise NotFound(
            f"no plan {plan_id} led by this node", code="no_led_plan", params={"plan_id": plan_id}
        )
    return view


def _detail_values(view: PlanView) -> dict[str, str]:
    review = view["review_at"]
    local = datetime.fromisoformat(review).astimezone(MEETING_TIME) if review else None
    return {
        "reason": view["reason"] or "",
        "coordinator_name": view["coordinator_name"] or "",
        "coordinator_contact": view["coordinator_contact"] or "",
        "review_date": local.date().isoformat() if local else "",
        "review_time": local.strftime("%H:%M") if local else "",
        "review_place": view["review_place"] or "",
    }


async def _details_page(
    request: web.Request,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    view = await _led_view(request)
    return await render(
        request,
        "plan_details.html",
        {"plan": view, "values": values or _detail_values(view), "errors": errors or {}},
        status,
    )


@routes.get("/plans/{plan_id}/details")
@roles("lead")
async def details_form(request: web.Request) -> web.StreamResponse:
    return await _details_page(request)


@routes.post("/plans/{plan_id}/details")
@roles("lead")
async def save_details(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    values = {name: first(form, name) for name in DETAIL_FIELDS}
    t = translator(request)
    try:
        await plan_service.update_details(
            request.app[NODE_KEY], user_of(request), request.match_info["plan_id"], **values
        )
    except InvalidInput as exc:
        return await _details_page(request, values, t.fields(exc), 422)
    flash(await get_session(request), t.gettext("Uppgifterna om planen är sparade."))
    return see_other(f"/plans/{request.match_info['plan_id']}")


@routes.post("/plans/{plan_id}/participants")
@roles("lead")
async def invite_participant(request: web.Request) -> web.StreamResponse:
    plan_id = request.match_info["plan_id"]
    peer = first(await read_form(request), "participant")
    t = translator(request)
    session = await get_session(request)
    try:
        view = await plan_service.invite_participant(
            request.app[NODE_KEY], user_of(request), plan_id, peer
        )
    except InvalidInput as exc:
        for message in t.fields(exc).values():
            flash(session, message)
        return see_other(f"/plans/{plan_id}")
    agency = (await agency_names(request.app[NODE_KEY])).get(peer, peer)
    if view["invited"]["outcome"] == "ok":
        flash(
            session,
            t.gettext(
                "%(agency)s är inbjuden. När de har kopplat planen tar du med dem i nästa "
                "samtycke.",
                agency=agency,
            ),
        )
    else:
        flash(
            session,
            t.gettext("Inbjudan nådde inte %(agency)s. Försök igen senare.", agency=agency),
        )
    return see_other(f"/plans/{plan_id}")


async def _close_page(
    request: web.Request, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    view = await _led_view(request)
    node = request.app[NODE_KEY]
    return await render(
        request,
        "plan_close.html",
        {"plan": view, "agencies": await agency_names(node), "errors": errors or {}},
        status,
    )


@routes.get("/plans/{plan_id}/close")
@roles("lead")
async def close_form(request: web.Request) -> web.StreamResponse:
    return await _close_page(request)


@routes.post("/plans/{plan_id}/close")
@roles("lead")
async def close_plan(request: web.Request) -> web.StreamResponse:
    """Closing is final: asked once more, then recorded and sent to every participant."""
    t = translator(request)
    if first(await read_form(request), "confirm") != "yes":
        return await _close_page(
            request, {"confirm": t.gettext("Bekräfta genom att kryssa i rutan.")}, 422
        )
    result = await plan_close.close_plan(
        request.app[NODE_KEY], user_of(request), request.match_info["plan_id"]
    )
    flash(
        await get_session(request),
        t.gettext("Planen är avslutad. %(n)s deltagare meddelas.", n=len(result["notified"])),
    )
    return see_other(f"/plans/{request.match_info['plan_id']}")
