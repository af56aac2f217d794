"""Signing in and out, and the start page that sends each role to its own pages.

Two ways in: the node's own password form (``auth.passwords``) and the agency's OpenID
provider (``[oidc]``): the browser goes to the provider's login page and comes back to
``/login/oidc/callback``, where the answer is checked (``node.oidc.client``) and the person
mapped to a user (``services.provider_sign_in``) before any session exists. A refused sign-in
gets a page saying why and what to do, creates no session and writes nothing.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from ...oidc.client import OidcError
from ...oidc.identity import IdentityRefused
from ...services import passwords, provider_sign_in, sessions
from ..keys import NODE_KEY
from .common import read_form
from .core import (
    PAGE_STATE,
    PAGE_USER,
    client_address,
    end_session,
    home_for,
    local_path,
    render,
    see_other,
    start_session,
    translator,
)
from .forms import first
from .i18n import N_
from .provider_flow import provider_login_url, returned_sign_in
from .provider_link import CALLBACK_PATH, ProviderLink

routes = web.RouteTableDef()
log = structlog.get_logger("barnplan.pages")
PENDING = "oidc_pending"  # the session key of a sign-in started at the provider
# what a refused sign-in's page says, by ``IdentityRefused.code``
REFUSED = {
    "no_role": N_(
        "%(name)s kände igen dig, men du har ingen roll i barnplan här. Be din organisations "
        "behörighetsadministratör om en roll."
    ),
    "unknown_user": N_(
        "%(name)s kände igen dig, men du är inte registrerad som användare här. Be "
        "driftansvarig för barnplan i din verksamhet att lägga till dig."
    ),
    "disabled": N_("Ditt konto är avstängt. Kontakta driftansvarig för barnplan i din verksamhet."),
    "no_subject": N_(
        "%(name)s skickade inte det användar-id som barnplan behöver. Kontakta driftansvarig "
        "för barnplan i din verksamhet."
    ),
}


@routes.get("/")
async def start(request: web.Request) -> web.StreamResponse:
    return see_other(home_for(request[PAGE_USER]))


@routes.get("/login")
async def login_form(request: web.Request) -> web.StreamResponse:
    user = request.get(PAGE_USER)
    if user is not None:
        return see_other(home_for(user))
    t = translator(request)
    notice = t.gettext("Du är utloggad.") if request.query.get("out") == "1" else ""
    return await login_page(request, local_path(request.query.get("next")) or "", notice=notice)


async def login_page(
    request: web.Request,
    next_path: str,
    *,
    notice: str = "",
    error: str = "",
    user_id: str = "",
    status: int = 200,
) -> web.Response:
    """The sign-in page: the provider's button when one is set up, the password form when
    passwords are on."""
    state = request.app[PAGE_STATE]
    return await render(
        request,
        "login.html",
        {
            "next": next_path,
            "notice": notice,
            "user_id": user_id,
            "error": error,
            "passwords": state.settings.passwords,
            "provider_name": state.provider.name if state.provider else "",
        },
        status=status,
    )


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    """Sign in, unless the user id or the client's address has failed too often lately (then
    the password is not even checked, so guessing on gets no answer)."""
    form = await read_form(request)
    user_id, password = first(form, "user_id"), (form.get("password") or [""])[0]
    target = local_path(first(form, "next"))
    state = request.app[PAGE_STATE]
    node = request.app[NODE_KEY]
    t = translator(request)
    if not state.settings.passwords:
        return await login_page(
            request,
            target or "",
            error=t.gettext(
                "Inloggning med lösenord är avstängd här. Logga in med din organisations "
                "inloggning."
            ),
            status=403,
        )
    source = client_address(request, state.settings.trusted_proxies)
    now = node.clock.now()
    if not await state.throttle.attempt(node.engine, user_id, source, now):
        error = t.gettext("För många misslyckade försök. Vänta en stund och försök igen.")
    else:
        user = await passwords.login(node.engine, user_id, password)
        if user is not None:
            await state.throttle.succeeded(node.engine, user_id, source)
            await start_session(request, user)
            return see_other(target or home_for(user))
        error = t.gettext("Fel användar-id eller lösenord.")
    return await login_page(request, target or "", error=error, user_id=user_id, status=401)


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    """Sign out here, then at the provider if the session came from it (RP-initiated logout:
    the provider ends its own session and sends the browser back to /login)."""
    id_token = await end_session(request)
    provider = request.app[PAGE_STATE].provider
    if id_token is not None and provider is not None:
        at_provider = await provider.client().logout_url(id_token, provider.after_logout_uri)
        if at_provider is not None:
            return see_other(at_provider)
    return see_other("/login?out=1")


def _provider(request: web.Request) -> ProviderLink:
    provider = request.app[PAGE_STATE].provider
    if provider is None:
        raise web.HTTPNotFound()
    return provider


@routes.get("/login/oidc")
async def provider_start(request: web.Request) -> web.StreamResponse:
    """Send the browser to the provider's login page; keep state, nonce and PKCE verifier in
    this browser's (encrypted) session until it comes back."""
    provider = _provider(request)
    next_path = local_path(request.query.get("next")) or ""
    try:
        return see_other(await provider_login_url(request, provider, next_path, PENDING))
    except OidcError as exc:
        return await _sign_in_failed(request, provider, exc.code, next_path)


