"""What the federation path's services need from the node that runs them, as protocols.

``runtime.Node`` wires the parts once and satisfies these structurally; services type their
collaborator by the protocol, never by ``Node`` (and never ``Any``), so mypy checks every use
and no service imports the module that imports it (no import cycle, not even a type-only one).
Each member is read-only here (a property), so the node may hold a more specific type.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock
from protocol.errors import Reason

from ..config import NodeConfig
from ..identity import Identity
from ..keyring import PeerKeyRing
from ..metrics import Metrics
from ..store.exchange_log import ExchangeLog
from ..store.store import Store
from .outbound import PeerClient
from .release_cache import ReleaseCache
from .seen import PersistentSeenIds


class Outbox(Protocol):
    """The queue of durable notices (revocations, key updates) and its delivery."""

    def note_pending(self, peers: list[str]) -> None: ...

    def kick(self) -> None: ...


class Signer(Protocol):
    """Who this node is and the key it signs with now (it changes when keys rotate)."""

    @property
    def node_id(self) -> str: ...

    @property
    def identity(self) -> Identity: ...


class PeerTrust(Signer, Protocol):
    """What verifying a peer's message needs: the clock, the peers' keys, the replay memory."""

    @property
    def config(self) -> NodeConfig: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def keyring(self) -> PeerKeyRing: ...

    @property
    def seen(self) -> PersistentSeenIds: ...

    @property
    def exchange_log(self) -> ExchangeLog: ...

    @property
    def metrics(self) -> Metrics: ...

    async def relearn(self, peer: str, reason: Reason, data: bytes | None = None) -> bool: ...


class FederationNode(PeerTrust, Protocol):
    """Everything a federation handler or a federation service reads from its node."""

    @property
    def store(self) -> Store: ...

    @property
    def engine(self) -> AsyncEngine: ...

    @property
    def release_cache(self) -> ReleaseCache: ...

    @property
    def caught_up(self) -> asyncio.Event: ...

    @property
    def peers(self) -> PeerClient: ...

    @property
    def outbox(self) -> Outbox: ...

    def http_session(self) -> aiohttp.ClientSession: ...

    async def reload_peers_if_stale(self, min_age_s: float = 0.05) -> bool: ...

    async def peer_contact(self, node_id: str) -> None: ...

    async def has_peer(self, node_id: str) -> bool: ...
