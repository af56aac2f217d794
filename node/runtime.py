"""The one place that wires a node's parts: config, clock, store, keys, peers, log and clients.

Tests build a ``Node`` with their own clock or store; nothing here is module-level state.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock, SystemClock

from .config import NodeConfig
from .identity import Identity, load_identity
from .keyring import PeerKeyRing
from .metrics import Metrics
from .services.handlers import HANDLERS
from .services.inbound import Inbound
from .services.outbound import PeerClient
from .services.release_cache import ReleaseCache
from .services.revocation import Outbox, catch_up
from .services.seen import PersistentSeenIds
from .store import peers as peer_store
from .store.engine import create_engine, migrate, sqlite_sync_twin
from .store.exchange_log import ExchangeLog
from .store.schema_check import require_expected_schema
from .tls import client_ssl
from .version import current_build

CONTACT_WRITE_INTERVAL = timedelta(minutes=1)  # how stale a peer's stored last contact may be


@dataclass
class Node:
    config: NodeConfig
    clock: Clock
    engine: AsyncEngine
    identity: Identity
    keyring: PeerKeyRing = field(default_factory=PeerKeyRing)
    seen: PersistentSeenIds = field(default_factory=PersistentSeenIds)
    http: aiohttp.ClientSession | None = None
    last_contact: dict[str, datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.sync_engine = sqlite_sync_twin(self.engine)
        self.exchange_log = ExchangeLog(self.engine, self.clock.now, self.sync_engine)
        self.peers = PeerClient(self)
        self.inbound = Inbound(self, HANDLERS)
        self.outbox = Outbox(self)
        self.build = current_build()
        self.metrics = Metrics(self.build)
        self.release_cache = ReleaseCache()
        self.caught_up = asyncio.Event()
        self._background: asyncio.Task[None] | None = None
        self._peers_loaded_at = 0.0
        self._contact_written: dict[str, datetime] = {}

    def release_reader(self) -> Any:
        """SQLite: the raw sqlite3 connection the release decision's few indexed reads use on
        the event loop thread (the exchange log's ``loop_connection``: its own commits leave
        its page cache valid). None on PostgreSQL."""
        return self.exchange_log.loop_connection()

    @property
    def node_id(self) -> str:
        return self.config.node.id

    def http_session(self) -> aiohttp.ClientSession:
        """The node's client session, created on first use inside the running loop."""
        if self.http is None or self.http.closed:
            timeout = aiohttp.ClientTimeout(total=self.config.protocol.request_timeout_s)
            connector = aiohttp.TCPConnector(ssl=self.client_ssl())
            self.http = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self.http

    def client_ssl(self) -> ssl.SSLContext | bool:
        """TLS for outgoing requests (``node.tls.client_ssl``)."""
        return client_ssl(self.config)

    async def peer_contact(self, node_id: str) -> None:
        """Verified traffic from a peer: note it, reset its backoff and flush its queue.

        The time is kept in memory for every message and written to the peer's row at most
        once a minute (``CONTACT_WRITE_INTERVAL``), so ``peers list``, ``status`` and other
        processes see it without a write per message on the hot path."""
        now = self.clock.now()
        self.last_contact[node_id] = now
        written = self._contact_written.get(node_id)
        if written is None or now - written >= CONTACT_WRITE_INTERVAL:
            self._contact_written[node_id] = now
            await peer_store.touch_peer(self.engine, node_id, now)
        await self.outbox.on_contact(node_id)

    def start_background(self) -> None:
        """After start: pull missed revocations from every peer, then deliver the outbox."""

        async def run() -> None:
            try:
                await self.outbox.refresh_pending()
                await catch_up(self)
            finally:
                self.caught_up.set()
            self.outbox.kick()

        self._background = asyncio.create_task(run())

    async def reload_peers(self) -> None:
        self.keyring.load(await peer_store.list_peers(self.engine))
        self._peers_loaded_at = time.monotonic()

    async def has_peer(self, node_id: str) -> bool:
        """Is ``node_id`` a trusted peer? Looks in the store once if memory says no."""
        if self.keyring.keys_for(node_id) is None:
            await self.reload_peers_if_stale(0.0)
        return self.keyring.keys_for(node_id) is not None

    async def reload_peers_if_stale(self, min_age_s: float = 0.05) -> bool:
        """Reload peers from the store unless done in the last ``min_age_s``; True if reloaded.

        ``barnplan peers add`` writes to the store while the server runs; a message from a peer
        not yet in memory triggers this, rate-limited so strangers cannot make us reload often.
        """
        if time.monotonic() - self._peers_loaded_at < min_age_s:
            return False
        await self.reload_peers()
        return True

    async def close(self) -> None:
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        await self.outbox.close()
        await self.exchange_log.close()
        if self.http is not None:
            await self.http.close()
            self.http = None
        await self.engine.dispose()  # the log's close returned its held connection
        if self.sync_engine is not None:
            self.sync_engine.dispose()


async def open_node(
    config: NodeConfig, clock: Clock | None = None, *, run_migrations: bool = True
) -> Node:
    """Open the store (migrating it to head), check it has the tables and columns this code
    uses (``StoreError`` naming what it lacks), load keys, peers and replay memory."""
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        if run_migrations:
            await migrate(engine)
        await require_expected_schema(engine)
        identity = load_identity(config, await peer_store.own_keys(engine))
        node = Node(config=config, clock=clock or SystemClock(), engine=engine, identity=identity)
        await node.reload_peers()
        await node.seen.load(engine, node.clock.now())
    except BaseException:
        await engine.dispose()
        raise
    return node
