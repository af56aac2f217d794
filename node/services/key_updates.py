"""Key changes between nodes (SPEC.md §4.6, §7.10): announcing this node's, learning a peer's.

When this node rotates or withdraws a key, ``keys rotate``/``keys withdraw`` queue a
``keys.update`` carrying the key change document to every peer, in the transaction that changes
the key; the outbox delivers it with retries until each peer acknowledges. A peer takes a
changed document only by ``protocol.key_updates.check_document_update``, wherever it came from:
a ``keys.update`` message, or a fetch of the node's published document after one of its
messages (or replies) failed with ``unknown_key`` or ``key_not_valid``. Such a fetch is
rate-limited per peer, so messages that merely claim to be from a peer cannot make this node
hammer that peer's URL. Every change of what this node holds for a peer is written to the
exchange log in the same transaction (type ``node.document`` when it came by a fetch, or in a
``keys.update`` whose envelope did not verify before it).
"""

from __future__ import annotations

import asyncio
import json
import random
import uuid
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.documents import verify_node_document
from protocol.envelope import Verified
from protocol.errors import ProtocolError, Reason
from protocol.jsontext import parse_json_object
from protocol.key_updates import DocumentUpdate, UpdateStatus, check_document_update
from protocol.keys import PublicKey, fingerprint
from protocol.messages import KeysUpdate, KeysUpdateAck
from protocol.models import NodeDocument, is_uuid

from ..domain.json_object import JsonObject
from ..errors import Refusal
from ..store import peers as peer_store
from ..store import revocations as outbox_store
from ..store.exchange_log import LogDraft
from ..store.tables import OutboxItem
from . import plan_close, revocation
from .inbound import Outcome
from .outbound import KEY_REASONS as KEY_REASONS
from .peers import PeerError, fetch_peer
from .ports import FederationNode

MESSAGE_TYPE = "keys.update"
DOCUMENT_TYPE = "node.document"  # the exchange log's type for a document learned by a fetch
REFETCH_INTERVAL_S = 60.0
log = structlog.get_logger("barnplan.keys")


# --- announcing this node's key changes -------------------------------------------------------


async def enqueue_announcements(
    conn: AsyncConnection, document: JsonObject, now: datetime
) -> list[str]:
    """Queue ``keys.update`` with ``document`` to every trusted peer in the caller's
    transaction (the one that changes the key); return the peers."""
    peers = await peer_store.peer_ids(conn)
    body = KeysUpdate(document=document).model_dump(mode="json")
    for peer in peers:
        await outbox_store.enqueue(conn, str(uuid.uuid4()), peer, MESSAGE_TYPE, body, now)
    return peers


async def deliver_announcement(node: FederationNode, rng: random.Random, item: OutboxItem) -> int:
    """Send one queued ``keys.update``; acknowledged when the peer answers with this document's
    ``issued_at`` (``superseded`` is noted: the peer holds a newer document of this node)."""
    body = KeysUpdate.model_validate_json(item.body)
    result = await node.peers.send(item.peer, MESSAGE_TYPE, body)
    ack = result.reply.body if result.ok and result.reply is not None else None
    acked = isinstance(ack, KeysUpdateAck) and ack.issued_at == body.document.get("issued_at")
    now = node.clock.now()
    async with node.store.writing() as conn:
        if acked and isinstance(ack, KeysUpdateAck):
            superseded = ack.status == UpdateStatus.SUPERSEDED.value
            note = "superseded: the peer holds a newer document" if superseded else None
            await outbox_store.mark_delivered(conn, item.item_id, now, note)
        else:
            retry_at = now + timedelta(seconds=revocation.backoff_delay(item.attempts + 1, rng))
            error = f"{result.outcome}: {result.reason or ''}"
            await outbox_store.mark_failed(conn, item.item_id, retry_at, error)
    (log.info if acked else log.warning)(
        "keys.announced", peer=item.peer, outcome=result.outcome, attempts=item.attempts + 1
    )
    return 1 if acked else 0


