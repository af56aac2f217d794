"""Closing a plan: the lead records it once; every participant learns it until it acknowledges.

SPEC.md §7.11, as durable as a revocation (DESIGN.md invariant 4): recording the closure and
queuing one ``plan.close`` per participant is one transaction; the outbox delivers them with the
revocation notices' capped, jittered backoff, and any verified traffic from a peer makes its
queue due at once; a node that was down pulls the closures it missed from each lead with
``closures.since`` before it answers fragment requests. A receiver applies a closure only when
its own record of the plan says the sender leads it (invariant 9). Closed is final: holders
withhold every category with ``plan_closed`` and the plan is read-only on every node.
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
from protocol.messages import Closure, ClosuresList, ClosuresSince, PlanClose, PlanCloseAck

from ..domain.closing import close_problem
from ..errors import Conflict, Forbidden, NotFound, Refusal
from ..store import closures as store
from ..store import records
from ..store import revocations as outbox_store
from ..store.tables import OutboxItem, User
from .catchup_pages import CatchUpList, Page, pull_pages
from .inbound import Outcome
from .outbound import LogContext
from .ports import FederationNode
from .revocation import PAGE, backoff_delay
from .users import professional_ref

MESSAGE_TYPE = "plan.close"
log = structlog.get_logger("barnplan.plan_close")


class ClosedPlan(TypedDict):
    """A plan closed here, and the participants a notice is queued for."""

    plan_id: str
    closed_at: str
    notified: list[str]


async def close_plan(node: FederationNode, actor: User, plan_id: str) -> ClosedPlan:
    """The lead closes a plan it leads: record it and queue a notice to every participant that
    takes part (linked, or still to answer its invitation), in one transaction."""
    if actor.role != "lead":
        raise Forbidden("only the lead professional closes a plan", code="not_lead")
    now = node.clock.now()
    async with node.store.writing() as conn:
        plan = await records.get_plan_on(conn, plan_id)
        if plan is None or plan.role != "lead":
            raise NotFound(
                f"no plan {plan_id} led by this node",
                code="no_led_plan",
                params={"plan_id": plan_id},
            )
        if plan.status == "closed":
            raise Conflict("this plan is already closed", code="plan_closed")
        notice = PlanClose.model_validate(
            {
                "notice_id": str(uuid.uuid4()),
                "plan_id": plan_id,
                "closed_at": format_time(now),
                "closed_by": node.node_id,
                "professional": professional_ref(node.node_id, actor),
            }
        )
        recorded = await store.record_closure(
            conn,
            plan_id=plan_id,
            closed_at=parse_time(notice.closed_at),
            closed_by=node.node_id,
            notice_id=notice.notice_id,
            now=now,
        )
        if not recorded:  # another process of this node closed it meanwhile (under the lock)
            raise Conflict("this plan is already closed", code="plan_closed")
        members = await records.participants_on(conn, plan_id)
        peers = sorted(
            n for n, s in members.items() if n != node.node_id and s not in records.NOT_TAKING_PART
        )
        body = notice.model_dump(mode="json")
        for peer in peers:
            await outbox_store.enqueue(conn, str(uuid.uuid4()), peer, MESSAGE_TYPE, body, now)
    if node.config.faults.crash_after_close_commit:
        log.warning("fault.crash_after_close_commit")
        os.kill(os.getpid(), signal.SIGKILL)
    node.outbox.note_pending(peers)
    node.outbox.kick()
    return {"plan_id": plan_id, "closed_at": notice.closed_at, "notified": peers}


async def deliver_close(node: FederationNode, rng: random.Random, item: OutboxItem) -> int:
    """Send one queued ``plan.close``; record the ack, or the next attempt (capped, jittered)."""
    body = PlanClose.model_validate_json(item.body)
    context = LogContext(plan_id=body.plan_id, professional=body.professional)
    result = await node.peers.send(item.peer, MESSAGE_TYPE, body, context)
    now = node.clock.now()
    reply = result.reply.body if result.ok and result.reply is not None else None
    acked = isinstance(reply, PlanCloseAck) and reply.notice_id == body.notice_id
    async with node.store.writing() as conn:
        if acked:
            await outbox_store.mark_delivered(conn, item.item_id, now)
            node.metrics.delivery_latency.observe((now - item.created_at).total_seconds())
        else:
            retry_at = now + timedelta(seconds=backoff_delay(item.attempts + 1, rng))
            error = f"{result.outcome}: {result.reason or ''}"
            await outbox_store.mark_failed(conn, item.item_id, retry_at, error)
    (log.info if acked else log.warning)(
        "outbox.delivery",
        peer=item.peer,
        type=MESSAGE_TYPE,
        outcome=result.outcome,
        reason=result.reason,
        attempts=item.attempts + 1,
    )
    return 1 if acked else 0


REFUSED = {
    Reason.PLAN_UNKNOWN: "this node knows no such plan",
    Reason.NOT_PARTICIPANT: "only the plan's lead closes it",
}


def judge_sync(conn: Connection, plan_id: str, closed_by: str, via: str) -> Reason | None:
    """Why this node must not apply this closure (None: apply it), from its own records."""
    return close_problem(closed_by, via, records.plan_facts_sync(conn, plan_id, declined=True))


async def handle_close(node: FederationNode, message: Verified) -> Outcome:
    """The lead tells us it closed a plan: record it (idempotent) if this node's own record of
    the plan names the sender as its lead; else refuse and change nothing."""
    body = message.body
    assert isinstance(body, PlanClose)
    if body.closed_by != message.sender:
        raise Refusal(Reason.MALFORMED, "a notice names its sender as the closing node")
    async with node.store.reading() as conn:
        problem = await conn.run_sync(judge_sync, body.plan_id, body.closed_by, message.sender)
    if problem is not None:
        raise Refusal(problem, REFUSED[problem])
    now = node.clock.now()

    async def change(conn: AsyncConnection) -> None:
        await store.record_closure(
            conn,
            plan_id=body.plan_id,
            closed_at=parse_time(body.closed_at),
            closed_by=body.closed_by,
            notice_id=body.notice_id,
            now=now,
        )

    ack = PlanCloseAck(notice_id=body.notice_id, plan_id=body.plan_id)
    return Outcome(
        body=ack.model_dump(mode="json"),
        plan_id=body.plan_id,
        professional=body.professional,
        change=change,
    )


async def handle_since(node: FederationNode, message: Verified) -> Outcome:
    """Closures after ``cursor`` of the plans this node leads in which the requester takes part
    (as this node knows them); SPEC §7.11."""
    body = message.body
    assert isinstance(body, ClosuresSince)
    async with node.store.reading() as conn:
        top = await store.max_closure_seq(conn)
        led, _joined = await records.plans_shared_with(conn, message.sender)
        found = await store.closures_since(conn, body.cursor, led, PAGE)
    found = [c for c in found if c.seq <= top]
    more = len(found) == PAGE
    cursor = found[-1].seq if more else max(top, body.cursor)
    reply = ClosuresList.model_validate(
        {
            "closures": [
                {
                    "seq": c.seq,
                    "plan_id": c.plan_id,
                    "closed_at": format_time(c.closed_at),
                    "closed_by": c.closed_by,
                }
                for c in found
            ],
            "cursor": cursor,
            "more": more,
        }
    )
    return Outcome(body=reply.model_dump(mode="json"), released=len(found))


def take_closure_sync(conn: Connection, entry: Closure, via: str, now: datetime) -> Reason | None:
    """Apply a closure that peer ``via`` listed if this node's records admit it (as they would
    a ``plan.close`` from ``entry.closed_by``); else apply nothing and say why."""
    problem = judge_sync(conn, entry.plan_id, entry.closed_by, via)
    if problem is None:
        store.record_closure_sync(
            conn,
            plan_id=entry.plan_id,
            closed_at=parse_time(entry.closed_at),
            closed_by=entry.closed_by,
            notice_id=str(uuid.uuid4()),
            now=now,
        )
    return problem


async def catch_up(
    node: FederationNode, peers: list[str] | None = None, timeout_s: float = 3.0
) -> dict[str, str]:
    """Pull the closures missed from ``peers`` (default: every peer), after
    ``revocation.catch_up`` said hello to them."""

    async def one(peer: str) -> str:
        skipped: Counter[str] = Counter()
        try:
            return await pull_pages(node, peer, CLOSURES, timeout_s, skipped)
        finally:
            if skipped:
                log.warning(
                    "catchup.closures_skipped",
                    peer=peer,
                    skipped=sum(skipped.values()),
                    reasons=dict(skipped),
                )

    asked = node.keyring.node_ids() if peers is None else peers
    return dict(zip(asked, await asyncio.gather(*(one(p) for p in asked)), strict=True))


def _closures_page(body: BaseModel) -> Page[Closure]:
    assert isinstance(body, ClosuresList)
    return Page(body.closures, body.cursor, body.more)


# a peer's closures after this node's cursor for it (§7.11); an older peer answers
# unknown_type: it closed nothing
CLOSURES = CatchUpList(
    request_type="closures.since",
    request=lambda cursor: ClosuresSince(cursor=cursor),
    read=_closures_page,
    take=take_closure_sync,
    cursor_column="closure_cursor",
)
