"""Real nodes with web logins, and a small cookie-keeping HTTP client for the pages.

Each node of ``tests.support.federation`` gets its users (lead, prof, ops) a password here, so
tests can sign in on every node's own pages like the people at each agency would. A node can
also get a second instance (another app with its own store connections and port, as a second
``barnplan serve`` process on the same store) and be restarted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from yarl import URL

from node.cli.demo_family import CSRF
from node.config import load_config
from node.runtime import open_node
from node.services.passwords import set_password
from protocol.clock import Clock
from tests.conftest import StoreFactory
from tests.support.federation import (
    RunningNode,
    free_port,
    sqlite_stores,
    start_federation,
    stop_all,
)

PASSWORD = "rätt-häst-batteri-1"
CHILD_PNR = "20150315-2389"  # synthetic test identity (valid Luhn)
CHILD_NAME = "Testa Testsson"


@asynccontextmanager
async def web_federation(
    base: Path, specs: list[tuple[str, str, str]], clock: Clock
) -> AsyncIterator[list[RunningNode]]:
    """Nodes on SQLite, each trusting the others, every user with ``PASSWORD``."""

    async with web_federation_on(base, specs, sqlite_stores(base), clock) as nodes:
        yield nodes


@asynccontextmanager
async def web_federation_on(
    base: Path, specs: list[tuple[str, str, str]], stores: StoreFactory, clock: Clock
) -> AsyncIterator[list[RunningNode]]:
    """``web_federation`` on the stores ``stores`` makes (SQLite files or PostgreSQL schemas)."""
    nodes = await start_federation(base, specs, stores, clock)
    try:
        for running in nodes:
            for user in running.tokens:
                await set_password(running.node.engine, user, PASSWORD)
        yield nodes
    finally:
        await stop_all(nodes)


@asynccontextmanager
async def second_instance(running: RunningNode) -> AsyncIterator[RunningNode]:
    """Another instance of ``running``'s node, serving the same store on a port of its own:
    what a second ``barnplan serve`` of the same node directory is (the same config, keys and
    web session key; nothing shared in memory)."""
    node = await open_node(load_config(running.node.config.directory), running.node.clock)
    twin = RunningNode(node, None, free_port(), dict(running.tokens))
    try:
        await twin.start()
        yield twin
    finally:
        await twin.stop()
        await node.close()


async def restart(running: RunningNode) -> None:
    """Stop ``running``'s server and close its node, then open and serve it again on the same
    port: all it kept in memory is gone."""
    clock = running.node.clock
    await running.stop()
    await running.node.close()
    running.node = await open_node(load_config(running.node.config.directory), clock)
    await running.start()


class PageClient:
    """A browser-like client: keeps cookies, reads the CSRF token from the last page."""

    def __init__(self, node: RunningNode, headers: dict[str, str] | None = None) -> None:
        self.node = node
        self.session = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8", **(headers or {})},
        )
        self.csrf = ""
        self.last = ""

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.node.url + path, allow_redirects=True) as resp:
            text = await resp.text()
        self._remember(text)
        return resp.status, text

    async def get_exact(self, path: str) -> tuple[int, str]:
        """GET ``path`` exactly as given, not re-encoded (as a crafted link arrives); no
        redirect is followed."""
        url = URL(self.node.url + path, encoded=True)
        async with self.session.get(url, allow_redirects=False) as resp:
            text = await resp.text()
            self.response = resp
        self._remember(text)
        return resp.status, text

    @property
    def response_location(self) -> str:
        """The ``Location`` of the last response (a redirect's target)."""
        return self.response.headers["Location"]

    async def post(
        self, path: str, data: Any, csrf: bool | str = True, follow: bool = True
    ) -> tuple[int, str]:
        fields = list(data.items()) if isinstance(data, dict) else list(data)
        if csrf is True:
            fields.append(("csrf_token", self.csrf))
        elif isinstance(csrf, str):
            fields.append(("csrf_token", csrf))
        async with self.session.post(
            self.node.url + path, data=fields, allow_redirects=follow
        ) as resp:
            text = await resp.text()
            self.response = resp
        self._remember(text)
        return resp.status, text

    def _remember(self, text: str) -> None:
        self.last = text
        match = CSRF.search(text)
        if match:
            self.csrf = match.group(1)

    async def login(self, user: str, password: str = PASSWORD) -> tuple[int, str]:
        await self.get("/login")
        return await self.post("/login", {"user_id": user, "password": password})


async def add_child(node: RunningNode, name: str = CHILD_NAME, pnr: str = CHILD_PNR) -> str:
    status, body = await node.api("POST", "/children", "prof", {"name": name, "personnummer": pnr})
    assert status == 201, body
    return str(body["child_id"])


async def log_in(page: Any, node: RunningNode, user: str, password: str = PASSWORD) -> None:
    """Sign ``user`` in on ``node``'s login page as a person would (labels, button)."""
    await page.goto(node.url + "/login")
    await page.get_by_label("Användar-id").fill(user)
    await page.get_by_label("Lösenord").fill(password)
    await page.get_by_role("button", name="Logga in").click()
    await page.wait_for_load_state()
    assert "/login" not in page.url, await page.content()


async def signed_in(browser: Any, node: RunningNode, user: str) -> Any:
    """A page in a browser context of its own (one person: cookies are per host, not per
    port), signed in on ``node`` at a laptop's width."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await log_in(page, node, user)
    return page
