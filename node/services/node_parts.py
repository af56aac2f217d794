"""The parts of a node that signing, verifying and sending to peers need, as protocols.

Apart from ``ports`` so that the peer client (``outbound``) and the services that use it
(``ports.FederationNode``) share one list of members without importing each other.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from protocol.clock import Clock
from protocol.envelope import SeenIds
from protocol.errors import Reason

from ..config import NodeConfig
from ..identity import Identity
from ..keyring import PeerKeyRing
from ..metrics import Metrics
from ..store.exchange_log import ExchangeLog


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
    def seen(self) -> SeenIds: ...

    @property
    def exchange_log(self) -> ExchangeLog: ...

    @property
    def metrics(self) -> Metrics: ...

    async def relearn(self, peer: str, reason: Reason, data: bytes | None = None) -> bool: ...


class ClientNode(PeerTrust, Protocol):
    """What the peer client needs from its node (``runtime.Node``): the above, the HTTP client,
    and a way to re-read the peers' keys and addresses."""

    def http_session(self) -> aiohttp.ClientSession: ...

    async def reload_peers_if_stale(self, min_age_s: float = 0.05) -> bool: ...