@routes.get(CALLBACK_PATH)
async def provider_callback(request: web.Request) -> web.StreamResponse:
    """The provider's answer: checked in full before anything is written or any session made."""
    provider = _provider(request)
    pending = await returned_sign_in(request, PENDING)
    next_path = pending.next if pending is not None else ""
    node = request.app[NODE_KEY]
    try:
        signed = await provider.client().complete(
            dict(request.query), pending, provider.redirect_uri
        )
        user = await provider_sign_in.sign_in(
            node.engine,
            provider.rules,
            provider.subject_key,
            signed.issuer,
            dict(signed.claims),
            node.clock.now(),
        )
    except OidcError as exc:
        return await _sign_in_failed(request, provider, exc.code, next_path)
    except IdentityRefused as exc:
        log.warning("pages.sign_in_refused", reason=exc.code)
        t = translator(request)
        text = t.gettext(REFUSED[exc.code], name=provider.name)
        return await login_page(request, next_path, error=text, status=403)
    sid = signed.claims.get("sid")
    await start_session(request, user, signed.id_token, sid if isinstance(sid, str) else None)
    log.info("pages.signed_in", method="oidc", role=user.role)
    return see_other(local_path(next_path) or home_for(user))


async def _sign_in_failed(
    request: web.Request, provider: ProviderLink, code: str, next_path: str
) -> web.Response:
    log.warning("pages.sign_in_failed", reason=code)
    t = translator(request)
    if code == "provider_unreachable":
        text = t.gettext(
            "Inloggningstjänsten %(name)s svarar inte just nu. Försök igen om en stund. "
            "Kvarstår felet, kontakta driftansvarig för barnplan i din verksamhet.",
            name=provider.name,
        )
        status = 503
    else:
        text = t.gettext(
            "Inloggningen via %(name)s kunde inte slutföras, så du är inte inloggad. Börja om "
            "genom att klicka på knappen nedan.",
            name=provider.name,
        )
        status = 400
    return await login_page(request, next_path, error=text, status=status)


async def backchannel_logout(request: web.Request) -> web.Response:
    """The provider's back-channel logout (OpenID Connect Back-Channel Logout 1.0): a person
    signed out at the provider, so the sessions it names end here too. Called by the provider,
    not a browser: no session and no CSRF token, the signed logout token is the proof."""
    provider = request.app[PAGE_STATE].provider
    if provider is None:
        raise web.HTTPNotFound()
    headers = {"Cache-Control": "no-store"}
    form = await request.post()
    token = form.get("logout_token")
    node = request.app[NODE_KEY]
    try:
        if not isinstance(token, str) or not token:
            raise OidcError("logout_token_invalid", "no logout_token")
        sub, sid = await provider.client().validate_logout_token(token)
    except OidcError as exc:
        log.warning("pages.backchannel_logout_refused", reason=exc.code)
        return web.json_response({"error": "invalid_request"}, status=400, headers=headers)
    user_id = None
    if sid is None and sub is not None and provider.rules.subject_claim == "sub":
        user = await provider_sign_in.user_for_subject(
            node.engine, provider.issuer, sub, provider.rules, provider.subject_key
        )
        user_id = user.user_id if user is not None else None
    ended = await sessions.end_provider_sessions(node.engine, sid, user_id)
    log.info("pages.backchannel_logout", sessions=ended)
    return web.Response(status=200, headers=headers)
