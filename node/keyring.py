"""Trusted keys: the peers' published keys, held in memory and reloaded from the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.documents import verify_node_document
from protocol.keys import PublicKey

from .store.tables import Peer


@dataclass(frozen=True)
class Agency:
    """Who runs a node, as its own signed node document says (name and kind)."""

    name: str
    kind: str


class PeerKeyRing:
    """A ``protocol.envelope.KeyRing`` over the peer table; ``reload`` after peers change.

    It also keeps each peer's agency (name, kind) from the same verified document, so an
    assembly can name the agencies without reading the store again."""

    def __init__(self) -> None:
        self._keys: dict[str, list[PublicKey]] = {}
        self._urls: dict[str, str] = {}
        self._agencies: dict[str, Agency] = {}

    def load(self, peers: Sequence[Peer]) -> None:
        keys: dict[str, list[PublicKey]] = {}
        urls: dict[str, str] = {}
        agencies: dict[str, Agency] = {}
        for peer in peers:
            doc, peer_keys = verify_node_document(peer.document, peer.node_id)
            keys[peer.node_id] = peer_keys
            urls[peer.node_id] = peer.base_url
            agencies[peer.node_id] = Agency(doc.agency_name, doc.agency_kind.value)
        self._keys, self._urls, self._agencies = keys, urls, agencies

    def agency(self, node_id: str) -> Agency | None:
        return self._agencies.get(node_id)

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None:
        return self._keys.get(node_id)

    def base_url(self, node_id: str) -> str | None:
        return self._urls.get(node_id)

    def node_ids(self) -> list[str]:
        return sorted(self._keys)
