"""What every HTML page shares: settings, the session, CSRF, the signed-in user, rendering,
role checks and error pages.

The session is an encrypted, authenticated cookie (``aiohttp-session``'s Fernet storage): it
holds the user id, the session's id (its row in the store: signing out deletes it, so a copy of
the cookie is refused too; ``services.sessions``), a stamp of the password hash (a new password
ends old sessions; so does disabling the user, checked on every request), a per-session CSRF
token and one-shot messages. The cookie is HttpOnly, SameSite=Lax and Secure when the node is
served over https. ``/api``, ``/federation`` and the public endpoints never touch the session;
bearer-token auth there is unchanged.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import os
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aiohttp_jinja2
import structlog
from aiohttp import web
from aiohttp_session import Session, get_session, new_session

from ...config import ConfigError, NodeConfig
from ...errors import NodeError
from ...local_secret import load_or_create_secret
from ...services import passwords, sessions
from ...services.throttle import LoginThrottle
from ...services.users import active_user
from ...store.tables import User
from ..keys import NODE_KEY
from ..problems import answer_for
from .i18n import LANGS, N_, Translator, pick_lang
from .provider_link import ProviderLink

log = structlog.get_logger("barnplan.pages")

SESSION_COOKIE = "barnplan_session"
LANG_COOKIE = "barnplan_lang"
SESSION_KEY_FILE = "web-session.key"
CSRF_FIELD = "csrf_token"
PUBLIC_PATHS = frozenset(
    {"/login", "/login/oidc", "/login/oidc/callback", "/familj", "/familj/logga-in"}
    | {"/familj/login/callback"}
)
FAMILY_PREFIX = "/familj"  # the family's pages: signed out, they start at /familj
# an unmatched path under these never gets an HTML page, whatever the client accepts
MACHINE_PREFIXES = ("/api/", "/federation/", "/.well-known/", "/static/")
PROFESSIONALS = ("professional", "lead")
TRUSTED_PROXIES_ENV = "BARNPLAN_WEB_TRUSTED_PROXIES"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class PageSettings:
    """Settings of the pages. Defaults: Secure cookies iff ``node.base_url`` is https (override
    with ``BARNPLAN_WEB_COOKIE_SECURE=true|false``); sessions last ``auth.session_lifetime_s``
    and end after ``auth.idle_timeout_s`` unused; the password form only with
    ``auth.passwords``; the session key is ``web-session.key`` in the node directory, made on
    first start (shared by every process serving the same directory); a client's address is
    the connection's peer unless that is one of the reverse proxies named in
    ``BARNPLAN_WEB_TRUSTED_PROXIES`` (``client_address``; none by default)."""

    cookie_secure: bool
    session_key: bytes
    session_max_age_s: int = 8 * 3600
    idle_timeout_s: int = 3600
    passwords: bool = True
    trusted_proxies: tuple[Network, ...] = ()


def load_or_create_session_key(directory: Path) -> bytes:
    """The pages' cookie key, ``web-session.key`` in the node directory, created once."""
    return load_or_create_secret(directory / SESSION_KEY_FILE)


def settings_for(config: NodeConfig, env: dict[str, str] | None = None) -> PageSettings:
    env = dict(os.environ) if env is None else env
    choice = env.get("BARNPLAN_WEB_COOKIE_SECURE", "auto").strip().lower()
    base_url = config.node.base_url
    secure = base_url.startswith("https://") if choice in ("", "auto") else choice == "true"
    return PageSettings(
        cookie_secure=secure,
        session_key=load_or_create_session_key(config.directory),
        session_max_age_s=config.auth.session_lifetime_s,
        idle_timeout_s=config.auth.idle_timeout_s,
        passwords=config.auth.passwords,
        trusted_proxies=parse_networks(env.get(TRUSTED_PROXIES_ENV, "")),
    )


