"""Professionals sign in to a node's pages through their agency's OpenID provider: a real
provider (deploy/dev-provider) and real nodes on loopback; Chromium for the whole flow, an HTTP
client walking the provider's pages for the refusals. A refused sign-in creates no session and
no user."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import text

from node.config import load_config
from node.services.passwords import set_password
from node.services.users import add_user
from node.store.exchange_log import LogFilter, query_log
from protocol.clock import ManualClock
from tests.support.federation import (
    SCHOOL,
    SOCIAL,
    RunningNode,
    connect_all,
    start_node,
    stop_all,
)
from tests.support.oidc import (
    Client,
    Provider,
    configure_provider,
    sign_in_at_provider,
    sign_out_at_provider,
)

from ..browser.conftest import browser  # noqa: F401  (fixture: a real Chromium)

ROLES = {"lead": "barnplan-lead", "professional": "barnplan-staff", "operator": "barnplan-ops"}
ANNA = {"name": "Anna Samordnare", "hsa_id": "SE2321000016-A1", "groups": ["barnplan-lead"]}
BERIT = {"name": "Berit Köksdotter", "hsa_id": "SE2321000016-B2", "groups": ["kitchen"]}
OLLE = {"name": "Olle Drift", "hsa_id": "SE2321000016-O1", "groups": ["barnplan-ops"]}


@dataclass
class Setup:
    provider: Provider
    client: Client
    school: RunningNode
    social: RunningNode
    clock: ManualClock


async def start(
    base: Path,
    spec: tuple[str, str, str],
    clock: ManualClock,
    configure: Any = None,
    host_name: str = "127.0.0.1",
) -> RunningNode:
    store = (f"sqlite:///{base / (spec[0] + '.db')}", "")
    return await start_node(base, spec, store, clock, configure, host_name)


@pytest.fixture
async def setup(oidc_provider: Provider, tmp_path: Path) -> AsyncIterator[Setup]:
    """The school's node signs its staff in through the provider (roles from the groups
    claim, passwords off); social services' node is a plain peer."""
    clock = ManualClock(datetime.now(UTC))  # ID tokens carry the provider's real time
    client = oidc_provider.clients[0]
    oidc_provider.accounts.update({"anna": ANNA, "berit": BERIT, "olle": OLLE})

    def configure(directory: Path, port: int) -> None:
        client.redirect_uris.append(f"http://127.0.0.1:{port}/login/oidc/callback")
        client.post_logout_redirect_uris.append(f"http://127.0.0.1:{port}/login?out=1")
        oidc_provider.restart()
        configure_provider(
            directory,
            oidc_provider,
            client,
            subject_claim="hsa_id",
            role_claim="groups",
            roles=ROLES,
            auth={"passwords": False, "idle_timeout_s": 600},
        )

    school = await start(tmp_path, SCHOOL, clock, configure)
    social = await start(tmp_path, SOCIAL, clock)
    await connect_all([school, social])
    try:
        yield Setup(oidc_provider, client, school, social, clock)
    finally:
        await stop_all([school, social])


