"""Pages for professionals: my plans, invitations, children, a plan and its fragment editor,
and creating a plan (lead). Each handler reads the form, calls one service — the same ones the
JSON API calls — and renders; bad input re-renders the form with the errors, nothing saved."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from protocol.codes import ActionStatus, Category, Indicator, Purpose

from ...errors import Conflict, Forbidden, InvalidInput, NotFound
from ...services import children as child_service
from ...services import fragments as fragment_service
from ...services import plans as plan_service
from ...services.family_views import family_writers
from ...services.fragments import FragmentView
from ...store import records
from ..keys import NODE_KEY
from ..problems import answer_for
from .common import agency_names, child_names, consents_with_state, read_form
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
from .forms import FragmentForm, field_errors, first, plan_args

routes = web.RouteTableDef()

CHOICES: dict[str, Any] = {
    "categories": [c.value for c in Category],
    "indicators": [i.value for i in Indicator],
    "statuses": [s.value for s in ActionStatus],
    "purposes": [p.value for p in Purpose],
}


# --- my plans and invitations ---------------------------------------------------------------


async def _plans_page(
    request: web.Request,
    errors: dict[str, str] | None = None,
    chosen: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    node = request.app[NODE_KEY]
    plans = await plan_service.list_plan_views(node, "all")
    children = await records.list_children(node.engine)
    by_id = {c.child_id: c for c in children}
    invitations = [
        {
            **inv,
            # only this node's own matching children are offered to link
            "matching": [by_id[c] for c in inv["matches"] if c in by_id],
            "suggested": (chosen or {}).get(inv["plan_id"])
            or (inv["matches"][0] if len(inv["matches"]) == 1 else ""),
        }
        for inv in await plan_service.list_invitations(node)
    ]
    return await render(
        request,
        "plans.html",
        {
            "plans": plans,
            "invitations": invitations,
            "child_names": {c.child_id: c.name for c in children},
            "agencies": await agency_names(node),
            "errors": errors or {},
        },
        status,
    )


@routes.get("/plans")
@roles(*PROFESSIONALS)
async def plans_page(request: web.Request) -> web.StreamResponse:
    return await _plans_page(request)


@routes.post("/invitations/{plan_id}/link")
@roles(*PROFESSIONALS)
async def link_invitation(request: web.Request) -> web.StreamResponse:
    plan_id = request.match_info["plan_id"]
    form = await read_form(request)
    child_id = first(form, "child_id")
    try:
        view = await plan_service.resolve_invitation(
            request.app[NODE_KEY], user_of(request), plan_id, child_id=child_id, decline=False
        )
    except InvalidInput as exc:
        t = translator(request)
        errors = {f"child_id-{plan_id}": m for m in t.fields(exc).values()}
        return await _plans_page(request, errors, {plan_id: child_id}, status=422)
    flash(
        await get_session(request),
        translator(request).gettext(
            "Inbjudan är kopplad. Besked till den verksamhet som leder planen: %(outcome)s.",
            outcome=translator(request).term("outcome", view["lead_notified"]),
        ),
    )
    return see_other(f"/plans/{plan_id}")


async def _decline_page(
    request: web.Request, errors: dict[str, str] | None = None, status: int = 200
) -> web.Response:
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    invitation = next(
        (i for i in await plan_service.list_invitations(node) if i["plan_id"] == plan_id), None
    )
    if invitation is None:
        return await error_page(request, 404)
    return await render(
        request,
        "invitation_decline.html",
        {"invitation": invitation, "agencies": await agency_names(node), "errors": errors or {}},
        status,
    )


@routes.get("/invitations/{plan_id}/decline")
@roles(*PROFESSIONALS)
async def decline_form(request: web.Request) -> web.StreamResponse:
    return await _decline_page(request)


@routes.post("/invitations/{plan_id}/decline")
@roles(*PROFESSIONALS)
async def decline_invitation(request: web.Request) -> web.StreamResponse:
    """Declining is final for this plan (the lead keeps the answer, SPEC §7.2): asked once more."""
    plan_id = request.match_info["plan_id"]
    if first(await read_form(request), "confirm") != "yes":
        t = translator(request)
        return await _decline_page(
            request, {"confirm": t.gettext("Bekräfta genom att kryssa i rutan.")}, 422
        )
    await plan_service.resolve_invitation(
        request.app[NODE_KEY], user_of(request), plan_id, child_id=None, decline=True
    )
    flash(await get_session(request), translator(request).gettext("Inbjudan är avböjd."))
    return see_other("/plans")


# --- children -------------------------------------------------------------------------------


async def _children_page(
    request: web.Request,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    node = request.app[NODE_KEY]
    return await render(
        request,
        "children.html",
        {
            "children": await records.list_children(node.engine),
            "values": values or {"name": "", "personnummer": ""},
            "errors": errors or {},
        },
        status,
    )


@routes.get("/children")
@roles(*PROFESSIONALS)
async def children_page(request: web.Request) -> web.StreamResponse:
    # an invitation for a child not on record links here with its personnummer filled in
    given = request.query.get("personnummer", "")[:20]
    return await _children_page(request, {"name": "", "personnummer": given} if given else None)


@routes.post("/children")
@roles(*PROFESSIONALS)
async def add_child(request: web.Request) -> web.StreamResponse:
    form = await read_form(request)
    values = {"name": first(form, "name"), "personnummer": first(form, "personnummer")}
    node = request.app[NODE_KEY]
    try:
        await child_service.add_child(
            node.engine, values["name"], values["personnummer"], node.clock.now()
        )
    except (InvalidInput, Conflict) as exc:  # Conflict: the child is already recorded
        t = translator(request)
        status, _title = answer_for(exc)
        return await _children_page(request, values, t.fields(exc), status=status)
    flash(await get_session(request), translator(request).gettext("Barnet är tillagt."))
    return see_other("/children")


# --- a new plan (lead) ----------------------------------------------------------------------


async def _new_plan_page(
    request: web.Request,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    node = request.app[NODE_KEY]
    agencies = await agency_names(node)
    return await render(
        request,
        "plan_new.html",
        {
            "children": await records.list_children(node.engine),
            "peers": [(p, agencies.get(p, p)) for p in node.keyring.node_ids()],
            "values": values
            or {
                "child_id": request.query.get("child_id", ""),
                "participants": [],
                "purpose": "sip",
                "reason": "",
                "responsible_node": None,
            },
            "errors": errors or {},
            "choices": CHOICES,
        },
        status,
    )


@routes.get("/plans/new")
@roles("lead")
async def new_plan_form(request: web.Request) -> web.StreamResponse:
    return await _new_plan_page(request)


@routes.post("/plans/new")
@roles("lead")
async def create_plan(request: web.Request) -> web.StreamResponse:
    args = plan_args(await read_form(request))
    try:
        view = await plan_service.create_plan(request.app[NODE_KEY], user_of(request), **args)
    except InvalidInput as exc:
        t = translator(request)
        errors = t.fields(exc)
        return await _new_plan_page(request, args, errors, status=422)
    flash(await get_session(request), translator(request).gettext("Planen är skapad."))
    return see_other(f"/plans/{view['plan_id']}")


# --- a plan and its fragments ---------------------------------------------------------------


async def _plan_page(
    request: web.Request,
    plan_id: str,
    form: FragmentForm | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    node = request.app[NODE_KEY]
    user = user_of(request)
    view = await plan_service.plan_view(node, plan_id)
    fragments = (
        await fragment_service.list_fragments(node, user, plan_id)
        if view["status"] in ("active", "closed")
        else []
    )
    names = await child_names(node)
    agencies = await agency_names(node)
    present = {p["node_id"] for p in view["participants"] if p["status"] != "failed"}
    invitable = [(p, agencies.get(p, p)) for p in node.keyring.node_ids() if p not in present]
    return await render(
        request,
        "plan.html",
        {
            "plan": view,
            "child_name": names.get(view["child_id"] or "", ""),
            "fragments": fragments,
            "writers": await family_writers(node, plan_id),
            "consents": await consents_with_state(node, plan_id),
            "agencies": agencies,
            "invitable": invitable,
            "form": form or FragmentForm.empty(),
            "errors": errors or {},
            "action": f"/plans/{plan_id}/fragments",
            "editing": None,
            "choices": CHOICES,
        },
        status,
    )


@routes.get("/plans/{plan_id}")
@roles(*PROFESSIONALS)
async def plan_page(request: web.Request) -> web.StreamResponse:
    return await _plan_page(request, request.match_info["plan_id"])


async def _save_fragment(
    request: web.Request, fragment_id: str | None
) -> tuple[FragmentForm, dict[str, str] | None, FragmentView | None]:
    """Save the posted fragment; (form, errors, saved). ``add_row`` re-renders, saving nothing."""
    raw = await read_form(request)
    add_row = first(raw, "add_row") or None
    form = FragmentForm.parse(raw, add_row)
    if add_row:
        return form, {}, None
    try:
        saved = await fragment_service.author_fragment(
            request.app[NODE_KEY],
            user_of(request),
            request.match_info["plan_id"],
            category=form.category,
            indicators=form.indicators,
            content=form.content(),
            fragment_id=fragment_id,
        )
    except InvalidInput as exc:
        t = translator(request)
        errors = field_errors(form, t.fields(exc))
        return form, errors, None
    return form, None, saved


@routes.post("/plans/{plan_id}/fragments")
@roles(*PROFESSIONALS)
async def add_fragment(request: web.Request) -> web.StreamResponse:
    plan_id = request.match_info["plan_id"]
    form, errors, saved = await _save_fragment(request, None)
    if saved is None:
        return await _plan_page(request, plan_id, form, errors, 422 if errors else 200)
    return await _saved(request, plan_id, saved)


async def _saved(request: web.Request, plan_id: str, saved: FragmentView) -> web.Response:
    flash(
        await get_session(request),
        translator(request).gettext(
            "Planfragmentet är sparat (version %(version)s).", version=saved["version"]
        ),
    )
    return see_other(f"/plans/{plan_id}#fragment-{saved['fragment_id']}")


async def _edit_page(
    request: web.Request,
    form: FragmentForm | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    node = request.app[NODE_KEY]
    plan_id, fragment_id = request.match_info["plan_id"], request.match_info["fragment_id"]
    view = await plan_service.plan_view(node, plan_id)
    current = [
        f
        for f in await fragment_service.list_fragments(node, user_of(request), plan_id)
        if f["fragment_id"] == fragment_id
    ]
    if not current:
        raise NotFound(
            f"no fragment {fragment_id} in plan {plan_id}",
            code="no_fragment",
            params={"fragment_id": fragment_id, "plan_id": plan_id},
        )
    if current[0]["content"].get("written_by"):
        raise Forbidden("the family's own words", code="family_fragment")
    return await render(
        request,
        "fragment_edit.html",
        {
            "plan": view,
            "child_name": (await child_names(node)).get(view["child_id"] or "", ""),
            "form": form or FragmentForm.from_fragment(current[0]),
            "errors": errors or {},
            "action": f"/plans/{plan_id}/fragments/{fragment_id}",
            "editing": current[0],
            "choices": CHOICES,
        },
        status,
    )


@routes.get("/plans/{plan_id}/fragments/{fragment_id}")
@roles(*PROFESSIONALS)
async def edit_fragment_form(request: web.Request) -> web.StreamResponse:
    return await _edit_page(request)


@routes.post("/plans/{plan_id}/fragments/{fragment_id}")
@roles(*PROFESSIONALS)
async def edit_fragment(request: web.Request) -> web.StreamResponse:
    form, errors, saved = await _save_fragment(request, request.match_info["fragment_id"])
    if saved is None:
        return await _edit_page(request, form, errors, 422 if errors else 200)
    return await _saved(request, request.match_info["plan_id"], saved)
