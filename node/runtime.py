"""The one place that wires a node's parts: config, clock, store, keys, peers, log and clients.

Tests build a ``Node`` with their own clock or store; nothing here is module-level state.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock, SystemClock
from protocol.errors import ProtocolError, Reason

from .config import NodeConfig
from .identity import Identity, IdentityError, key_file, load_identity
from .keyring import PeerKeyRing
from .metrics import Metrics
from .services import plan_close
from .services.handlers import HANDLERS
from .services.inbound import RELOADABLE, Inbound
from .services.key_updates import KEY_REASONS, KeyRefresh, Outbox
from .services.outbound import PeerClient
from .services.release_cache import ReleaseCache
from .services.revocation import catch_up
from .services.seen import PersistentSeenIds
from .store import peers as peer_store
from .store.engine import create_engine, migrate
from .store.exchange_log import ExchangeLog
from .store.migration_head import at_head
from .store.schema_check import require_expected_schema
from .store.store import Store
from .store.tables import OwnKey
from .tls import client_ssl
from .version import current_build

CONTACT_WRITE_INTERVAL = timedelta(minutes=1)  # how stale a peer's stored last contact may be

log = structlog.get_logger("barnplan.node")


def key_state(rows: list[OwnKey]) -> tuple[tuple[str, datetime | None], ...]:
    """What of this node's own keys decides its identity: which keys, and until when."""
    return tuple((r.key_id, r.valid_until) for r in rows)


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
        self.store = Store(self.engine)
        self.exchange_log = ExchangeLog(self.engine, self.clock.now)
        self.peers = PeerClient(self)
        self.inbound = Inbound(self, HANDLERS)
        self.outbox = Outbox(self)
        self.build = current_build()
        self.metrics = Metrics(self.build)
        self.key_refresh = KeyRefresh(self)
        self.own_keys: tuple[tuple[str, datetime | None], ...] = ()
        self.release_cache = ReleaseCache()
        self.caught_up = asyncio.Event()
        self._background: asyncio.Task[None] | None = None
        self._peers_loaded_at = 0.0
        self._contact_written: dict[str, datetime] = {}

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
                started = time.monotonic()
                reached = await catch_up(self)
                # closures from the peers that answered (a peer down is not waited for twice)
                closed = await plan_close.catch_up(
                    self, [p for p, o in reached.items() if o == "ok"]
                )
                # operators see why fragment requests waited at start (they wait for this)
                log.info(
                    "catchup.done",
                    peers=len(reached),
                    ok=sum(1 for o in reached.values() if o == "ok"),
                    not_ok={p: o for p, o in reached.items() if o != "ok"},
                    closures_not_ok={p: o for p, o in closed.items() if o != "ok"},
                    ms=round((time.monotonic() - started) * 1000, 1),
                )
            finally:
                self.caught_up.set()
            self.outbox.kick()

        self._background = asyncio.create_task(run())

    async def relearn(self, peer: str, reason: Reason, data: bytes | None = None) -> bool:
        """A message or reply claiming to come from ``peer`` failed verification with
        ``reason``: True when what this node trusts for ``peer`` changed since, so that one
        more verification is worth it. Re-reads the store (``barnplan peers add`` may have
        run), then, for a key it does not hold or holds as ended, learns the peer's changed
        document (``KeyRefresh``: the one a ``keys.update`` in ``data`` carries, or a fetch)."""
        before = self.keyring.keys_for(peer)
        reloaded = reason in RELOADABLE and await self.reload_peers_if_stale()
        if reloaded and self.keyring.keys_for(peer) != before:
            return True
        return reason in KEY_REASONS and await self.key_refresh.learn(peer, data)

    async def refresh_identity(self) -> bool:
        """Take up a key change ``barnplan keys rotate``/``withdraw`` made while this process
        runs: sign with the new key and publish its document from now on. True if it changed.
        Cheap when nothing changed (one read); the scheduler and the node document call it."""
        rows = await peer_store.own_keys(self.engine)
        state = key_state(rows)
        if state == self.own_keys:
            return False
        current = [r for r in rows if r.valid_until is None]
        path = key_file(self.config, current[0]) if len(current) == 1 else None
        introduction = await peer_store.current_introduction(self.engine)
        try:
            identity = await asyncio.to_thread(load_identity, self.config, rows, path, introduction)
        except (IdentityError, ProtocolError) as exc:
            # keep signing with the key loaded (peers refuse it once it ended) and say why
            log.error("identity.reload_failed", error=exc.__class__.__name__)
            return False
        self.identity, self.own_keys = identity, state
        log.info("identity.reloaded", key=identity.key.key_id)
        return True

    async def reload_peers(self) -> None:
        """Hold what the store holds; read again if a key change was taken meanwhile (its
        commit may have come after this read), so a reload never brings back an ended key."""
        for _ in range(3):
            generation = self.keyring.generation
            peers = await peer_store.list_peers(self.engine)
            if self.keyring.generation == generation:
                break
        self.keyring.load(peers)
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
        await self.engine.dispose()


async def open_node(
    config: NodeConfig, clock: Clock | None = None, *, run_migrations: bool = True
) -> Node:
    """Open the store (migrating it to head), check it has the tables and columns this code
    uses (``StoreError`` naming what it lacks), load keys, peers and replay memory.

    alembic runs only when the store is not already at head (``at_head`` reads the version
    table without importing it): its import and script loading were a tenth of a start, spent
    on every start of a node migrated long ago while a returning peer still answers nothing. A
    new or older store, or any doubt, is migrated; ``barnplan migrate`` always runs alembic."""
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        if run_migrations and not await at_head(engine):
            await migrate(engine)
        await require_expected_schema(engine)
        rows = await peer_store.own_keys(engine)
        introduction = await peer_store.current_introduction(engine)
        identity = load_identity(config, rows, None, introduction)
        node = Node(config=config, clock=clock or SystemClock(), engine=engine, identity=identity)
        node.own_keys = key_state(rows)
        await node.reload_peers()
        await node.seen.load(engine, node.clock.now())
    except BaseException:
        await engine.dispose()
        raise
    return node