def parse_networks(text: str) -> tuple[Network, ...]:
    """Addresses or networks separated by commas or spaces (``127.0.0.1, 10.0.0.0/8``); a
    ``ConfigError`` naming the variable otherwise, so ``serve`` stops with one line."""
    networks = []
    for item in text.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigError(
                f"{TRUSTED_PROXIES_ENV}: {item!r} is not an IP address or network "
                "(deploy/CONFIG.md, 'Web sign-in')"
            ) from None
    return tuple(networks)


def client_address(request: web.Request, trusted: tuple[Network, ...]) -> str:
    """The address a request came from, as far as this node can know it.

    The connection's peer address, unless that peer is a trusted reverse proxy: then the
    nearest address in ``X-Forwarded-For`` (read from the right, where each proxy appends the
    address it was connected from) that is not itself a trusted proxy. Entries further left
    were written by the client and are never believed. Without trusted proxies the header is
    ignored, as a client can write anything into it."""
    peer = request.remote or ""
    if not _trusted(peer, trusted):
        return peer
    hops = [
        hop.strip()
        for line in request.headers.getall("X-Forwarded-For", [])
        for hop in line.split(",")
    ]
    for hop in reversed(hops):
        if not _is_address(hop):
            return peer  # a trusted proxy would not write this: do not guess
        if not _trusted(hop, trusted):
            return hop
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, trusted: tuple[Network, ...]) -> bool:
    if not trusted or not _is_address(address):
        return False
    ip = ipaddress.ip_address(address)
    return any(ip in network for network in trusted)


@dataclass
class PageState:
    """Per-app settings and memory of the pages: the login limits (their counts are in the
    store, shared by every process) and the last log check."""

    settings: PageSettings
    provider: ProviderLink | None = None  # the staff's (``[oidc]``)
    residents: ProviderLink | None = None  # the family's e-identification (``[residents]``)
    resources: set[web.AbstractResource] = field(default_factory=set)
    throttle: LoginThrottle = field(default_factory=LoginThrottle)
    last_verify: dict[str, Any] | None = None


PAGE_STATE = web.AppKey("page_state", PageState)
PAGE_USER = web.RequestKey("page_user", User)
PAGE_LANG = web.RequestKey("page_lang", str)


def is_page(request: web.Request) -> bool:
    """Is this request for an HTML page? Routes the pages registered are; every other route
    (the API, the federation endpoint, anything added elsewhere) is not. An unmatched path is
    a page (an HTML 404) only for a browser asking for HTML outside the machine prefixes."""
    match = request.match_info
    if match.http_exception is None:
        return match.route.resource in request.app[PAGE_STATE].resources
    return "text/html" in request.headers.get("Accept", "") and not request.path.startswith(
        MACHINE_PREFIXES
    )


def lang_of(request: web.Request) -> str:
    return request.get(PAGE_LANG) or "sv"


def translator(request: web.Request) -> Translator:
    return Translator(lang_of(request))


def user_of(request: web.Request) -> User:
    return request[PAGE_USER]


def csrf_token(session: Session) -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


async def csrf_valid(request: web.Request, session: Session) -> bool:
    expected = session.get("csrf")
    if not isinstance(expected, str):
        return False
    given = request.headers.get("X-CSRF-Token", "")
    if not given and request.content_type in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        form = await request.post()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else ""
    return hmac.compare_digest(given.encode(), expected.encode())


def flash(session: Session, text: str, kind: str = "info") -> None:
    session["flash"] = [*session.get("flash", []), [kind, text]]


async def start_session(
    request: web.Request,
    user: User,
    id_token: str | None = None,
    provider_sid: str | None = None,
) -> None:
    """A fresh session for a signed-in user (a new cookie, a new session row, a new CSRF
    token). ``id_token``, ``provider_sid``: the provider's, when the user signed in through it."""
    node = request.app[NODE_KEY]
    max_age = request.app[PAGE_STATE].settings.session_max_age_s
    session = await new_session(request)
    session["uid"] = user.user_id
    session["sid"] = await sessions.open_session(
        node.engine, user.user_id, node.clock.now(), max_age, id_token, provider_sid
    )
    session["stamp"] = passwords.session_stamp(user)
    csrf_token(session)


