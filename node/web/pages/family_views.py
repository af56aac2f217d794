"""The family's own words: ``/familj/planer/{plan_id}/synpunkter``, for a resident on that plan.

A guardian writes the family's view, the child (from the agency's age) their own; the service
(``services.family_views``) decides who may write on which plan and saves each edit as a new
version of that person's own ``family`` fragment at this, the lead's, node. Empty or too long
text is shown at the field and nothing is saved."""

from __future__ import annotations

from aiohttp import web
from aiohttp_session import get_session

from ...errors import InvalidInput
from ...services.family_views import MAX_VIEW, FamilyView, read_view, write_view
from ...services.resident_sign_in import RESIDENT_ROLE
from ..keys import NODE_KEY
from .common import read_form
from .core import PAGE_USER, flash, render, roles, see_other, translator
from .forms import first
from .i18n import N_

routes = web.RouteTableDef()
SAVED = N_("Tack! Det du skrev är sparat.")


async def _page(
    request: web.Request,
    view: FamilyView,
    text: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    return await render(
        request,
        "family_views.html",
        {
            "view": view,
            "text": view.text if text is None else text,
            "errors": errors or {},
            "max_length": MAX_VIEW,
        },
        status,
    )


@routes.get("/familj/planer/{plan_id}/synpunkter")
@roles(RESIDENT_ROLE)
async def views_form(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    view = await read_view(node, request[PAGE_USER], request.match_info["plan_id"])
    return await _page(request, view)


@routes.post("/familj/planer/{plan_id}/synpunkter")
@roles(RESIDENT_ROLE)
async def save_view(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    text = first(await read_form(request), "text")
    try:
        await write_view(node, request[PAGE_USER], plan_id, text)
    except InvalidInput as exc:
        view = await read_view(node, request[PAGE_USER], plan_id)
        return await _page(request, view, text, translator(request).fields(exc), 422)
    session = await get_session(request)
    flash(session, translator(request).gettext(SAVED))
    return see_other(f"/familj/planer/{plan_id}")
