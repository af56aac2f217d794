"""Trusted keys: the peers' published keys, held in memory and reloaded from the store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.documents import verify_node_document
from protocol.keys import PublicKey
from protocol.models import NodeDocument

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
        self._documents: dict[str, NodeDocument] = {}
        # counts ``replace`` calls: a reload that read the store before one finished re-reads
        self.generation = 0

    def load(self, peers: Sequence[Peer]) -> None:
        keys: dict[str, list[PublicKey]] = {}
        urls: dict[str, str] = {}
        documents: dict[str, NodeDocument] = {}
        for peer in peers:
            document, peer_keys = verify_node_document(peer.document, peer.node_id)
            keys[peer.node_id] = peer_keys
            urls[peer.node_id] = peer.base_url
            documents[peer.node_id] = document
        self._keys, self._urls, self._documents = keys, urls, documents

    def agency(self, node_id: str) -> Agency | None:
        """A trusted peer's agency as its node document names it."""
        document = self._documents.get(node_id)
        if document is None:
            return None
        return Agency(document.agency_name, document.agency_kind.value)

    def replace(self, document: NodeDocument, keys: Sequence[PublicKey]) -> None:
        """Hold ``document`` for its (already trusted) node from now on: what the store holds
        for it right after a key change was judged (``protocol.key_updates``) and committed."""
        self.generation += 1
        self._keys[document.id] = list(keys)
        self._urls[document.id] = document.base_url
        self._documents[document.id] = document

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None:
        return self._keys.get(node_id)

    def document_for(self, node_id: str) -> NodeDocument | None:
        """The node document held for ``node_id``: what a changed one is judged against."""
        return self._documents.get(node_id)

    def base_url(self, node_id: str) -> str | None:
        return self._urls.get(node_id)

    def node_ids(self) -> list[str]:
        return sorted(self._keys)
