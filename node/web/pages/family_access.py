"""Who has received what about the child: ``/familj/planer/{plan_id}/vem-har-sett``, for a
signed-in resident on that plan.

The lead's access report (``services.access_report``), asked now of every participant by the
lead's node for the family (``services.family_plan.read_family_access`` decides who may see
which plan), in short plain sentences for a phone: when, who gave what to whom, why, and who
asked (by role, never a staff name unless that agency's policy says so)."""

from __future__ import annotations

from aiohttp import web

from ...services.family_plan import read_family_access
from ...services.resident_sign_in import RESIDENT_ROLE
from ..keys import NODE_KEY
from .common import agency_names
from .core import PAGE_USER, render, roles

routes = web.RouteTableDef()


@routes.get("/familj/planer/{plan_id}/vem-har-sett")
@roles(RESIDENT_ROLE)
async def family_access(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    report = await read_family_access(node, request[PAGE_USER], plan_id)
    return await render(
        request, "family_access.html", {"report": report, "agencies": await agency_names(node)}
    )
