"""The child's and family's way in: e-identification through the residents' provider
(``[residents]``), at the lead node only, separate from the staff's sign-in.

``/familj`` is the family's start page: signed out, it offers e-identification; signed in as a
resident, it lists the plans the lead recorded them on. A sign-in is checked in full
(``node.oidc.client``), the identity number turned into its keyed hash at once
(``node.oidc.resident``) and matched to the people on plans (``services.resident_sign_in``)
before any session exists; a resident on no plan gets a plain page saying so and whom to
contact, and nothing is written. A resident's session opens no professional page, and a
professional's opens no family page (``roles``).
"""

from __future__ import annotations

import structlog
from aiohttp import web

from ...oidc.client import OidcError
from ...oidc.resident import ResidentRefused, resident_from
from ...services import resident_sign_in
from ...store import records
from ..keys import NODE_KEY
from .core import (
    PAGE_STATE,
    PAGE_USER,
    end_session,
    render,
    roles,
    see_other,
    start_session,
    translator,
)
from .i18n import N_
from .provider_flow import provider_login_url, returned_sign_in
from .provider_link import RESIDENT_CALLBACK_PATH, ProviderLink

routes = web.RouteTableDef()
log = structlog.get_logger("barnplan.pages")
FAMILY_HOME = "/familj"
FAMILY_SIGN_IN = "/familj/logga-in"
PENDING = "resident_pending"  # the session key of a family sign-in started at the provider
# what a refused sign-in's page says, by ``ResidentRefused.code``
REFUSED = {
    "no_plan": N_(
        "Du är inloggad med e-legitimation, men vi hittar ingen plan där du är med. Det kan "
        "bero på att planen inte har ditt personnummer. Kontakta %(contact)s."
    ),
    "too_young": N_(
        "Du är inloggad med e-legitimation. Du kan läsa din plan här när du är %(age)s år. "
        "Fram till dess kan du fråga %(contact)s."
    ),
    "no_identity_number": N_(
        "Inloggningen gav inte ditt personnummer, så vi kan inte hitta din plan. Försök igen, "
        "eller kontakta %(contact)s."
    ),
    "disabled": N_("Du kan inte logga in här just nu. Kontakta %(contact)s."),
}
RESIDENT_ROLES = (resident_sign_in.RESIDENT_ROLE,)


def _residents(request: web.Request) -> ProviderLink:
    link = request.app[PAGE_STATE].residents
    if link is None:
        raise web.HTTPNotFound()
    return link


async def family_start(request: web.Request, *, error: str = "", status: int = 200) -> web.Response:
    """Signed out: how to sign in, with the notice or refusal to show."""
    node = request.app[NODE_KEY]
    t = translator(request)
    notice = t.gettext("Du är utloggad.") if request.query.get("ut") == "1" else ""
    link = request.app[PAGE_STATE].residents
    return await render(
        request,
        "family_start.html",
        {
            "error": error,
            "notice": notice,
            "provider_name": link.name if link else "",
            "contact": node.config.residents.contact,
        },
        status=status,
    )


@routes.get(FAMILY_HOME)
async def family_home(request: web.Request) -> web.StreamResponse:
    """The family's start page: the plans a signed-in resident is on, else how to sign in."""
    user = request.get(PAGE_USER)
    if user is None:
        return await family_start(request)
    if user.role not in RESIDENT_ROLES:
        return see_other("/")
    return await _plans_page(request)


@roles(*RESIDENT_ROLES)
async def _plans_page(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    user = request[PAGE_USER]
    resident = await resident_sign_in.plans_for_user(node.store, user)
    children = {}
    for person in resident:
        plan = await records.get_plan(node.engine, person.plan_id)
        child = (
            await records.get_child(node.engine, plan.child_id) if plan and plan.child_id else None
        )
        children[person.plan_id] = child.name if child else ""
    return await render(
        request,
        "family_home.html",
        {"people": resident, "children": children},
    )


@routes.get(FAMILY_SIGN_IN)
async def family_sign_in(request: web.Request) -> web.StreamResponse:
    """Send the browser to the residents' provider; state, nonce and PKCE verifier stay in
    this browser's encrypted session until it comes back."""
    link = _residents(request)
    try:
        return see_other(await provider_login_url(request, link, "", PENDING))
    except OidcError as exc:
        return await _failed(request, link, exc.code)


@routes.get(RESIDENT_CALLBACK_PATH)
async def family_callback(request: web.Request) -> web.StreamResponse:
    """The provider's answer, checked in full before anything is written or a session made."""
    link = _residents(request)
    pending = await returned_sign_in(request, PENDING)
    node = request.app[NODE_KEY]
    settings = node.config.residents
    now = node.clock.now()
    try:
        signed = await link.client().complete(dict(request.query), pending, link.redirect_uri)
        resident = resident_from(
            signed.claims, settings.identity_claim, link.subject_key, now.date()
        )
        admitted = await resident_sign_in.sign_in_resident(
            node.store, signed.issuer, resident, settings.child_min_age, now
        )
    except OidcError as exc:
        return await _failed(request, link, exc.code)
    except ResidentRefused as exc:
        log.warning("pages.resident_sign_in_refused", reason=exc.code)
        t = translator(request)
        text = t.gettext(
            REFUSED[exc.code], contact=settings.contact, age=str(settings.child_min_age)
        )
        return await family_start(request, error=text, status=403)
    await start_session(request, admitted.user, signed.id_token, None)
    log.info("pages.signed_in", method="residents", role=admitted.user.role)
    return see_other(FAMILY_HOME)


@routes.post("/familj/logga-ut")
async def family_sign_out(request: web.Request) -> web.StreamResponse:
    """Sign out here, then at the residents' provider if the session came from it."""
    id_token = await end_session(request)
    link = request.app[PAGE_STATE].residents
    if id_token is not None and link is not None:
        at_provider = await link.client().logout_url(id_token, link.after_logout_uri)
        if at_provider is not None:
            return see_other(at_provider)
    return see_other(FAMILY_HOME + "?ut=1")


async def _failed(request: web.Request, link: ProviderLink, code: str) -> web.Response:
    log.warning("pages.resident_sign_in_failed", reason=code)
    t = translator(request)
    if code == "provider_unreachable":
        text = t.gettext(
            "Inloggningen med %(name)s svarar inte just nu. Försök igen om en stund.",
            name=link.name,
        )
        return await family_start(request, error=text, status=503)
    text = t.gettext(
        "Inloggningen med %(name)s blev inte klar, så du är inte inloggad. Försök igen.",
        name=link.name,
    )
    return await family_start(request, error=text, status=400)
