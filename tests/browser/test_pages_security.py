"""The pages against an attacker, over real HTTP: where a login may send the browser, what a
session cookie copied before signing out is worth, and links built from a hostile path."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from yarl import URL

from protocol.clock import ManualClock
from tests.conftest import StoreFactory
from tests.support.federation import SCHOOL, RunningNode

from .support import (
    PASSWORD,
    PageClient,
    restart,
    second_instance,
    web_federation,
    web_federation_on,
)

NEXT_FIELD = re.compile(r'name="next" value="([^"]*)"')
LANG_LINK = re.compile(r'class="lang-switch" href="([^"]*)"')


@pytest.fixture
async def school(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[RunningNode]:
    async with web_federation_on(tmp_path, [SCHOOL], store_factory, clock) as (node,):
        yield node


@pytest.fixture
async def browser(school: RunningNode) -> AsyncIterator[PageClient]:
    client = PageClient(school)
    try:
        yield client
    finally:
        await client.close()


def is_local(location: str) -> bool:
    """Does a browser stay on this site when it follows ``location``? No scheme, no host, one
    leading slash, and nothing a browser would drop or turn into a slash on the way."""
    parts = urlsplit(location)
    return (
        not parts.scheme
        and not parts.netloc
        and location.startswith("/")
        and not location.startswith("//")
        and not any(c.isspace() or c == "\\" or ord(c) < 0x20 for c in location)
    )


# --- where login sends the browser -----------------------------------------------------------

OFF_SITE = [
    "/%09/evil.example/x",  # a tab once the query is decoded: Chromium reads //evil.example/x
    "/%0A/evil.example/x",  # a newline: the old redirect failed with a traceback (500)
    "/%0D%0ASet-Cookie:%20x=1",  # header injection
    "/%5Cevil.example/x",  # a backslash, which browsers take for a slash
    "/%2F/evil.example/x",  # "//evil.example/x" once decoded
    "/%252F%252Fevil.example",  # the same, percent-encoded once more
    "//evil.example/x",
    "///evil.example/x",
    "https://evil.example/x",
    "/%E2%80%AEx",  # a right-to-left override
]


@pytest.fixture
async def school_on_sqlite(tmp_path: Path, clock: ManualClock) -> AsyncIterator[RunningNode]:
    """For what does not depend on the store."""
    async with web_federation(tmp_path, [SCHOOL], clock) as (node,):
        yield node


async def sign_in_via(client: PageClient, login_path: str) -> str:
    """Open ``login_path`` exactly as a (crafted) link gives it, sign in with the form it shows
    (its hidden ``next`` as the page put it there) and return where the node sends the browser."""
    status, page = await client.get_exact(login_path)
    if status == 303:  # sent to sign in first
        status, page = await client.get_exact(client.response_location)
    carried = NEXT_FIELD.search(page)
    assert status == 200 and carried is not None, page[:300]
    status, _ = await client.post(
        "/login",
        {"user_id": "lead", "password": PASSWORD, "next": html.unescape(carried.group(1))},
        follow=False,
    )
    assert status == 303
    return client.response.headers["Location"]


async def test_login_sends_the_browser_to_a_local_page_only(school_on_sqlite: RunningNode) -> None:
    """The attack as a phishing link carries it: ``/login?next=...`` exactly as given (not
    re-encoded), posted back by the user in the login form's hidden field."""
    for raw_next in OFF_SITE:
        client = PageClient(school_on_sqlite)
        try:
            location = await sign_in_via(client, f"/login?next={raw_next}")
        finally:
            await client.close()
        assert location == "/plans", (raw_next, location)  # the lead's home, nothing else
    # a local page the browser was sent to sign in from is still where it returns
    client = PageClient(school_on_sqlite)
    try:
        assert await sign_in_via(client, "/children?lang=en") == "/children?lang=en"
    finally:
        await client.close()


async def test_the_language_link_of_a_page_at_a_hostile_path_stays_on_the_site(
    school_on_sqlite: RunningNode,
) -> None:
    client = PageClient(school_on_sqlite)
    try:
        status, page = await client.get_exact("//evil.example/x")
    finally:
        await client.close()
    link = LANG_LINK.search(page)
    assert status == 404 and link is not None
    href = html.unescape(link.group(1))
    assert is_local(href) and "evil.example" not in href, href


# --- signing out ends the session on the server ----------------------------------------------


def session_cookie(client: PageClient, school: RunningNode) -> str:
    """The session cookie as the browser holds it: what an attacker would copy."""
    morsel = client.session.cookie_jar.filter_cookies(URL(school.url))["barnplan_session"]
    return f"barnplan_session={morsel.coded_value}"


async def get_with_cookie(url: str, cookie: str) -> tuple[int, str]:
    """GET ``url`` from another machine holding only the copied cookie."""
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as other,
        other.get(url, headers={"Cookie": cookie}, allow_redirects=False) as resp,
    ):
        return resp.status, await resp.text()


async def test_a_session_cookie_copied_before_logout_is_refused_after_it(
    browser: PageClient, school: RunningNode
) -> None:
    await browser.login("lead")
    status, page = await browser.get("/plans")
    assert status == 200 and "Mina planer" in page
    copied = session_cookie(browser, school)
    assert (await get_with_cookie(school.url + "/plans", copied))[0] == 200  # the copy works
    elsewhere = PageClient(school)  # the same user in another browser
    try:
        await elsewhere.login("lead")
        status, page = await browser.post("/logout", {})
        assert status == 200 and "Du är utloggad." in page
        status, _ = await get_with_cookie(school.url + "/plans", copied)
        assert status == 303  # sent to sign in: the copy is worth nothing now
        async with second_instance(school) as twin:  # nor at another process on the store
            assert (await get_with_cookie(twin.url + "/plans", copied))[0] == 303
        await restart(school)  # nor after a restart
        assert (await get_with_cookie(school.url + "/plans", copied))[0] == 303
        # only that session ended: the user's other browser is still signed in
        status, page = await elsewhere.get("/plans")
        assert status == 200 and "Mina planer" in page
    finally:
        await elsewhere.close()


async def test_a_session_signed_in_at_one_instance_works_at_another_on_the_same_store(
    browser: PageClient, school: RunningNode
) -> None:
    """Sessions in the store still work across processes (the node behind a proxy that spreads
    requests), and signing out at one instance ends the session at the other."""
    await browser.login("prof")
    copied = session_cookie(browser, school)
    async with second_instance(school) as twin:
        status, page = await get_with_cookie(twin.url + "/plans", copied)
        assert status == 200 and "Mina planer" in page
        await browser.post("/logout", {})
        assert (await get_with_cookie(twin.url + "/plans", copied))[0] == 303
