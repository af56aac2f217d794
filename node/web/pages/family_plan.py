"""The family's plan: ``/familj/planer/{plan_id}``, for a signed-in resident on that plan.

The page is "Min plan", the same plain-language copy the lead prints for the family, with the
coordinator and the next meeting; the service (``services.family_plan``) decides who may read
which plan and assembles it at this, the lead's, node."""

from __future__ import annotations

from aiohttp import web

from ...services.family_plan import read_family_plan
from ...services.family_views import family_writers
from ...services.resident_sign_in import RESIDENT_ROLE
from ..keys import NODE_KEY
from .common import agency_names, coordinator_of, meeting_of
from .core import PAGE_USER, render, roles

routes = web.RouteTableDef()


@routes.get("/familj/planer/{plan_id}")
@roles(RESIDENT_ROLE)
async def family_plan(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    read = await read_family_plan(node, request[PAGE_USER], request.match_info["plan_id"])
    plan_id = read.plan.plan_id
    return await render(
        request,
        "family.html",
        {
            "shared": read.shared,
            "agencies": await agency_names(node),
            "coordinator": await coordinator_of(node, plan_id),
            "meeting": await meeting_of(node, plan_id),
            "writers": await family_writers(node, plan_id),
        },
    )