class Outbox(revocation.Outbox):
    """The node's outbox: revocation notices as ``revocation.Outbox`` delivers them, and key
    announcements, which share its rows, claiming, retries and backoff."""

    async def _deliver(self, item: OutboxItem) -> int:
        if item.message_type == MESSAGE_TYPE:
            return await deliver_announcement(self._node, self._rng, item)
        if item.message_type == plan_close.MESSAGE_TYPE:
            return await plan_close.deliver_close(self._node, self._rng, item)
        return await super()._deliver(item)


# --- judging and holding a peer's changed document --------------------------------------------


def judge(node: FederationNode, peer: str, raw: JsonObject) -> DocumentUpdate:
    """``raw`` against the document this node holds for ``peer`` (SPEC.md §4.6)."""
    held = node.keyring.document_for(peer)
    keys = node.keyring.keys_for(peer)
    if held is None or keys is None:
        raise ProtocolError(f"{peer!r} is not a trusted peer", Reason.UNKNOWN_SENDER)
    return check_document_update(
        raw, held, keys, now=node.clock.now(), skew_s=node.config.protocol.clock_skew_s
    )


# a change judged again in its transaction and refused: answered by its reason's HTTP status
CHANGE_REFUSED = "change_refused"


class Hold:
    """Makes ``raw`` the document held for ``peer``: ``change`` runs in the log entry's
    transaction, ``settle`` after it committed.

    ``change`` judges ``raw`` once more against the stored row, locked: another process of this
    node may have taken a newer document meanwhile. ``settle`` then puts what the store holds
    into the in-memory key ring, so a withdrawn key stops verifying with the very next message.
    """

    def __init__(self, node: FederationNode, peer: str, raw: JsonObject) -> None:
        self._node, self._peer, self._raw = node, peer, raw
        self._held: tuple[NodeDocument, list[PublicKey]] | None = None

    async def change(self, conn: AsyncConnection) -> None:
        node, peer = self._node, self._peer
        row = await peer_store.peer_for_update(conn, peer)
        if row is None:
            raise Refusal(
                Reason.UNKNOWN_SENDER, f"{peer} is no longer a trusted peer", code=CHANGE_REFUSED
            )
        held = verify_node_document(row.document, peer)
        now, skew = node.clock.now(), node.config.protocol.clock_skew_s
        try:
            update = check_document_update(self._raw, *held, now=now, skew_s=skew)
        except ProtocolError as exc:
            raise Refusal(exc.reason, exc.detail, code=CHANGE_REFUSED) from None
        self._held = held
        if update.status is not UpdateStatus.APPLIED:
            return
        document = update.document
        changed = row.model_copy(
            update={
                "document": json.dumps(self._raw, ensure_ascii=False),
                "base_url": document.base_url,
                "agency_name": document.agency_name,
                "agency_kind": document.agency_kind.value,
                "fingerprint": fingerprint(update.keys[0].raw),
            }
        )
        await peer_store.replace_document(conn, changed)
        self._held = (document, update.keys)
        log.info("keys.peer_document", peer=peer, key=document.keys[0].kid)

    def settle(self) -> None:
        if self._held is not None:
            self._node.keyring.replace(*self._held)


async def handle_keys_update(node: FederationNode, message: Verified) -> Outcome:
    """A peer announces a key change: hold its new document if §4.6 admits it."""
    body = message.body
    assert isinstance(body, KeysUpdate)
    try:
        update = judge(node, message.sender, body.document)
    except ProtocolError as exc:
        raise Refusal(exc.reason, f"document: {exc.detail}") from None
    ack = KeysUpdateAck(issued_at=update.document.issued_at, status=update.status.value)
    outcome = Outcome(body=ack.model_dump(mode="json"))
    if update.status is UpdateStatus.APPLIED:
        holding = Hold(node, message.sender, body.document)
        outcome.change, outcome.after = holding.change, holding.settle
    return outcome


# --- learning a peer's changed document after a failed verification ---------------------------


