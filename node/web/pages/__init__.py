"""Server-rendered HTML pages for professionals (/plans), lead professionals and operators (/ops).

``setup_pages`` wires templates, static files, the session and the pages' middleware into an
app; the JSON API, the federation endpoint and bearer-token auth are left exactly as they are.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_session import session_middleware
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from ...runtime import Node
from .auth_pages import backchannel_logout
from .auth_pages import routes as auth_routes
from .core import (
    PAGE_STATE,
    SESSION_COOKIE,
    Handler,
    PageSettings,
    PageState,
    is_page,
    pages_guard,
    settings_for,
)
from .family_access import routes as family_access_routes
from .family_consent import routes as family_consent_routes
from .family_plan import routes as family_plan_routes
from .family_sign_in import routes as family_routes
from .family_views import routes as family_views_routes
from .lead import routes as lead_routes
from .ops import routes as ops_routes
from .professional import routes as professional_routes
from .provider_link import (
    BACKCHANNEL_LOGOUT_PATH,
    ProviderLink,
    resident_provider,
    staff_provider,
)

WEB_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = WEB_DIR / "templates"
STATIC = WEB_DIR / "static"


def setup_pages(app: web.Application, node: Node, settings: PageSettings | None = None) -> None:
    """Add the pages to ``app`` (call before the app starts; its middlewares are appended)."""
    settings = settings or settings_for(node.config)
    config = node.config
    provider = (
        ProviderLink(staff_provider(config), config, node.clock) if config.oidc.issuer else None
    )
    residents = (
        ProviderLink(resident_provider(config), config, node.clock)
        if config.residents.issuer
        else None
    )
    app[PAGE_STATE] = PageState(settings, provider, residents)
    for link in (provider, residents):
        if link is not None:
            app.on_cleanup.append(link.close)
    if provider is not None:
        # called by the provider, not a browser: not a page (no session, no CSRF check)
        app.router.add_post(BACKCHANNEL_LOGOUT_PATH, backchannel_logout)
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=["jinja2.ext.i18n"],
    )
    # the language is the request's: ``render`` puts its gettext callables in each page's
    # context, where the extension's ``_`` finds them; these are only the fallback (msgids)
    env.install_null_translations(newstyle=True)  # type: ignore[attr-defined]
    storage = EncryptedCookieStorage(
        settings.session_key,
        cookie_name=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        httponly=True,
        secure=settings.cookie_secure,
        samesite="Lax",
        path="/",
    )
    sessions = session_middleware(storage)

    @web.middleware
    async def page_sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
        """Sessions for pages only: /api, /federation and the public endpoints never see one."""
        if not is_page(request):
            return await handler(request)
        return await sessions(request, handler)

    # aiohttp-session keeps its request state under string keys, which aiohttp now warns about
    warnings.filterwarnings("ignore", category=NotAppKeyWarning, module="aiohttp_session")
    app.middlewares.append(page_sessions)
    app.middlewares.append(pages_guard)
    app.router.add_static("/static/", STATIC, name="static", append_version=False)
    for routes in (
        auth_routes,
        professional_routes,
        lead_routes,
        ops_routes,
        family_routes,
        family_plan_routes,
        family_access_routes,
        family_consent_routes,
        family_views_routes,
    ):
        for route in app.add_routes(routes):
            if route.resource is not None:
                app[PAGE_STATE].resources.add(route.resource)
