"""The family and the consent: ``/familj/planer/{plan_id}/samtycke``, for a resident on that plan.

The page says, in short sentences, who may share what with whom, why, until when, and who has
answered; a person asked gives their own answer there (two plain buttons: yes or no), and a
person whose consent the plan needs withdraws it after a page that asks "Är du säker?". The
service (``services.family_consent``) decides who may do what; on any refusal nothing is
recorded and the page says why."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp_session import get_session

from ...runtime import Node
from ...services.family_consent import (
    answer_for_family,
    read_family_consent,
    withdraw_for_family,
)
from ...services.resident_sign_in import RESIDENT_ROLE
from ...store.tables import User
from ..keys import NODE_KEY
from .common import agency_names, read_form
from .core import PAGE_USER, flash, render, roles, see_other, translator
from .forms import first
from .i18n import N_

routes = web.RouteTableDef()
CONSENT_PAGE = "/familj/planer/{plan_id}/samtycke"
ANSWERED = {
    "consents": N_("Tack! Du har sagt ja till samtycket."),
    "declines": N_("Du har sagt nej till samtycket. Din samordnare får veta det."),
}
WITHDRAWN = N_(
    "Samtycket är återkallat. Alla som är med i planen får veta det. De lämnar inte längre ut "
    "något om barnet."
)


async def _consent_page(request: web.Request, template: str) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    consent = await read_family_consent(node, request[PAGE_USER], request.match_info["plan_id"])
    return await render(
        request, template, {"consent": consent, "agencies": await agency_names(node)}
    )


@routes.get(CONSENT_PAGE)
@roles(RESIDENT_ROLE)
async def consent_page(request: web.Request) -> web.StreamResponse:
    return await _consent_page(request, "family_consent.html")


@routes.post(CONSENT_PAGE + "/svar")
@roles(RESIDENT_ROLE)
async def give_answer(request: web.Request) -> web.StreamResponse:
    answer = first(await read_form(request), "answer")

    async def act(node: Node, resident: User, plan_id: str) -> object:
        return await answer_for_family(node, resident, plan_id, answer)

    return await _acted(request, act, ANSWERED.get(answer, ""))


@routes.get(CONSENT_PAGE + "/aterkalla")
@roles(RESIDENT_ROLE)
async def confirm_withdrawal(request: web.Request) -> web.StreamResponse:
    """Are you sure? What withdrawing does, before anything is recorded."""
    return await _consent_page(request, "family_withdraw.html")


@routes.post(CONSENT_PAGE + "/aterkalla")
@roles(RESIDENT_ROLE)
async def withdraw(request: web.Request) -> web.StreamResponse:
    return await _acted(request, withdraw_for_family, WITHDRAWN)


async def _acted(
    request: web.Request,
    act: Callable[[Node, User, str], Awaitable[object]],
    done: str,
) -> web.StreamResponse:
    """Do ``act`` for the signed-in resident on the page's plan; on a refusal the page says why
    (nothing was recorded), else back to the consent page saying ``done``."""
    node = request.app[NODE_KEY]
    plan_id = request.match_info["plan_id"]
    await act(node, request[PAGE_USER], plan_id)
    flash(await get_session(request), translator(request).gettext(done))
    return see_other(CONSENT_PAGE.format(plan_id=plan_id))