def carried_document(data: bytes, peer: str) -> tuple[JsonObject, str] | None:
    """The document a ``keys.update`` from ``peer`` carries, with the message's id, parsed by
    the strict parser. Used only as a candidate for §4.6, which trusts nothing but the
    document's own signature, so an envelope that failed verification may still bring it."""
    try:
        obj = parse_json_object(data)
    except ProtocolError:
        return None
    body = obj.get("body")
    document = body.get("document") if isinstance(body, dict) else None
    if obj.get("type") != MESSAGE_TYPE or obj.get("from") != peer or not isinstance(document, dict):
        return None
    message_id = obj.get("id")
    return document, message_id if isinstance(message_id, str) and is_uuid(message_id) else "-"


class KeyRefresh:
    """Learns a peer's changed document when its message or reply names a key this node does
    not hold or holds as ended; one per node, its rate limit per peer on the node's clock."""

    def __init__(self, node: FederationNode) -> None:
        self._node = node
        self._fetched_at: dict[str, datetime] = {}
        self._fetching: dict[str, asyncio.Task[bool]] = {}

    async def learn(self, peer: str, data: bytes | None = None) -> bool:
        """True when the document held for ``peer`` changed, so one more verification of the
        message (``data``, if it is one) or reply may pass. Tries the document a
        ``keys.update`` carries, then a fetch of the peer's published document."""
        if self._node.keyring.document_for(peer) is None:
            return False
        carried = carried_document(data, peer) if data is not None else None
        if carried is not None and await self._consider(peer, carried[0], "in", carried[1]):
            return True
        return await self._refetch(peer)

    async def _refetch(self, peer: str) -> bool:
        """Fetch ``peer``'s document at most once per ``REFETCH_INTERVAL_S``; callers that come
        while a fetch runs wait for it rather than start another."""
        running = self._fetching.get(peer)
        if running is not None:
            return await asyncio.shield(running)
        now = self._node.clock.now()
        last = self._fetched_at.get(peer)
        if last is not None and now - last < timedelta(seconds=REFETCH_INTERVAL_S):
            return False
        self._fetched_at[peer] = now
        task = asyncio.create_task(self._fetch(peer))
        self._fetching[peer] = task
        task.add_done_callback(lambda _: self._fetching.pop(peer, None))
        return await asyncio.shield(task)

    async def _fetch(self, peer: str) -> bool:
        url = self._node.keyring.base_url(peer)
        if url is None:
            return False
        try:
            fetched = await fetch_peer(self._node.http_session(), url)
        except PeerError:  # unreachable, or not a node document that verifies (§4.4)
            self._counted("failed")
            log.warning("keys.fetch", peer=peer, outcome="failed")
            return False
        return await self._consider(peer, fetched.raw, "out", "-")

    def _counted(self, outcome: str) -> None:
        self._node.metrics.document_fetches.labels(outcome).inc()

    async def _consider(self, peer: str, raw: JsonObject, direction: str, message_id: str) -> bool:
        """Judge ``raw`` and hold it if §4.6 admits it; True if it now is the held document.
        Only a change is an entry of the exchange log (with the change, in one transaction); a
        fetch that changed nothing is one process-log line, as a refused document is (the
        message that carried it is logged by whoever handles the message)."""
        fetched = direction == "out"
        try:
            update = judge(self._node, peer, raw)
        except ProtocolError as exc:
            if fetched:
                self._counted("refused")
            log.warning("keys.document_refused", peer=peer, via=direction, reason=exc.reason.value)
            return False
        if update.status is not UpdateStatus.APPLIED:
            if fetched:
                self._counted("unchanged")
            log.info("keys.document_unchanged", peer=peer, via=direction, status=update.status)
            return False
        draft = LogDraft(
            direction=direction,
            peer=peer,
            message_type=DOCUMENT_TYPE,
            message_id=message_id,
            outcome="ok",
        )
        holding = Hold(self._node, peer, raw)
        try:
            await self._node.exchange_log.append(draft, holding.change)
        except Exception as exc:  # judged again at commit: another process may have won
            log.warning("keys.peer_document_not_held", peer=peer, error=exc.__class__.__name__)
            return False
        holding.settle()
        if fetched:
            self._counted("applied")
        return True
