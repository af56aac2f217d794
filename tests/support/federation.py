"""In-process nodes on real loopback sockets, each with its own store, keys and clock.

Servers are real aiohttp servers on 127.0.0.1; requests between them are real HTTP. Running them
in the test's event loop lets tests share an injected clock and inspect each node's store.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node.config import load_config
from node.runtime import Node, open_node
from node.services.peers import fetch_peer, trust_peer
from node.services.setup import init_node
from node.services.users import add_user
from node.web.app import create_app
from protocol.clock import Clock
from tests.support.nodes import free_port

SCHOOL = ("skola.test.se", "Testskolan, elevhälsa", "school")
SOCIAL = ("ifo.test.se", "Testkommun IFO", "social_services")
BUP = ("bup.test.se", "Testregionen BUP", "child_psychiatry")
POLICE = ("polis.test.se", "Testpolisen", "police")


@dataclass
class RunningNode:
    node: Node
    runner: web.AppRunner | None
    port: int
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def node_id(self) -> str:
        return self.node.node_id

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def start(self) -> None:
        if self.runner is None:
            self.runner = web.AppRunner(create_app(self.node), access_log=None)
            await self.runner.setup()
            await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def api(
        self,
        method: str,
        path: str,
        user: str = "lead",
        json: Any = None,
        session: aiohttp.ClientSession | None = None,
    ) -> tuple[int, Any]:
        """Call this node's /api/v1 as one of its users, over HTTP."""
        headers = {"Authorization": f"Bearer {self.tokens[user]}"}
        own = session is None
        session = session or aiohttp.ClientSession()
        try:
            async with session.request(
                method, self.url + "/api/v1" + path, json=json, headers=headers
            ) as resp:
                body = await resp.json(content_type=None)
                return resp.status, body
        finally:
            if own:
                await session.close()


async def start_node(
    base: Path,
    spec: tuple[str, str, str],
    store: tuple[str, str],
    clock: Clock,
    configure: Callable[[Path, int], None] | None = None,
    host_name: str = "127.0.0.1",
) -> RunningNode:
    """A node serving on 127.0.0.1 with users lead, prof and ops. ``configure(directory,
    port)`` may change its barnplan.toml before it opens; ``host_name`` is the name in its base
    URL (browsers keep cookies per host, not per port: two nodes one browser signs in to need
    two names)."""
    node_id, name, kind = spec
    port = free_port()
    directory = base / node_id
    await init_node(
        directory,
        node_id=node_id,
        agency_name=name,
        agency_kind=kind,
        base_url=f"http://{host_name}:{port}",
        host="127.0.0.1",
        port=port,
        store_url=store[0],
        store_schema=store[1],
        clock=clock,
    )
    if configure is not None:
        configure(directory, port)
    node = await open_node(load_config(directory), clock)
    running = RunningNode(node, None, port)
    for user_id, role in (("lead", "lead"), ("prof", "professional"), ("ops", "operator")):
        _, token = await add_user(node.engine, user_id, f"Test {role}", role, clock.now())
        running.tokens[user_id] = token
    await running.start()
    # ready as a real node is: after its start-up catch-up, which then ran with no peers yet
    # (peers are added by connect_all), so it cannot still be running when a test begins
    await asyncio.wait_for(node.caught_up.wait(), timeout=30)
    return running


async def connect_all(nodes: list[RunningNode]) -> None:
    """Every node fetches, verifies and trusts every other node's document (as peers add)."""
    async with aiohttp.ClientSession() as session:
        for node in nodes:
            for other in nodes:
                if other is not node:
                    fetched = await fetch_peer(session, other.url)
                    await trust_peer(node.node.engine, fetched, node.node_id, node.node.clock.now())
            await node.node.reload_peers()


async def start_federation(
    base: Path, specs: list[tuple[str, str, str]], store_factory: Any, clock: Clock
) -> list[RunningNode]:
    nodes = [await start_node(base, spec, store_factory(spec[0]), clock) for spec in specs]
    await connect_all(nodes)
    return nodes


async def stop_all(nodes: list[RunningNode]) -> None:
    for n in nodes:
        await n.stop()
        await n.node.close()


def sqlite_stores(base: Path) -> Callable[[str], tuple[str, str]]:
    """A store per node name: the SQLite file ``base/NAME.db`` (a ``store_factory`` on SQLite)."""

    def make(name: str) -> tuple[str, str]:
        return f"sqlite:///{base / (name + '.db')}", ""

    return make


@asynccontextmanager
async def federation(
    base: Path,
    specs: list[tuple[str, str, str]],
    stores: Callable[[str], tuple[str, str]],
    clock: Clock,
) -> AsyncIterator[list[RunningNode]]:
    """Nodes for ``specs`` on the stores ``stores`` makes, each trusting the others; stopped and
    closed on exit (a node the test already stopped is fine)."""
    nodes = await start_federation(base, specs, stores, clock)
    try:
        yield nodes
    finally:
        await stop_all(nodes)


def sqlite_federation(
    base: Path, specs: list[tuple[str, str, str]], clock: Clock
) -> AbstractAsyncContextManager[list[RunningNode]]:
    """``federation`` on SQLite files in ``base``."""
    return federation(base, specs, sqlite_stores(base), clock)