async def count(running: RunningNode, table: str) -> int:
    async with running.node.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def provider_round_trip(
    http: aiohttp.ClientSession, school: RunningNode, login: str
) -> tuple[str, dict[str, str]]:
    """Start at the node (by the name in its base URL), sign in at the provider; the node's
    callback URL and its query."""
    base = school.node.config.node.base_url
    async with http.get(base + "/login/oidc", allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        authorization = response.headers["Location"]
    callback = base + "/login/oidc/callback"
    return callback, await sign_in_at_provider(http, authorization, login, callback)


async def finish(
    http: aiohttp.ClientSession, callback: str, query: dict[str, str]
) -> tuple[int, str, str]:
    async with http.get(callback + "?" + urlencode(query), allow_redirects=False) as response:
        return response.status, response.headers.get("Location", ""), await response.text()


async def test_a_professional_signs_in_through_the_provider_works_and_signs_out(
    setup: Setup,
    browser: Any,  # noqa: F811
) -> None:
    school, social = setup.school, setup.social
    context = await browser.new_context(locale="sv-SE")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(school.url + "/plans")
    assert "/login" in page.url
    assert await page.locator('input[type="password"]').count() == 0  # passwords are off
    await page.get_by_role("link", name="Logga in med Testkommunens inloggning").click()
    # the provider's own login page
    await page.wait_for_url(re.compile(f"^{re.escape(setup.provider.issuer)}/"))
    await page.fill('input[name="login"]', "anna")
    await page.fill('input[name="password"]', "provider-password")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()  # the provider's consent step
    await page.wait_for_url(re.compile(f"^{re.escape(school.url)}/plans"))
    content = await page.content()
    assert "Anna Samordnare" in content and "Mina planer" in content

    # her work: a child and a plan inviting social services
    await page.goto(school.url + "/children")
    await page.get_by_label("Namn").fill("Testa Testsson")
    await page.get_by_label("Personnummer").fill("20150315-2389")
    await page.get_by_role("button", name="Lägg till barn").click()
    await page.wait_for_load_state()
    await page.goto(school.url + "/plans/new")
    option = page.locator("#child_id option", has_text="Testa Testsson")
    await page.select_option("#child_id", await option.get_attribute("value"))
    await page.get_by_label(re.compile(re.escape(social.node_id))).check()
    await page.get_by_label("Anledning till planen").fill("Oro för skolfrånvaro")
    await page.get_by_role("button", name="Skapa plan och skicka inbjudningar").click()
    await page.wait_for_url(re.compile(r"/plans/[0-9a-f-]{36}$"))
    plan_id = page.url.rsplit("/", 1)[1]

    # both nodes' exchange logs name her as the acting professional
    user_id = re.compile(rf"^{re.escape(school.node_id)}/u/sso-[0-9a-f]{{20}}$")
    for running in (school, social):
        entries = await query_log(
            running.node.engine, LogFilter(plan_id=plan_id, message_type="plan.invite")
        )
        assert entries and all(user_id.match(e["professional"] or "") for e in entries)
    # and the school's operator, signed in through the provider too, sees how she signed in
    operator = await browser.new_context(locale="sv-SE")
    ops = await operator.new_page()
    await ops.goto(school.url + "/ops/log?plan_id=" + plan_id)
    await ops.get_by_role("link", name="Logga in med Testkommunens inloggning").click()
    await ops.fill('input[name="login"]', "olle")
    await ops.fill('input[name="password"]', "provider-password")
    await ops.get_by_role("button", name="Sign-in").click()
    await ops.get_by_role("button", name="Continue").click()
    await ops.wait_for_url(re.compile(f"^{re.escape(school.url)}/ops/log"))
    log_page = await ops.content()
    assert f"inloggad via {setup.provider.issuer} · SE2321000016-A1" in log_page
    await operator.close()

    # signing out ends the node's session and the provider's
    await page.get_by_role("button", name="Logga ut").click()
    await page.wait_for_url(re.compile(f"^{re.escape(setup.provider.issuer)}/"))
    await page.get_by_role("button", name=re.compile("Yes, sign me out", re.I)).click()
    await page.wait_for_url(re.compile(f"^{re.escape(school.url)}/login\\?out=1"))
    await page.goto(school.url + "/plans")
    assert "/login" in page.url
    # the provider's session is over too: signing in asks for the login again
    await page.get_by_role("link", name="Logga in med Testkommunens inloggning").click()
    await page.wait_for_url(re.compile(f"^{re.escape(setup.provider.issuer)}/"))
    assert await page.locator('input[name="login"]').count() == 1
    await context.close()


async def test_refused_sign_ins_create_no_session_and_no_user(
    setup: Setup, http: aiohttp.ClientSession
) -> None:
    school = setup.school
    users_before = await count(school, "app_user")
    # a person whose groups grant no role
    callback, query = await provider_round_trip(http, school, "berit")
    status, _, page = await finish(http, callback, query)
    assert status == 403 and "ingen roll i barnplan" in page
    # a person the provider sends without the subject claim the node needs
    http.cookie_jar.clear()
    callback, query = await provider_round_trip(http, school, "nobody")
    status, _, page = await finish(http, callback, query)
    assert status == 403 and "skickade inte det användar-id" in page
    # a tampered state, a missing state, and an answer replayed after it was used
    http.cookie_jar.clear()
    callback, query = await provider_round_trip(http, school, "anna")
    status, _, page = await finish(http, callback, {**query, "state": query["state"] + "x"})
    assert status == 400 and "kunde inte slutföras" in page
    status, _, _ = await finish(http, callback, query)  # the pending sign-in was used up
    assert status == 400
    http.cookie_jar.clear()
    callback, query = await provider_round_trip(http, school, "anna")
    status, _, _ = await finish(http, callback, {k: v for k, v in query.items() if k != "state"})
    assert status == 400
    assert await count(school, "app_user") == users_before
    assert await count(school, "web_session") == 0
    async with http.get(school.url + "/plans", allow_redirects=False) as response:
        assert response.status == 303 and response.headers["Location"].startswith("/login")


async def test_a_replayed_code_in_another_browser_is_refused(
    setup: Setup, http: aiohttp.ClientSession
) -> None:
    school = setup.school
    callback, query = await provider_round_trip(http, school, "anna")
    status, _, _ = await finish(http, callback, query)
    assert status == 303
    sessions = await count(school, "web_session")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as other:
        status, _, page = await finish(other, callback, query)  # no sign-in started there
    assert status == 400 and "kunde inte slutföras" in page
    assert await count(school, "web_session") == sessions


async def test_passwords_off_refuses_the_password_form(
    setup: Setup, http: aiohttp.ClientSession
) -> None:
    school = setup.school
    await set_password(school.node.engine, "ops", "ett-långt-lösenord-1")
    async with http.get(school.url + "/login") as response:
        page = await response.text()
    assert 'type="password"' not in page and "/login/oidc" in page
    # even a well-formed password login, with a valid CSRF token, is refused
    callback, query = await provider_round_trip(http, school, "anna")
    await finish(http, callback, query)
    async with http.get(school.url + "/plans") as response:
        token = re.search(r'name="csrf_token" value="([^"]+)"', await response.text())
    assert token is not None
    sessions = await count(school, "web_session")
    form = {"csrf_token": token.group(1), "user_id": "ops", "password": "ett-långt-lösenord-1"}
    async with http.post(school.url + "/login", data=form, allow_redirects=False) as response:
        assert response.status == 403
        assert "Inloggning med lösenord är avstängd" in await response.text()
    assert await count(school, "web_session") == sessions


async def test_idle_sessions_end(setup: Setup, http: aiohttp.ClientSession) -> None:
    school = setup.school
    callback, query = await provider_round_trip(http, school, "anna")
    await finish(http, callback, query)
    async with http.get(school.url + "/plans", allow_redirects=False) as response:
        assert response.status == 200
    setup.clock.advance(9 * 60)  # within auth.idle_timeout_s = 600
    async with http.get(school.url + "/plans", allow_redirects=False) as response:
        assert response.status == 200
    setup.clock.advance(9 * 60)  # used 9 minutes ago: still open, and noted again
    async with http.get(school.url + "/plans", allow_redirects=False) as response:
        assert response.status == 200
    setup.clock.advance(11 * 60)
    async with http.get(school.url + "/plans", allow_redirects=False) as response:
        assert response.status == 303


async def test_provider_down_is_a_clear_page(setup: Setup, http: aiohttp.ClientSession) -> None:
    setup.provider.stop()
    async with http.get(setup.school.url + "/login/oidc", allow_redirects=False) as response:
        assert response.status == 503
        assert "svarar inte just nu" in await response.text()


async def test_pre_registered_users_only(
    oidc_provider: Provider, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """No role claim configured: only users an operator added with ``users add --subject``
    sign in, with the role given there; anyone else gets a page saying whom to ask."""
    clock = ManualClock(datetime.now(UTC))
    client = oidc_provider.clients[0]
    oidc_provider.accounts.update({"anna": ANNA, "olle": OLLE})

    def configure(directory: Path, port: int) -> None:
        client.redirect_uris.append(f"http://127.0.0.1:{port}/login/oidc/callback")
        oidc_provider.restart()
        configure_provider(directory, oidc_provider, client, subject_claim="hsa_id")

    school = await start(tmp_path, SCHOOL, clock, configure)
    try:
        await add_user(
            school.node.engine,
            "anna",
            "Anna Samordnare",
            "professional",
            clock.now(),
            (oidc_provider.issuer, "SE2321000016-A1"),
        )
        callback, query = await provider_round_trip(http, school, "anna")
        status, location, _ = await finish(http, callback, query)
        assert (status, location) == (303, "/plans")  # as professional, whatever her groups
        async with http.get(school.url + "/plans") as response:
            assert "Anna Samordnare" in await response.text()
            assert "Yrkesverksam" in await response.text()
        http.cookie_jar.clear()
        users = await count(school, "app_user")
        callback, query = await provider_round_trip(http, school, "olle")
        status, _, page = await finish(http, callback, query)
        assert status == 403 and "inte registrerad som användare här" in page
        assert await count(school, "app_user") == users
    finally:
        await stop_all([school])


async def test_signing_out_at_the_provider_ends_sessions_on_every_node(
    oidc_provider: Provider, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Back-channel logout: signing out on one node ends the provider's session, and the
    provider tells the other node, whose session for the same sign-in ends too."""
    clock = ManualClock(datetime.now(UTC))
    oidc_provider.accounts.update({"anna": ANNA})
    clients: list[Client] = []

    def configure(directory: Path, port: int) -> None:
        base = load_config(directory).node.base_url
        client = Client(
            f"node-{port}",
            f"secret-{port}",
            [base + "/login/oidc/callback"],
            [base + "/login?out=1"],
            base + "/login/oidc/backchannel-logout",
        )
        clients.append(client)
        oidc_provider.clients.append(client)
        oidc_provider.restart()
        configure_provider(
            directory,
            oidc_provider,
            client,
            subject_claim="hsa_id",
            role_claim="groups",
            roles=ROLES,
        )

    school = await start(tmp_path, SCHOOL, clock, configure)
    social = await start(tmp_path, SOCIAL, clock, configure, host_name="localhost")
    try:
        for running in (school, social):  # one provider session, two node sessions
            callback, query = await provider_round_trip(http, running, "anna")
            status, _, _ = await finish(http, callback, query)
            assert status == 303
        assert await count(school, "web_session") == await count(social, "web_session") == 1
        social_url = social.node.config.node.base_url
        async with http.get(social_url + "/plans", allow_redirects=False) as response:
            assert response.status == 200
        async with http.get(school.url + "/plans") as response:
            token = re.search(r'name="csrf_token" value="([^"]+)"', await response.text())
        assert token is not None
        logout = {"csrf_token": token.group(1)}
        async with http.post(school.url + "/logout", data=logout, allow_redirects=False) as out:
            assert out.status == 303
            at_provider = out.headers["Location"]
        assert at_provider.startswith(oidc_provider.issuer)
        back = await sign_out_at_provider(http, at_provider)
        assert back == school.url + "/login?out=1"
        assert await count(school, "web_session") == 0
        assert await count(social, "web_session") == 0  # the provider told social services
        async with http.get(social_url + "/plans", allow_redirects=False) as response:
            assert response.status == 303 and response.headers["Location"].startswith("/login")
    finally:
        await stop_all([school, social])


async def test_a_forged_backchannel_logout_ends_nothing(
    setup: Setup, http: aiohttp.ClientSession
) -> None:
    school = setup.school
    callback, query = await provider_round_trip(http, school, "anna")
    await finish(http, callback, query)
    forged = jwt.encode(
        {"alg": "HS256"},
        {
            "iss": setup.provider.issuer,
            "aud": setup.client.client_id,
            "sub": "anna",
            "iat": int(setup.clock.now().timestamp()),
            "jti": "x",
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        },
        OctKey.import_key(setup.client.client_secret.encode()),
    )
    url = school.url + "/login/oidc/backchannel-logout"
    async with aiohttp.ClientSession() as provider_side:  # no cookies: not the browser
        for body in ({"logout_token": forged}, {"logout_token": "not-a-jwt"}, {}):
            async with provider_side.post(url, data=body) as response:
                assert response.status == 400
                assert (await response.json())["error"] == "invalid_request"
    assert await count(school, "web_session") == 1
