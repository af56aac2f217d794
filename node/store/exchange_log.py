"""The exchange log: an append-only, hash-chained record of every exchange with a peer.

Appends go through ``ExchangeLog.append``, which batches concurrent callers into one database
transaction (group commit): a commit costs about a millisecond, a batch of fifty costs about the
same. Each caller may pass a state change that runs in the same transaction, inside a savepoint,
so a log entry and the change it records commit together or not at all (DESIGN.md invariant 3).
The chain head is read inside the writing transaction under a lock (SQLite: BEGIN IMMEDIATE;
PostgreSQL: an advisory transaction lock), so several processes keep one linear chain.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..errors import Conflict
from .chain_verify import ChainProblem as ChainProblem
from .chain_verify import ChainResult as ChainResult
from .chain_verify import verify_chain as verify_chain
from .engine import begin_write

# the entry's columns, text form and hash are defined once, in log_entry (SPEC.md §7.8);
# re-exported for the log's callers
from .log_entry import COLUMNS as COLUMNS
from .log_entry import GENESIS as GENESIS
from .log_entry import entry_hash as entry_hash
from .log_entry import format_at as format_at
from .tables import ExchangeLogEntry, SeenMessage

LOG_LOCK_ID = 0x62706C67  # "bplg"
_HEAD = "SELECT seq, hash FROM exchange_log ORDER BY seq DESC LIMIT 1"


StateChange = Callable[[AsyncConnection], Awaitable[None]]
T_SEEN = SeenMessage.__table__  # type: ignore[attr-defined]
T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
# the append's statements, built once (building one per batch cost more than running it)
_HEAD_QUERY = text(_HEAD)
_INSERT_ENTRIES = T_LOG.insert()
_INSERT_SEEN = T_SEEN.insert()
_SEEN_AMONG = select(T_SEEN.c.message_id).where(
    (T_SEEN.c.sender == bindparam("sender"))
    & T_SEEN.c.message_id.in_(bindparam("ids", expanding=True))
)
log = structlog.get_logger("barnplan.exchange_log")


@dataclass
class LogDraft:
    """An entry before it has a place in the chain."""

    direction: str
    peer: str
    message_type: str
    message_id: str
    outcome: str
    reason: str | None = None
    plan_id: str | None = None
    consent_id: str | None = None
    purpose: str | None = None
    professional: str | None = None
    categories: list[str] = field(default_factory=list)
    released: int = 0
    withheld: list[tuple[str, str]] = field(default_factory=list)
    at: datetime | None = None


def draft_row(draft: LogDraft, seq: int, prev_hash: str, at: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {
        "seq": seq,
        "at": at,
        "direction": draft.direction,
        "peer": draft.peer,
        "message_type": draft.message_type,
        "message_id": draft.message_id,
        "plan_id": draft.plan_id,
        "consent_id": draft.consent_id,
        "purpose": draft.purpose,
        "professional": draft.professional,
        "categories": ",".join(sorted(set(draft.categories))),
        "released": draft.released,
        "withheld": ",".join(f"{c}:{r}" for c, r in draft.withheld),
        "outcome": draft.outcome,
        "reason": draft.reason,
        "prev_hash": prev_hash,
    }
    row["hash"] = entry_hash(row)
    return row


@dataclass(frozen=True)
class SeenId:
    """A verified inbound message id to remember (replay memory) in the entry's transaction."""

    sender: str
    message_id: str
    expires_at: datetime


class DuplicateMessage(Conflict):
    """The message id was already recorded as seen: the request is a replay."""

    code = "duplicate_message"


@dataclass
class _Pending:
    draft: LogDraft
    change: StateChange | None
    done: asyncio.Future[int]
    seen: SeenId | None = None


class ExchangeLog:
    """Group-committing appender. One per process; ``close`` flushes what is queued."""

    def __init__(self, engine: AsyncEngine, now: Callable[[], datetime]) -> None:
        self._engine = engine
        self._now = now
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def append(
        self, draft: LogDraft, change: StateChange | None = None, seen: SeenId | None = None
    ) -> int:
        """Append ``draft`` (and run ``change`` in the same transaction); return its seq.

        ``seen`` is recorded in the replay memory in the same transaction; the rows of a whole
        batch are checked and inserted with one statement each, with no savepoint. If the id was
        already seen, ``change`` does not run, the entry is appended as refused (``replayed``)
        and ``DuplicateMessage`` is raised to the caller after the commit. If ``change`` raises,
        the entry is still appended, as outcome ``failed``, and the exception is re-raised to
        the caller after the commit.
        """
        if draft.at is None:
            draft.at = self._now()
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(draft, change, done, seen))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return await done

    async def append_many(self, drafts: list[LogDraft]) -> list[int]:
        """Append several entries in one transaction (queued in one step, so one batch);
        return their seqs in order. For exchanges made together, such as an assembly's."""
        loop = asyncio.get_running_loop()
        items = []
        for draft in drafts:
            if draft.at is None:
                draft.at = self._now()
            items.append(_Pending(draft, None, loop.create_future()))
        if not items:
            return []
        self._pending.extend(items)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        return list(await asyncio.gather(*(item.done for item in items)))

    async def close(self) -> None:
        """Flush what is queued."""
        if self._flusher is not None:
            with contextlib.suppress(Exception):  # reported where it failed
                await asyncio.shield(self._flusher)

    async def _flush_loop(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._write(batch)
            except Exception as exc:  # the whole transaction failed: nobody's entry is logged
                log.error("exchange_log.write_failed", error=exc.__class__.__name__, n=len(batch))
                for item in batch:
                    if not item.done.done():
                        item.done.set_exception(exc)
                continue
            for item, result in zip(batch, results, strict=True):
                if item.done.done():
                    continue
                if isinstance(result, BaseException):
                    item.done.set_exception(result)
                else:
                    item.done.set_result(result)

    async def _write(self, batch: list[_Pending]) -> list[int | BaseException]:
        results: list[int | BaseException] = []
        async with begin_write(self._engine) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOG_LOCK_ID})
            (seq, prev), replays = await conn.run_sync(_head_and_seen, batch)
            rows = []
            for item in batch:
                outcome: int | BaseException
                if id(item) in replays:
                    item.draft.outcome, item.draft.reason = "refused", "replayed"
                    outcome = DuplicateMessage(item.seen.message_id if item.seen else "")
                elif item.change is not None:
                    try:
                        async with conn.begin_nested():
                            await item.change(conn)
                    except Exception as exc:
                        item.draft.outcome, item.draft.reason = "failed", "internal"
                        outcome = exc
                    else:
                        outcome = seq + 1
                else:
                    outcome = seq + 1
                seq += 1
                assert item.draft.at is not None
                row = draft_row(item.draft, seq, prev, item.draft.at)
                prev = row["hash"]
                rows.append(row)
                results.append(outcome)
            await conn.execute(_INSERT_ENTRIES, rows)
        return results


