"""What the federation path's services need from the node that runs them, as protocols.

``runtime.Node`` wires the parts once and satisfies these structurally; services type their
collaborator by the protocol, never by ``Node`` (and never ``Any``), so mypy checks every use
and no service imports the module that imports it (no import cycle, not even a type-only one).
Each member is read-only here (a property), so the node may hold a more specific type.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from ..store.store import Store
from .node_parts import ClientNode
from .outbound import PeerClient
from .release_cache import ReleaseCache


class Outbox(Protocol):
    """The queue of durable notices (revocations, key updates) and its delivery."""

    def note_pending(self, peers: list[str]) -> None: ...

    def kick(self) -> None: ...


class FederationNode(ClientNode, Protocol):
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

    async def peer_contact(self, node_id: str) -> None: ...

    async def has_peer(self, node_id: str) -> bool: ...
