"""Periodic jobs (APScheduler as a timer): outbox delivery, consent expiry, replay pruning,
exchange-log checkpoints, and taking up peers and own keys changed by the CLI.

Durable state (outbox rows, attempts, next attempt) lives in our own tables; the scheduler only
decides when to look, so a restart loses nothing (DESIGN.md §9). When several node processes
share one PostgreSQL database, each job body runs in one process at a time: the job takes a
PostgreSQL advisory lock named after the job and skips its turn if another process holds it.
Outbox delivery needs no such lock: its rows are claimed with ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import text

from .services.audit import checkpoint_and_witness
from .services.revocation import expire_consents

if TYPE_CHECKING:
    from .runtime import Node

OUTBOX_INTERVAL_S = 1.0
EXPIRY_INTERVAL_S = 30.0
PRUNE_INTERVAL_S = 300.0
PEER_RELOAD_INTERVAL_S = 10.0
OWN_KEYS_INTERVAL_S = 1.0
log = structlog.get_logger("barnplan.scheduler")


def job_lock_id(name: str) -> int:
    """A stable 31-bit advisory-lock key per job name."""
    return zlib.crc32(f"barnplan-job:{name}".encode()) & 0x7FFFFFFF


async def run_once_across_processes(
    node: Node, name: str, body: Callable[[], Awaitable[Any]]
) -> bool:
    """Run ``body`` unless another process sharing the database is running the same job."""
    if node.engine.dialect.name != "postgresql":
        await body()
        return True
    async with node.engine.connect() as conn:
        key = job_lock_id(name)
        got = (await conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})).scalar()
        await conn.commit()
        if not got:
            return False
        try:
            await body()
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
            await conn.commit()
    return True


def build_scheduler(node: Node) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    )

    def guarded(name: str, body: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            try:
                await run_once_across_processes(node, name, body)
            except Exception as exc:
                log.error("job.failed", job=name, error=exc.__class__.__name__)

        return job

    async def drain_outbox() -> None:
        node.outbox.kick()

    async def prune() -> None:
        await node.seen.prune(node.engine, node.clock.now())

    scheduler.add_job(drain_outbox, "interval", seconds=OUTBOX_INTERVAL_S, id="outbox")
    scheduler.add_job(
        guarded("consent_expiry", lambda: expire_consents(node)),
        "interval",
        seconds=EXPIRY_INTERVAL_S,
        id="consent_expiry",
    )

    async def reload_peers() -> None:
        await node.reload_peers()

    async def refresh_identity() -> None:
        try:
            await node.refresh_identity()
        except Exception as exc:  # the store is away for a moment: try again next second
            log.error("job.failed", job="own_keys", error=exc.__class__.__name__)

    # a key rotated or withdrawn with the CLI is used (and the old one no longer) within this
    scheduler.add_job(refresh_identity, "interval", seconds=OWN_KEYS_INTERVAL_S, id="own_keys")
    # peers added or removed with the CLI take effect in a running node within this interval
    scheduler.add_job(reload_peers, "interval", seconds=PEER_RELOAD_INTERVAL_S, id="peers")
    # every process prunes its own in-memory replay cache; the row delete is idempotent
    scheduler.add_job(prune, "interval", seconds=PRUNE_INTERVAL_S, id="replay_prune")
    scheduler.add_job(
        guarded("log_checkpoint", lambda: checkpoint_and_witness(node)),
        "interval",
        seconds=node.config.log.checkpoint_interval_s,
        id="log_checkpoint",
    )
    return scheduler
