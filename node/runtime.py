"""The one place that wires a node's parts: config, clock, store, keys, peers and HTTP client.

Tests build a ``Node`` with their own clock or store; nothing here is module-level state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock, SystemClock

from .config import NodeConfig
from .identity import Identity, load_identity
from .keyring import PeerKeyRing
from .store import peers as peer_store
from .store.engine import create_engine, migrate


@dataclass
class Node:
    config: NodeConfig
    clock: Clock
    engine: AsyncEngine
    identity: Identity
    keyring: PeerKeyRing = field(default_factory=PeerKeyRing)
    http: aiohttp.ClientSession | None = None

    @property
    def node_id(self) -> str:
        return self.config.node.id

    async def reload_peers(self) -> None:
        self.keyring.load(await peer_store.list_peers(self.engine))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()
            self.http = None
        await self.engine.dispose()


async def open_node(
    config: NodeConfig, clock: Clock | None = None, *, run_migrations: bool = True
) -> Node:
    """Open the store (migrating it to head), load keys and peers."""
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        if run_migrations:
            await migrate(engine)
        identity = load_identity(config, await peer_store.own_keys(engine))
        node = Node(config=config, clock=clock or SystemClock(), engine=engine, identity=identity)
        await node.reload_peers()
    except BaseException:
        await engine.dispose()
        raise
    return node
