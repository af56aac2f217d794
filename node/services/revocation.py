"""Consent revocation: recorded once, delivered to every participant until acknowledged.

DESIGN.md invariant 4. Recording the revocation and queuing one notice per participant is one
transaction; delivery is retried with capped, jittered exponential backoff; verified traffic from
a peer makes its queued notices due at once; a starting node says ``hello`` and pulls the
revocations it missed before it answers fragment requests.

Backoff after the n-th failed attempt (n = 1, 2, ...): ``min(CAP_S, BASE_S * 2**(n-1))`` seconds
times a random factor in [0.5, 1.0) — 0.25–0.5 s, 0.5–1 s, 1–2 s, ... capped at 30–60 s.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import TypedDict

import structlog
from pydantic import BaseModel
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.clock import format_time, parse_time
from protocol.envelope import Verified
from protocol.errors import Reason
from protocol.messages import (
    ConsentRevoke,
    ConsentRevokeAck,
    Revocation,
    RevocationsList,
    RevocationsSince,
)

from ..domain.revocation import RevocationClaim, revocation_problem
from ..errors import Conflict, Forbidden, NotFound, Refusal
from ..store import records
from ..store import revocations as store
from ..store.tables import OutboxItem, User
from .catchup_pages import CatchUpList, Page, pull_pages
from .inbound import Outcome
from .outbound import LogContext
from .ports import FederationNode
from .users import professional_ref

BASE_S = 0.5
CAP_S = 60.0
LEASE_S = 30.0
PAGE = 500
log = structlog.get_logger("barnplan.revocation")


def backoff_delay(attempts: int, rng: random.Random) -> float:
    """Delay before the next try after ``attempts`` failed ones (capped, jittered)."""
    return min(CAP_S, BASE_S * 2.0 ** max(0, attempts - 1)) * rng.uniform(0.5, 1.0)


class RecordedRevocation(TypedDict):
    """A revocation recorded here, and the participants a notice is queued for."""

    consent_id: str
    plan_id: str
    revoked_at: str
    notified: list[str]


async def record_revocation(
    node: FederationNode, actor: User, consent_id: str
) -> RecordedRevocation:
    """Revoke a consent here and queue a notice to every other participant, in one transaction."""
    if actor.role not in ("professional", "lead"):
        raise Forbidden(
            "only professionals record a family's withdrawal of consent", code="not_professional"
        )
    now = node.clock.now()
    async with node.store.writing() as conn:
        statement = await records.consent_statement(conn, consent_id)
        if statement is None:
            raise NotFound(
                f"no consent {consent_id} on this node",
                code="no_consent",
                params={"consent_id": consent_id},
            )
        plan_id = statement["plan_id"]
        if await store.is_revoked(conn, consent_id, plan_id):
            raise Conflict("this consent is already revoked", code="already_revoked")
        members = await records.participants_on(conn, plan_id)
        notice = ConsentRevoke.model_validate(
            {
                "notice_id": str(uuid.uuid4()),
                "consent_id": consent_id,
                "plan_id": plan_id,
                "revoked_at": format_time(now),
                "revoked_by": node.node_id,
                "professional": professional_ref(node.node_id, actor),
            }
        )
        await store.insert_revocation(
            conn,
            consent_id=consent_id,
            plan_id=plan_id,
            revoked_at=parse_time(notice.revoked_at),
            revoked_by=node.node_id,
            notice_id=notice.notice_id,
            now=now,
        )
        peers = sorted(
            n for n, s in members.items() if n != node.node_id and s not in records.NOT_TAKING_PART
        )
        body = notice.model_dump(mode="json")
        for peer in peers:
            await store.enqueue(conn, str(uuid.uuid4()), peer, "consent.revoke", body, now)
    if node.config.faults.crash_after_revoke_commit:
        log.warning("fault.crash_after_revoke_commit")
        os.kill(os.getpid(), signal.SIGKILL)
    node.outbox.note_pending(peers)
    node.outbox.kick()
    return {
        "consent_id": consent_id,
        "plan_id": plan_id,
        "revoked_at": notice.revoked_at,
        "notified": peers,
    }


def judge_revocation_sync(conn: Connection, claim: RevocationClaim) -> Reason | None:
    """Why this node must not apply ``claim`` (None: apply it), from its own records only: the
    plan the claim names as this node knows it, and the plan of the consent's statement if
    this node holds it (SPEC §7.5)."""
    plan = records.plan_facts_sync(conn, claim.plan_id, declined=True)
    return revocation_problem(claim, plan, records.consent_plan_sync(conn, claim.consent_id))


def apply_revocation_sync(
    conn: Connection, notice: ConsentRevoke | Revocation, now: datetime
) -> bool:
    """Store a revocation learned from a peer, bound to the plan it names (judged first with
    ``judge_revocation_sync``); False when it was already known (idempotent)."""
    if store.is_revoked_sync(conn, notice.consent_id, notice.plan_id):
        return False
    store.insert_revocation_sync(
        conn,
        consent_id=notice.consent_id,
        plan_id=notice.plan_id,
        revoked_at=parse_time(notice.revoked_at),
        revoked_by=notice.revoked_by,
        notice_id=getattr(notice, "notice_id", None) or str(uuid.uuid4()),
        now=now,
    )
    return True


def take_revocation_sync(
    conn: Connection, entry: Revocation, via: str, now: datetime
) -> Reason | None:
    """Apply a revocation that peer ``via`` listed, if this node's records admit it; else
    apply nothing and say why (catch-up uses the rule a notice is judged by)."""
    claim = RevocationClaim(entry.consent_id, entry.plan_id, entry.revoked_by, via)
    problem = judge_revocation_sync(conn, claim)
    if problem is None:
        apply_revocation_sync(conn, entry, now)
    return problem


REFUSED = {
    Reason.PLAN_UNKNOWN: "this node knows no such plan",
    Reason.NOT_PARTICIPANT: "the revoking node does not take part in this plan",
    Reason.CONSENT_OTHER_PLAN: "the consent is not of the plan the notice names",
}


async def handle_revoke(node: FederationNode, message: Verified) -> Outcome:
    """A peer tells us a consent was revoked: store it (a tombstone if the consent is unknown)
    if the sender takes part in the consent's plan as this node knows it; else refuse."""
    body = message.body
    assert isinstance(body, ConsentRevoke)
    if body.revoked_by != message.sender:
        raise Refusal(Reason.MALFORMED, "a notice names its sender as the revoking node")
    claim = RevocationClaim(body.consent_id, body.plan_id, body.revoked_by, message.sender)
    async with node.store.reading() as conn:
        problem = await conn.run_sync(judge_revocation_sync, claim)
    if problem is not None:
        raise Refusal(problem, REFUSED[problem])
    now = node.clock.now()

    async def change(conn: AsyncConnection) -> None:
        await conn.run_sync(apply_revocation_sync, body, now)

    ack = ConsentRevokeAck(notice_id=body.notice_id, consent_id=body.consent_id)
    return Outcome(
        body=ack.model_dump(mode="json"),
        plan_id=body.plan_id,
        consent_id=body.consent_id,
        professional=body.professional,
        change=change,
    )


