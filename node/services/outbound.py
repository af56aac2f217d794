"""Sending a signed message to a peer and checking its signed reply — and logging the exchange.

Every outcome is one of: ``ok`` (a verified reply of the expected type), ``refused`` (a verified
``error`` reply; its reason), ``unreachable`` (connection failed), ``timeout``, or ``bad_reply``
(the reply failed verification or was not JSON). Nothing unsigned is trusted (invariant 5).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp
from pydantic import BaseModel

from protocol.canonical import encode_json
from protocol.envelope import Verified, sign_envelope, verify_envelope
from protocol.errors import ProtocolError, Reason
from protocol.messages import REPLY_TYPES, ErrorBody, FragmentsResponse

from ..domain.json_object import JsonObject
from ..httpio import read_limited
from ..store.exchange_log import LogDraft
from .node_parts import ClientNode

FEDERATION_PATH = "/federation/v1/messages"
KEY_REASONS = frozenset({Reason.UNKNOWN_KEY, Reason.KEY_NOT_VALID})
_JSON = {"Content-Type": "application/json"}
MAX_REPLY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class PeerResult:
    """The outcome of one request to one peer."""

    peer: str
    outcome: str  # ok | refused | unreachable | timeout | bad_reply
    reason: str | None = None
    reply: Verified | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class LogContext:
    """What the exchange log should say about a request, besides peer, type and outcome."""

    plan_id: str | None = None
    consent_id: str | None = None
    purpose: str | None = None
    professional: str | None = None
    categories: tuple[str, ...] = ()


def unreachable_reason(exc: BaseException) -> str:
    """A short code for why a peer could not be reached, for the exchange log and the outbox's
    last error an operator reads (not a client library's class name)."""
    if isinstance(exc, aiohttp.ClientSSLError):
        return "tls_failed"
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return "connect_failed"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "disconnected"
    return "connection_failed"


class PeerClient:
    """Signs requests as this node, posts them, verifies replies, logs each exchange."""

    def __init__(self, node: ClientNode) -> None:
        self._node = node

    async def send(
        self,
        peer: str,
        type: str,
        body: BaseModel | JsonObject,
        context: LogContext | None = None,
        timeout: float | None = None,
    ) -> PeerResult:
        """Send, verify the reply, and log the exchange before returning."""
        result, draft = await self.exchange(peer, type, body, context, timeout)
        await self._node.exchange_log.append(draft)
        return result

    async def exchange(
        self,
        peer: str,
        type: str,
        body: BaseModel | JsonObject,
        context: LogContext | None = None,
        timeout: float | None = None,
    ) -> tuple[PeerResult, LogDraft]:
        """``send`` without the log append: the caller appends the returned draft before it
        acts on or reports the result (the assembly appends all its peers' entries in one
        transaction, once every peer has answered)."""
        node = self._node
        context = context or LogContext()
        base = node.keyring.base_url(peer)
        if base is None and await node.reload_peers_if_stale():
            base = node.keyring.base_url(peer)
        if base is None:
            result = PeerResult(peer, "refused", Reason.UNKNOWN_SENDER.value)
            return result, self._draft(peer, type, "-", result, context)
        envelope = sign_envelope(
            type=type,
            body=body,
            sender=node.node_id,
            to=peer,
            key=node.identity.key,
            clock=node.clock,
            ttl_s=node.config.protocol.message_ttl_s,
        )
        result = await self._post(
            peer, base + FEDERATION_PATH, envelope, REPLY_TYPES[type], timeout
        )
        node.metrics.outbound.labels(type, result.outcome).inc()
        return result, self._draft(peer, type, envelope["id"], result, context)

    async def _post(
        self, peer: str, url: str, envelope: JsonObject, reply_type: str, timeout: float | None
    ) -> PeerResult:
        node = self._node
        session: aiohttp.ClientSession = node.http_session()
        limit = timeout or node.config.protocol.request_timeout_s
        try:
            async with asyncio.timeout(limit):
                async with session.post(url, data=encode_json(envelope), headers=_JSON) as resp:
                    data = await read_limited(resp.content, MAX_REPLY_BYTES)
        except TimeoutError:
            return PeerResult(peer, "timeout", "timeout")
        except (aiohttp.ClientError, OSError) as exc:
            return PeerResult(peer, "unreachable", unreachable_reason(exc))
        if len(data) > MAX_REPLY_BYTES:
            return PeerResult(peer, "bad_reply", Reason.TOO_LARGE.value)
        try:
            reply = await self._verify_learning(peer, data, reply_type)
        except ProtocolError as exc:
            return PeerResult(peer, "bad_reply", exc.reason.value)
        if reply.sender != peer or reply.re != envelope["id"]:
            return PeerResult(peer, "bad_reply", Reason.MALFORMED.value)
        if reply.type == "error":
            assert isinstance(reply.body, ErrorBody)
            return PeerResult(peer, "refused", reply.body.reason.value, reply)
        return PeerResult(peer, "ok", None, reply)

    async def _verify_learning(self, peer: str, data: bytes, reply_type: str) -> Verified:
        """Verify a reply; if it is signed with a key this node does not hold yet or holds as
        ended, learn ``peer``'s changed document (SPEC.md §4.6) and judge it again: at most
        twice (the store, then the peer's document), each rate-limited."""
        for _ in range(2):
            try:
                return self._verify(data, reply_type)
            except ProtocolError as exc:
                if exc.reason not in KEY_REASONS or not await self._node.relearn(peer, exc.reason):
                    raise
        return self._verify(data, reply_type)

    def _verify(self, data: bytes, reply_type: str) -> Verified:
        node = self._node
        return verify_envelope(
            data,
            keyring=node.keyring,
            audience=node.node_id,
            clock=node.clock,
            seen=node.seen,
            skew_s=node.config.protocol.clock_skew_s,
            expect_type=reply_type,
        )

    def _draft(
        self, peer: str, type: str, message_id: str, result: PeerResult, context: LogContext
    ) -> LogDraft:
        released, withheld = 0, []
        if result.reply is not None and result.reply.type == "fragments.response":
            body = result.reply.body
            assert isinstance(body, FragmentsResponse)
            released = len(body.fragments)
            withheld = [(w.category or "-", w.reason.value) for w in body.withheld]
        return LogDraft(
            direction="out",
            peer=peer,
            message_type=type,
            message_id=message_id,
            outcome=result.outcome,
            reason=result.reason,
            plan_id=context.plan_id,
            consent_id=context.consent_id,
            purpose=context.purpose,
            professional=context.professional,
            categories=list(context.categories),
            released=released,
            withheld=withheld,
            at=self._node.clock.now(),
        )