async def session_user(request: web.Request, session: Session) -> User | None:
    uid, sid = session.get("uid"), session.get("sid")
    if not isinstance(uid, str):
        return None
    node = request.app[NODE_KEY]
    # a disabled user's sessions end on their next request, like those of a changed password;
    # a signed-out session (its row deleted) ends in every browser that holds a copy of it
    user = await active_user(node.engine, uid)
    if (
        user is None
        or session.get("stamp") != passwords.session_stamp(user)
        or not isinstance(sid, str)
        or not await sessions.is_open(
            node.engine, sid, uid, node.clock.now(), request.app[PAGE_STATE].settings.idle_timeout_s
        )
    ):
        session.invalidate()
        return None
    return user


async def end_session(request: web.Request) -> str | None:
    """Sign the request's session out: its row goes (every copy of the cookie is refused from
    now on) and the browser is told to drop the cookie. Returns the provider's ID token if the
    session was signed in through the provider (its logout is next)."""
    session = await get_session(request)
    sid = session.get("sid")
    id_token = None
    if isinstance(sid, str):
        engine = request.app[NODE_KEY].engine
        id_token = await sessions.provider_id_token(engine, sid)
        await sessions.end_session(engine, sid)
    session.invalidate()
    return id_token


def home_for(user: User) -> str:
    return {"operator": "/ops", "resident": FAMILY_PREFIX}.get(user.role, "/plans")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


async def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    """Render a page with the shared context: language, user, CSRF token, messages, node."""
    session = await get_session(request)
    node = request.app[NODE_KEY]
    lang = lang_of(request)
    other = "en" if lang == "sv" else "sv"
    t = Translator(lang)
    base = {
        **t.callables(),
        "t": t,
        "lang": lang,
        "other_lang": other,
        # from the parsed path, and only if it is a local one: a 404 page at "//evil.example/x"
        # must not link there
        "other_lang_url": f"{local_path(request.path) or '/'}?lang={other}",
        "user": request.get(PAGE_USER),
        "csrf_token": csrf_token(session),
        "messages": session.pop("flash", []),
        "node_id": node.node_id,
        "agency_name": node.config.node.agency_name,
        "path": request.path,
    }
    return aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)


# an error page's title and text by status (msgids); a status not listed reads as 500's title
ERROR_TITLES = {
    403: N_("Åtkomst nekad"),
    404: N_("Sidan finns inte"),
    405: N_("Metoden stöds inte"),
    409: N_("Det gick inte"),
}
ERROR_TEXTS = {
    403: N_("Du har inte behörighet till den här sidan."),
    404: N_("Det finns ingen sådan sida här."),
}
SERVER_ERROR_TITLE = N_("Något gick fel")


async def error_page(
    request: web.Request, status: int, text: str | None = None, detail: str | None = None
) -> web.Response:
    """The error page: ``text`` a msgid to translate, ``detail`` a sentence already in the
    page's language; neither given, the status's own text (or none)."""
    t = translator(request)
    message = text or ERROR_TEXTS.get(status)
    shown = detail or (t.gettext(message) if message else "")
    title = t.gettext(ERROR_TITLES.get(status, SERVER_ERROR_TITLE))
    return await render(
        request, "error.html", {"title": title, "text": shown, "status": status}, status
    )


async def service_error_page(request: web.Request, exc: NodeError) -> web.Response:
    """A node error as a page: its status from the one mapping (``web/problems.py``), its
    sentence in the page's language."""
    status, _title = answer_for(exc)
    return await error_page(request, status, detail=translator(request).problem(exc))