async def handle_since(node: FederationNode, message: Verified) -> Outcome:
    """Revocations after ``cursor`` for plans the requester takes part in (as we know them),
    of those this node may pass on: of plans it leads, or recorded by itself (SPEC §7.6)."""
    body = message.body
    assert isinstance(body, RevocationsSince)
    async with node.store.reading() as conn:
        top = await store.max_revocation_seq(conn)
        led, joined = await records.plans_shared_with(conn, message.sender)
        found = await store.revocations_since(conn, body.cursor, led, joined, node.node_id, PAGE)
    found = [r for r in found if r.seq <= top]
    more = len(found) == PAGE
    cursor = found[-1].seq if more else max(top, body.cursor)
    reply = RevocationsList.model_validate(
        {
            "revocations": [
                {
                    "seq": r.seq,
                    "consent_id": r.consent_id,
                    "plan_id": r.plan_id,
                    "revoked_at": format_time(r.revoked_at),
                    "revoked_by": r.revoked_by,
                }
                for r in found
            ],
            "cursor": cursor,
            "more": more,
        }
    )
    return Outcome(body=reply.model_dump(mode="json"), released=len(found))


async def handle_hello(node: FederationNode, message: Verified) -> Outcome:
    """A peer is back: its queued notices are due now (the reset happens on any traffic)."""
    return Outcome(body={"ok": True})


