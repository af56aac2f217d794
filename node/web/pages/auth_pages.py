"""Signing in and out, and the start page that sends each role to its own pages."""

from __future__ import annotations

from aiohttp import web

from ...services import passwords
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

routes = web.RouteTableDef()


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
    return await render(
        request,
        "login.html",
        {
            "next": local_path(request.query.get("next")) or "",
            "notice": notice,
            "user_id": "",
            "error": "",
        },
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
    source = client_address(request, state.settings.trusted_proxies)
    t = translator(request)
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
    return await render(
        request,
        "login.html",
        {"next": target or "", "error": error, "user_id": user_id, "notice": ""},
        status=401,
    )


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    await end_session(request)
    return see_other("/login?out=1")