def roles(*allowed: str) -> Callable[[Handler], Handler]:
    """Only the given roles may open the page; anyone else gets the 403 page. A node error the
    page's service raises becomes its error page here (``service_error_page``), once for every
    page, so a handler only catches what it answers differently (a form shown again)."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            user = request.get(PAGE_USER)
            if user is None or user.role not in allowed:
                return await error_page(request, 403)
            try:
                return await handler(request)
            except NodeError as exc:
                return await service_error_page(request, exc)

        return checked

    return wrap


SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}  # nosniff and no-store: every response's, in ``web.headers``


def content_security_policy(provider_origins: tuple[str, ...] = ()) -> str:
    """Pages load and post only to this node; with a provider, signing in or out (a form
    posted here) may also end at the provider, which browsers check against form-action."""
    form_action = " ".join(["'self'", *provider_origins])
    return (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        f"form-action {form_action}; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    )


@web.middleware
async def pages_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """For HTML pages: language, signed-in user, CSRF on every POST, HTML error pages."""
    if not is_page(request):
        return await handler(request)
    state = request.app[PAGE_STATE]
    asked = request.query.get("lang")
    request[PAGE_LANG] = pick_lang(asked, request.cookies.get(LANG_COOKIE))
    try:
        response = await _guarded(request, handler)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = await error_page(request, exc.status)
    except Exception as exc:
        log.error("pages.unhandled", path=request.path, error=exc.__class__.__name__)
        response = await error_page(request, 500, detail="")
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    origins = state.provider.form_origins() if state.provider else ()
    response.headers.setdefault("Content-Security-Policy", content_security_policy(origins))
    if asked in LANGS:
        response.set_cookie(
            LANG_COOKIE,
            asked,
            max_age=365 * 24 * 3600,
            path="/",
            httponly=True,
            samesite="Lax",
            secure=state.settings.cookie_secure,
        )
    return response


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    problem = request.match_info.http_exception
    if problem is not None:
        return await error_page(request, problem.status)
    session = await get_session(request)
    user = await session_user(request, session)
    if user is not None:
        request[PAGE_USER] = user
    if request.method == "POST" and not await csrf_valid(request, session):
        return await error_page(
            request,
            403,
            N_(
                "Formuläret saknade en giltig säkerhetskod (CSRF) och skickades inte. Inget har "
                "sparats. Ladda om sidan och försök igen."
            ),
        )
    if user is None and request.path not in PUBLIC_PATHS:
        if request.method == "GET" and request.path.startswith(FAMILY_PREFIX + "/"):
            return see_other(FAMILY_PREFIX)
        if request.method == "GET":
            return see_other(f"/login?next={_quote(request.path_qs)}")
        return await error_page(request, 403)
    return await handler(request)


def _quote(path: str) -> str:
    return quote(path, safe="")


MAX_DECODINGS = 4  # layers of percent-encoding undone before a value is given up on


def local_path(value: str | None) -> str | None:
    r"""``value`` as a path on this site, or None: only such a path may be a post-login
    destination (no open redirects) or a link built from a request's path.

    Parsed, not pattern-matched: no scheme, no host, a path that begins with exactly one "/".
    Browsers read a Location leniently (they drop the tab of "/\t/evil.example" and take
    "/\evil.example" as "//evil.example"), so a backslash, whitespace or any control or
    format character is refused wherever it is, and so is a host, also once the value is
    percent-decoded, however often. The path is returned re-assembled from its parts and
    percent-encoded, so it is always a valid header value."""
    if not value:
        return None
    layers = [value]
    while "%" in layers[-1]:
        decoded = unquote(layers[-1])
        if decoded == layers[-1]:
            break
        if len(layers) > MAX_DECODINGS:
            return None  # still encoded after that many layers: nobody means that
        layers.append(decoded)
    for layer in layers:
        parts = urlsplit(layer)
        if (
            any(_unsafe(char) for char in layer)
            or parts.scheme
            or parts.netloc
            or not layer.startswith("/")
            or layer.startswith("//")  # also "///x", which urlsplit reads as an empty host
        ):
            return None
    parts = urlsplit(value)
    local = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    return quote(local, safe="/?#&=%:@!$'()*+,;~-._")


def _unsafe(char: str) -> bool:
    """Whitespace, a backslash, or a control, format, separator or unassigned character."""
    return char.isspace() or char == "\\" or unicodedata.category(char)[0] in "CZ"
