"""Periodic jobs (APScheduler as a timer): outbox delivery, consent expiry, replay pruning.

Durable state (outbox rows, attempts, next attempt) lives in our own tables; the scheduler only
decides when to look, so a restart loses nothing (DESIGN.md §9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from .services.audit import checkpoint_and_witness
from .services.revocation import expire_consents

if TYPE_CHECKING:
    from .runtime import Node

OUTBOX_INTERVAL_S = 1.0
EXPIRY_INTERVAL_S = 30.0
PRUNE_INTERVAL_S = 300.0


def build_scheduler(node: Node) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )

    async def drain_outbox() -> None:
        node.outbox.kick()

    async def expire() -> None:
        await expire_consents(node)

    async def prune() -> None:
        await node.seen.prune(node.engine, node.clock.now())

    scheduler.add_job(drain_outbox, "interval", seconds=OUTBOX_INTERVAL_S, id="outbox")
    scheduler.add_job(expire, "interval", seconds=EXPIRY_INTERVAL_S, id="consent_expiry")

    async def checkpoint() -> None:
        await checkpoint_and_witness(node)

    scheduler.add_job(prune, "interval", seconds=PRUNE_INTERVAL_S, id="replay_prune")
    scheduler.add_job(
        checkpoint, "interval", seconds=node.config.log.checkpoint_interval_s, id="log_checkpoint"
    )
    return scheduler
