"""Counts of the exchange log's entries by direction, type and outcome, read incrementally.

The exchange log is the one record of every message any process of this node sent or
received (``barnplan serve``, and CLI commands that send, such as ``consent revoke`` or
``log checkpoint``, in processes of their own). ``/metrics`` counts from it, so a message a
CLI command sent shows in the running node's metrics too: each scrape reads only the entries
after the last one it counted (the primary key), a few rows, not the whole log.

Archiving (``barnplan log archive``) deletes a prefix of the log and seqs continue after it, so
a running process's counters never go back: its cursor is past the archived entries, or the
entries it had not counted yet are simply never counted by it. A process that starts after an
archive counts the live log only, a counter reset as any restart is (Prometheus's ``rate`` and
``increase`` handle it); ``barnplan_exchange_log_entries`` stays the head's seq, every entry
ever logged, archived ones included.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from .tables import ExchangeLogEntry

T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class LogCounts:
    """The entries after ``after`` up to ``head``, grouped."""

    after: int
    head: int
    groups: tuple[tuple[str, str, str, int], ...]  # (direction, type, outcome, count)


async def counts_after(engine: AsyncEngine, after: int) -> LogCounts:
    """The entries with ``seq`` above ``after`` (up to the head read in the same
    transaction), grouped by direction, message type and outcome."""
    async with engine.connect() as conn, conn.begin():
        head = (await conn.execute(select(func.max(T_LOG.c.seq)))).scalar_one_or_none() or 0
        if head <= after:
            return LogCounts(after, after, ())
        query = (
            select(T_LOG.c.direction, T_LOG.c.message_type, T_LOG.c.outcome, func.count())
            .where(T_LOG.c.seq > after, T_LOG.c.seq <= head)
            .group_by(T_LOG.c.direction, T_LOG.c.message_type, T_LOG.c.outcome)
        )
        rows = (await conn.execute(query)).all()
    return LogCounts(after, head, tuple((d, t, o, int(n)) for d, t, o, n in rows))
