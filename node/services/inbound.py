"""The federation endpoint's logic: verify first, then decide, log, and sign the reply.

Order for every inbound message (DESIGN.md invariants 2, 3, 5, 7):
verify envelope as a request (size limit, depth, all reason codes, replay, skew) → handler
decides and prepares its state change → one transaction appends the log entry, records the
message id as seen and applies the change → the signed reply leaves. A refusal is a signed
``error`` reply, logged.

A message refused before its signature verified is logged under ``UNVERIFIED``, not under the
``from`` it claims (anyone can claim any ``from``); its error reply is still addressed by that
claim when it is well-formed (SPEC.md §8), so a real peer learns why it was refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from protocol.envelope import (
    ANONYMOUS,
    Claims,
    Verified,
    read_claims,
    sign_envelope,
    sign_prepared_envelope,
    verify_envelope,
)
from protocol.errors import ProtocolError, Reason
from protocol.messages import REPLY_TYPES, type_label

from ..domain.json_object import JsonObject
from ..errors import Refusal
from ..store.exchange_log import DuplicateMessage, LogDraft, SeenId, StateChange
from .ports import FederationNode

log = structlog.get_logger("barnplan.federation")

__all__ = [
    "ANONYMOUS",
    "UNVERIFIED",
    "Answer",
    "Handler",
    "Inbound",
    "Outcome",
    "RecordedRefusal",
]
# the exchange log's peer for a message refused before its signature verified: not a node id
# (it has one label), so no peer's entries and these can be confused
UNVERIFIED = "unverified"

RELOADABLE = frozenset({Reason.UNKNOWN_SENDER, Reason.UNKNOWN_KEY})
# what a request came to: the refusal it was answered with (None for a reply), and the signed
# envelope; the HTTP status is the web layer's to choose (node/web/federation.py)
Answer = tuple[Refusal | None, JsonObject]


@dataclass
class Outcome:
    """What a handler decided: the reply body, how to log it, and the change to commit."""

    body: JsonObject
    outcome: str = "ok"
    reason: str | None = None
    plan_id: str | None = None
    consent_id: str | None = None
    purpose: str | None = None
    professional: str | None = None
    categories: list[str] = field(default_factory=list)
    released: int = 0
    withheld: list[tuple[str, str]] = field(default_factory=list)
    change: StateChange | None = None
    # run once the entry and ``change`` committed, before the reply is signed (what memory
    # must follow the store, e.g. the key ring after a peer's key change)
    after: Callable[[], None] | None = None
    # the body was built from validated values (resent signed fragments): signed with
    # ``sign_prepared_envelope`` (no second validation)
    prepared: bool = False


Handler = Callable[[FederationNode, Verified], Awaitable[Outcome]]


class RecordedRefusal(Refusal):
    """A handler's refusal that also records state with its log entry, in the entry's
    transaction (a witness's refusal keeps an event for its operators: ``services.witness``)."""

    def __init__(
        self, reason: Reason, detail: str, change: StateChange, *, code: str | None = None
    ) -> None:
        super().__init__(reason, detail, code=code)
        self.change = change


class Inbound:
    """Dispatches verified messages to handlers; owned by the node, one per process."""

    def __init__(self, node: FederationNode, handlers: dict[str, Handler]) -> None:
        self._node = node
        self._handlers = handlers

    async def handle(self, data: bytes) -> Answer:
        """Return (the refusal if refused, signed reply envelope) for the request ``data``."""
        node = self._node
        server = node.config.server
        claimed = read_claims(data, server.max_json_depth, server.max_body_bytes).sender
        try:
            message = await self._verify_learning(data, claimed)
        except ProtocolError as exc:
            return await self._refuse_envelope(data, exc)
        handler = self._handlers.get(message.type)
        if handler is None:
            return await self._refuse(
                message.sender,
                _claims_of(message),
                Reason.UNKNOWN_TYPE,
                f"this node does not handle {message.type}",
            )
        try:
            outcome = await handler(node, message)
        except Refusal as refusal:
            return await self._refuse(
                message.sender,
                _claims_of(message),
                refusal.reason,
                refusal.detail,
                refusal.code,
                refusal.change if isinstance(refusal, RecordedRefusal) else None,
            )
        except Exception as exc:  # a bug or a store failure while deciding: SPEC §8 ``internal``
            return await self._fail(message, exc)
        return await self._commit_and_reply(message, outcome)

    async def _refuse_envelope(self, data: bytes, exc: ProtocolError) -> Answer:
        """A request that failed verification: addressed by what it claims (§8), logged under
        the sender its signature proved (steps 15–19) or else as ``UNVERIFIED``."""
        return await self.refuse_unverified(
            data, exc.reason, exc.detail, signer=exc.signer or UNVERIFIED
        )

    async def refuse_unverified(
        self,
        data: bytes,
        reason: Reason,
        detail: str,
        code: str | None = None,
        signer: str = UNVERIFIED,
    ) -> Answer:
        """Refuse a request before (or without) verifying it: addressed by what it claims
        (§8), logged under ``signer`` (``UNVERIFIED`` unless a signature proved the sender). The
        HTTP layer uses it for a request it will not parse at all (``code`` names why)."""
        server = self._node.config.server
        claims = read_claims(data, server.max_json_depth, server.max_body_bytes)
        return await self._refuse(signer, claims, reason, detail, code)

    async def _fail(self, message: Verified, exc: Exception) -> Answer:
        """A verified message whose handler failed: logged as ``failed``/``internal`` (with its
        id remembered, as when a state change fails at commit), one process-log line without
        the exception's text, and a signed ``internal`` error."""
        node = self._node
        log.error("federation.handler_failed", type=message.type, error=exc.__class__.__name__)
        draft = LogDraft(
            direction="in",
            peer=message.sender,
            message_type=message.type,
            message_id=message.id,
            outcome="failed",
            reason=Reason.INTERNAL.value,
        )
        try:
            await node.exchange_log.append(draft, seen=self._seen(message))
        except DuplicateMessage:
            return self._replayed(message)
        except Exception as log_exc:  # the store is down too: still the signed answer SPEC §8 says
            log.error(
                "federation.change_failed", type=message.type, error=log_exc.__class__.__name__
            )
        node.metrics.requests.labels(message.type, "failed").inc()
        return self._error_reply(message.sender, message.id, Reason.INTERNAL, "not handled")

    def _seen(self, message: Verified) -> SeenId:
        """The replay-memory row of a verified message, kept until it expires plus skew."""
        skew = timedelta(seconds=self._node.config.protocol.clock_skew_s)
        return SeenId(message.sender, message.id, message.expires_at + skew)

    def _replayed(self, message: Verified) -> Answer:
        return self._error_reply(
            message.sender, message.id, Reason.REPLAYED, f"message id {message.id} already seen"
        )

    async def _verify_learning(self, data: bytes, claimed: str | None) -> Verified:
        """Verify; after a failure that what this node trusts may since have changed for
        (a peer added by the CLI, a peer's key change, SPEC.md §4.6), learn what changed and
        judge again: at most twice (the store, then the peer's document), each rate-limited."""
        for _ in range(2):
            try:
                return self._verify(data)
            except ProtocolError as exc:
                # only a well-formed claimed sender can have changed (SPEC §8: never a guess)
                if claimed is None or not await self._node.relearn(claimed, exc.reason, data):
                    raise
        return self._verify(data)

    def _verify(self, data: bytes) -> Verified:
        node = self._node
        return verify_envelope(
            data,  # the received bytes: the verifier then knows what the signature covers
            keyring=node.keyring,
            audience=node.node_id,
            clock=node.clock,
            seen=node.seen,
            skew_s=node.config.protocol.clock_skew_s,
            request=True,
            max_depth=node.config.server.max_json_depth,
            max_bytes=node.config.server.max_body_bytes,
        )

    async def _commit_and_reply(self, message: Verified, outcome: Outcome) -> Answer:
        node = self._node
        draft = LogDraft(
            direction="in",
            peer=message.sender,
            message_type=message.type,
            message_id=message.id,
            outcome=outcome.outcome,
            reason=outcome.reason,
            plan_id=outcome.plan_id,
            consent_id=outcome.consent_id,
            purpose=outcome.purpose,
            professional=outcome.professional,
            categories=outcome.categories,
            released=outcome.released,
            withheld=outcome.withheld,
        )
        try:
            await node.exchange_log.append(draft, outcome.change, self._seen(message))
        except DuplicateMessage:
            return self._replayed(message)
        except Refusal as exc:  # the change, judged again in its transaction, refused
            return self._error_reply(message.sender, message.id, exc.reason, exc.detail, exc.code)
        except Exception as exc:
            log.error("federation.change_failed", type=message.type, error=exc.__class__.__name__)
            return self._error_reply(message.sender, message.id, Reason.INTERNAL, "not stored")
        if outcome.after is not None:
            outcome.after()
        await node.peer_contact(message.sender)
        node.metrics.requests.labels(message.type, outcome.outcome).inc()
        sign = sign_prepared_envelope if outcome.prepared else sign_envelope
        reply = sign(
            type=REPLY_TYPES[message.type],
            body=outcome.body,
            sender=node.node_id,
            to=message.sender,
            key=node.identity.key,
            clock=node.clock,
            ttl_s=node.config.protocol.message_ttl_s,
            re=message.id,
        )
        return None, reply

    async def _refuse(
        self,
        peer: str,
        claims: Claims,
        reason: Reason,
        detail: str,
        code: str | None = None,
        change: StateChange | None = None,
    ) -> Answer:
        """Log a refusal under ``peer`` (with ``change``, if the refusal records state) and
        answer it with a signed ``error`` to ``claims.to``. Types are recorded only from the
        message types of this version (``type_label``)."""
        node = self._node
        message_type = type_label(claims.type)
        await node.exchange_log.append(
            LogDraft(
                direction="in",
                peer=peer,
                message_type=message_type,
                message_id=claims.id or "-",
                outcome="refused",
                reason=reason.value,
            ),
            change,
        )
        log.warning(  # a refusal is worth an operator's look: misconfigured or hostile peer
            "federation.refused",
            peer=peer,
            claimed_from=claims.sender,
            type=message_type,
            reason=reason.value,
        )
        node.metrics.requests.labels(message_type, "refused").inc()
        return self._error_reply(claims.to, claims.id, reason, detail, code)

    def _error_reply(
        self, to: str, re_id: str | None, reason: Reason, detail: str, code: str | None = None
    ) -> Answer:
        node = self._node
        reply = sign_envelope(
            type="error",
            body={"reason": reason.value, "detail": detail[:200]},
            sender=node.node_id,
            to=to,
            key=node.identity.key,
            clock=node.clock,
            ttl_s=node.config.protocol.message_ttl_s,
            re=re_id,
        )
        return Refusal(reason, detail, code=code or reason.value), reply


def _claims_of(message: Verified) -> Claims:
    """A verified message's claims, all of them proven by its signature."""
    return Claims(sender=message.sender, id=message.id, type=message.type)
