"""Trusted keys: the peers' published keys, held in memory and reloaded from the store."""

from __future__ import annotations

from collections.abc import Sequence

from protocol.documents import verify_node_document
from protocol.keys import PublicKey

from .store.tables import Peer


class PeerKeyRing:
    """A ``protocol.envelope.KeyRing`` over the peer table; ``reload`` after peers change."""

    def __init__(self) -> None:
        self._keys: dict[str, list[PublicKey]] = {}
        self._urls: dict[str, str] = {}

    def load(self, peers: Sequence[Peer]) -> None:
        keys: dict[str, list[PublicKey]] = {}
        urls: dict[str, str] = {}
        for peer in peers:
            _, peer_keys = verify_node_document(peer.document, peer.node_id)
            keys[peer.node_id] = peer_keys
            urls[peer.node_id] = peer.base_url
        self._keys, self._urls = keys, urls

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None:
        return self._keys.get(node_id)

    def base_url(self, node_id: str) -> str | None:
        return self._urls.get(node_id)

    def node_ids(self) -> list[str]:
        return sorted(self._keys)
