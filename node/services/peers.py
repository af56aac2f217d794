"""Use cases around peers: fetch and check a peer's node document, then trust it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.documents import verify_node_document
from protocol.errors import ProtocolError
from protocol.jsontext import parse_json_object
from protocol.keys import fingerprint
from protocol.models import NodeDocument

from ..domain.json_object import JsonObject
from ..errors import Unavailable
from ..store import peers as peer_store
from ..store.tables import Peer

WELL_KNOWN = "/.well-known/barnplan/node"
MAX_DOCUMENT_BYTES = 65_536


class PeerError(Unavailable):
    """Fetching or checking a peer failed; the message is one line an operator can act on."""

    code = "peer_unavailable"


@dataclass(frozen=True)
class FetchedPeer:
    document: NodeDocument
    raw: JsonObject
    fingerprints: list[str]


def document_url(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith(WELL_KNOWN) else url + WELL_KNOWN


async def fetch_peer(session: aiohttp.ClientSession, url: str) -> FetchedPeer:
    """GET and verify a node document; raise ``PeerError`` on any network or trust problem."""
    target = document_url(url)
    if not target.startswith(("http://", "https://")):
        raise PeerError(f"{url!r} is not an http(s) URL")
    try:
        async with session.get(target, allow_redirects=False) as resp:
            if resp.status != 200:
                raise PeerError(f"{target} answered HTTP {resp.status}, not a node document")
            body = await resp.content.read(MAX_DOCUMENT_BYTES + 1)
    except aiohttp.ClientError as exc:
        raise PeerError(f"cannot reach {target}: {exc.__class__.__name__}: {exc}") from None
    except TimeoutError:
        raise PeerError(f"{target} did not answer in time") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise PeerError(f"{target} sent more than {MAX_DOCUMENT_BYTES} bytes")
    try:
        # the one strict parser, as for every message (SPEC.md §4.4 step 1): a document with a
        # duplicated member, "v": 1.0 or a byte-order mark is refused here as at the endpoint,
        # and as a document a peer announces in a keys.update is (§4.6)
        raw = parse_json_object(body)
        doc, keys = verify_node_document(raw)
    except ProtocolError as exc:
        raise PeerError(f"node document from {target} failed verification: {exc}") from None
    return FetchedPeer(doc, raw, [fingerprint(k.raw) for k in keys])


async def trust_peer(engine: AsyncEngine, fetched: FetchedPeer, own_id: str, now: datetime) -> Peer:
    """Record a verified peer. A node never trusts a document that claims its own id."""
    doc = fetched.document
    if doc.id == own_id:
        raise PeerError(f"that is this node's own document ({own_id})")
    peer = Peer(
        node_id=doc.id,
        base_url=doc.base_url,
        agency_name=doc.agency_name,
        agency_kind=doc.agency_kind.value,
        document=json.dumps(fetched.raw, ensure_ascii=False),
        fingerprint=fetched.fingerprints[0],
        added_at=now,
    )
    await peer_store.upsert_peer(engine, peer)
    return peer