class Outbox:
    """Drains the outbox: claims due items, delivers them, records acks or the next attempt."""

    def __init__(self, node: FederationNode, rng: random.Random | None = None) -> None:
        self._node = node
        self._rng = rng or random.Random()
        self._pending: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def note_pending(self, peers: list[str]) -> None:
        self._pending.update(peers)

    async def refresh_pending(self) -> None:
        async with self._node.store.reading() as conn:
            self._pending = await store.pending_peers(conn)
            backlog = len(await store.outbox_rows(conn))
        self._node.metrics.outbox_backlog.set(backlog)

    async def on_contact(self, peer: str) -> None:
        """Any verified traffic from ``peer``: reset its backoff and flush its queue."""
        if peer not in self._pending:
            return
        async with self._node.store.writing() as conn:
            await store.reset_backoff(conn, peer, self._node.clock.now())
        self.kick()

    def kick(self) -> None:
        """Drain now (coalesced: a drain already running goes round once more)."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._again = False
            try:
                await self.drain()
            except Exception as exc:
                log.error("outbox.drain_failed", error=exc.__class__.__name__)
            if not self._again:
                return

    async def close(self) -> None:
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def drain(self) -> int:
        """Deliver every due item (concurrently); return how many were acknowledged."""
        node = self._node
        now = node.clock.now()
        # a read first: the scheduler drains every second, and an idle outbox (nearly always)
        # should not cost a write transaction each time
        if not await node.store.read(store.has_due_sync, now):
            return 0
        async with node.store.writing() as conn:
            items = await store.claim_due(conn, now, now + timedelta(seconds=LEASE_S), None)
        if not items:
            return 0
        results = await asyncio.gather(*(self._deliver(i) for i in items))
        await self.refresh_pending()
        return sum(results)

    async def _deliver(self, item: OutboxItem) -> int:
        node = self._node
        body = ConsentRevoke.model_validate_json(item.body)
        context = LogContext(
            plan_id=body.plan_id, consent_id=body.consent_id, professional=body.professional
        )
        result = await node.peers.send(item.peer, item.message_type, body, context)
        now = node.clock.now()
        acked = (
            result.ok
            and isinstance(result.reply.body if result.reply else None, ConsentRevokeAck)
            and result.reply is not None
            and getattr(result.reply.body, "notice_id", None) == body.notice_id
        )
        async with node.store.writing() as conn:
            if acked:
                await store.mark_delivered(conn, item.item_id, now)
                node.metrics.delivery_latency.observe((now - item.created_at).total_seconds())
            else:
                delay = backoff_delay(item.attempts + 1, self._rng)
                await store.mark_failed(
                    conn,
                    item.item_id,
                    now + timedelta(seconds=delay),
                    f"{result.outcome}: {result.reason or ''}",
                )
        (log.info if acked else log.warning)(
            "outbox.delivery",
            peer=item.peer,
            outcome=result.outcome,
            reason=result.reason,
            attempts=item.attempts + 1,
        )
        return 1 if acked else 0


async def catch_up(node: FederationNode, timeout_s: float = 3.0) -> dict[str, str]:
    """Say hello to every peer and pull the revocations missed from each; bounded in time."""

    async def one(peer: str) -> str:
        hello = await node.peers.send(
            peer, "hello", {"started_at": format_time(node.clock.now())}, timeout=timeout_s
        )
        if not hello.ok:
            return hello.outcome
        skipped: Counter[str] = Counter()
        try:
            return await pull_pages(node, peer, REVOCATIONS, timeout_s, skipped)
        finally:
            _report_skipped(node, peer, skipped)

    peers = node.keyring.node_ids()
    return dict(zip(peers, await asyncio.gather(*(one(p) for p in peers)), strict=True))


def _revocations_page(body: BaseModel) -> Page[Revocation]:
    assert isinstance(body, RevocationsList)
    return Page(body.revocations, body.cursor, body.more)


# a peer's revocations after this node's cursor for it (§7.6): each applied only if this node's
# own records admit it, as a notice from that peer would be (a member that lists revocations it
# may not pass on changes nothing here)
REVOCATIONS = CatchUpList(
    request_type="revocations.since",
    request=lambda cursor: RevocationsSince(cursor=cursor),
    read=_revocations_page,
    take=take_revocation_sync,
    cursor_column="revocation_cursor",
)


def _report_skipped(node: FederationNode, peer: str, skipped: Counter[str]) -> None:
    """Entries of a peer's catch-up that were not applied: counted, and one process-log line
    naming the peer (ids and reason codes only) so an operator can find a member gone bad."""
    if not skipped:
        return
    for reason, count in skipped.items():
        node.metrics.catchup_skipped.labels(reason).inc(count)
    log.warning("catchup.skipped", peer=peer, skipped=sum(skipped.values()), reasons=dict(skipped))


async def expire_consents(node: FederationNode) -> list[str]:
    """Scheduled: mark consents past ``valid_until`` (release also checks at decision time)."""
    async with node.store.writing() as conn:
        return await store.mark_expired(conn, node.clock.now())