def _head_and_seen(conn: Connection, batch: list[_Pending]) -> tuple[tuple[int, str], set[int]]:
    """The chain's head (seq, hash) and the batch's replays (``_record_seen_sync``), read in
    one call under the log's write lock."""
    head = conn.execute(_HEAD_QUERY).first()
    return ((int(head[0]), str(head[1])) if head else (0, GENESIS)), _record_seen_sync(conn, batch)


def _record_seen_sync(conn: Connection, batch: list[_Pending]) -> set[int]:
    """Insert the batch's seen ids in one statement; return the items that are replays.

    Runs under the log's write lock (BEGIN IMMEDIATE / advisory lock), and every seen id is
    written through here, so the SELECT cannot race with another writer's INSERT.
    """
    known: set[tuple[str, str]] = set()
    for sender, ids in _seen_by_sender(batch).items():  # (sender, message_id) is the key
        found = conn.execute(_SEEN_AMONG, {"sender": sender, "ids": ids})
        known.update((sender, r[0]) for r in found)
    replays, fresh = _split_replays(batch, known)
    if fresh:
        conn.execute(
            _INSERT_SEEN, [{"sender": s, "message_id": m, "expires_at": e} for s, m, e in fresh]
        )
    return replays


def _seen_by_sender(batch: list[_Pending]) -> dict[str, list[str]]:
    by_sender: dict[str, set[str]] = {}
    for item in batch:
        if item.seen is not None:
            by_sender.setdefault(item.seen.sender, set()).add(item.seen.message_id)
    return {sender: sorted(ids) for sender, ids in by_sender.items()}


def _split_replays(
    batch: list[_Pending], known: set[tuple[str, str]]
) -> tuple[set[int], list[tuple[str, str, datetime]]]:
    """(items whose id was seen before, or earlier in this batch; the ids to insert)."""
    replays: set[int] = set()
    fresh: list[tuple[str, str, datetime]] = []
    for item in batch:
        if item.seen is None:
            continue
        key = (item.seen.sender, item.seen.message_id)
        if key in known:
            replays.add(id(item))
            continue
        known.add(key)
        fresh.append((key[0], key[1], item.seen.expires_at))
    return replays, fresh


async def log_head(engine: AsyncEngine) -> tuple[int, str]:
    async with engine.connect() as conn:
        row = (await conn.execute(text(_HEAD))).first()
    return (int(row[0]), str(row[1])) if row else (0, GENESIS)


@dataclass
class LogFilter:
    """Filters an operator can combine; every one optional."""

    since: datetime | None = None
    until: datetime | None = None
    peer: str | None = None
    plan_id: str | None = None
    message_type: str | None = None
    outcome: str | None = None
    reason: str | None = None
    after_seq: int | None = None


async def query_log(
    engine: AsyncEngine,
    flt: LogFilter,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = True,
) -> list[dict[str, Any]]:
    from sqlalchemy import select

    table = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
    query = select(table)
    if flt.since is not None:
        query = query.where(table.c.at >= flt.since)
    if flt.until is not None:
        query = query.where(table.c.at < flt.until)
    if flt.after_seq is not None:
        query = query.where(table.c.seq > flt.after_seq)
    for column, value in (
        ("peer", flt.peer),
        ("plan_id", flt.plan_id),
        ("message_type", flt.message_type),
        ("outcome", flt.outcome),
        ("reason", flt.reason),
    ):
        if value is not None:
            query = query.where(table.c[column] == value)
    order = table.c.seq.desc() if newest_first else table.c.seq
    query = query.order_by(order).limit(limit).offset(offset)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [dict(r) for r in rows]


def entry_json(row: dict[str, Any]) -> dict[str, Any]:
    """An entry as operators export it (JSON lines, CSV, pages)."""
    return {**{k: row[k] for k in COLUMNS}, "at": format_at(row["at"])}
