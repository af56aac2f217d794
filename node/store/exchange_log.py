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
import hashlib
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# the column order, the genesis hash and the chain types live with the walker, which child
# processes import without SQLAlchemy; re-exported here for the log's other callers
from ..errors import Conflict
from .chain_verify import COLUMNS as COLUMNS
from .chain_verify import GENESIS as GENESIS
from .chain_verify import ChainProblem as ChainProblem
from .chain_verify import ChainResult, ChainWalker, aware_at_text, entry_text, verify_sqlite
from .engine import BUSY_TIMEOUT_MS, begin_write, write_lock
from .tables import ExchangeLogEntry, SeenMessage

LOG_LOCK_ID = 0x62706C67  # "bplg"
# commits on the event loop between two WAL checkpoints in a worker thread (the synchronous
# twin's connections do not checkpoint by themselves, see ``sqlite_sync_twin``)
CHECKPOINT_EVERY = 100
_HEAD = "SELECT seq, hash FROM exchange_log ORDER BY seq DESC LIMIT 1"
_INSERT = (
    f"INSERT INTO exchange_log ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
)


@dataclass(frozen=True)
class SyncChange:
    """A state change written against a synchronous connection. On SQLite a batch whose changes
    are all of this kind runs as one call in a worker thread (statements cost microseconds
    there, against a thread round trip each through the async driver); elsewhere it runs on the
    async connection through ``run_sync``. Same transaction and savepoint either way."""

    apply: Callable[[Connection], object]


StateChange = Callable[[AsyncConnection], Awaitable[None]] | SyncChange
T_SEEN = SeenMessage.__table__  # type: ignore[attr-defined]
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


def format_at(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(row: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of every field but ``hash`` (``at`` as RFC 3339 µs)."""
    material = {k: v for k, v in row.items() if k != "hash"}
    material["at"] = format_at(row["at"])
    data = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


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
    text = entry_text(
        format_at(at)[:-1],
        row["categories"],
        draft.consent_id,
        draft.direction,
        draft.message_id,
        draft.message_type,
        draft.outcome,
        draft.peer,
        draft.plan_id,
        prev_hash,
        draft.professional,
        draft.purpose,
        draft.reason,
        draft.released,
        seq,
        row["withheld"],
    )
    row["hash"] = (
        entry_hash(row) if text is None else hashlib.sha256(text.encode("utf-8")).hexdigest()
    )
    return row


def sqlite_time(when: datetime) -> str:
    """A time as SQLAlchemy stores a ``UTCDateTime`` in SQLite (naive UTC text, microseconds),
    for rows written with the ``sqlite3`` driver directly."""
    if when.tzinfo is None:
        raise ValueError("naive datetime given to the store")  # as UTCDateTime refuses it
    u = when.astimezone(UTC)
    return (  # SQLAlchemy's SQLite DATETIME format
        f"{u.year:04d}-{u.month:02d}-{u.day:02d} "
        f"{u.hour:02d}:{u.minute:02d}:{u.second:02d}.{u.microsecond:06d}"
    )


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

    def __init__(
        self, engine: AsyncEngine, now: Callable[[], datetime], sync: Engine | None = None
    ) -> None:
        self._engine = engine
        self._sync = sync
        self._now = now
        self._pending: list[_Pending] = []
        self._loop_conn: Any = None
        self._commits = 0
        self._checkpointer: asyncio.Task[None] | None = None
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
        """Flush what is queued, let a running checkpoint finish, release the connection."""
        for task in (self._flusher, self._checkpointer):
            if task is not None:
                with contextlib.suppress(Exception):  # reported where it failed
                    await asyncio.shield(task)
        self.close_connection()

    def _committed(self) -> None:
        """Count a commit made on the event loop; every ``CHECKPOINT_EVERY`` of them, start a
        WAL checkpoint in a worker thread (never two at once)."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return
        if self._checkpointer is not None and not self._checkpointer.done():
            return
        self._commits = 0
        self._checkpointer = asyncio.get_running_loop().create_task(self._run_checkpoint())

    async def _run_checkpoint(self) -> None:
        """Checkpoint while this process's writers wait their turn (``write_lock``): the event
        loop goes on, log batches just grow meanwhile. A checkpoint that runs beside writers
        never catches up with them, and SQLite starts the WAL over only after one that did, so
        without the pause the WAL file would grow without end. Passive: it waits for no reader
        and no other process."""
        async with write_lock(self._engine) or contextlib.nullcontext():
            await asyncio.to_thread(self._checkpoint)

    def _checkpoint(self) -> None:
        assert self._sync is not None
        try:
            with self._sync.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:  # a later checkpoint (or another connection) catches up
            log.warning("exchange_log.checkpoint_failed", error=exc.__class__.__name__)

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
        if self._sync is not None and all(
            item.change is None or isinstance(item.change, SyncChange) for item in batch
        ):
            # no async state change to run: the whole transaction is one synchronous call, run
            # right here (a batch costs well under a millisecond; a worker thread's hand-offs
            # cost more) unless another process holds SQLite's write lock: then in a thread,
            # waiting for it there rather than in the event loop
            async with write_lock(self._engine) or contextlib.nullcontext():
                done = (
                    self._write_on_loop(batch)
                    if all(item.change is None for item in batch)
                    else self._write_sync(batch, wait=False)
                )
                if done is None:
                    done = await asyncio.to_thread(self._write_sync, batch)
                assert done is not None
                self._committed()
                return done
        results: list[int | BaseException] = []
        async with begin_write(self._engine) as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": LOG_LOCK_ID})
            head = (await conn.execute(text(_HEAD))).first()
            seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
            replays = await self._record_seen(conn, batch)
            rows = []
            for item in batch:
                outcome: int | BaseException
                if id(item) in replays:
                    item.draft.outcome, item.draft.reason = "refused", "replayed"
                    outcome = DuplicateMessage(item.seen.message_id if item.seen else "")
                elif item.change is not None:
                    try:
                        async with conn.begin_nested():
                            if isinstance(item.change, SyncChange):
                                await conn.run_sync(item.change.apply)
                            else:
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
            await conn.execute(ExchangeLogEntry.__table__.insert(), rows)  # type: ignore[attr-defined]
        return results

    def loop_connection(self) -> Any:
        """SQLite: one ``sqlite3`` connection (of the synchronous twin's pool) held for the
        log's life and used only synchronously on the event loop thread: by the group commit of
        batches without state changes, and by the holder's release reads (``Node.release_reader``),
        so checking a connection out per request, and re-reading pages after each commit of
        another connection, are both saved. None on PostgreSQL."""
        if self._sync is None:
            return None
        if self._loop_conn is None:
            self._loop_conn = self._sync.raw_connection()
        return self._loop_conn.driver_connection

    def close_connection(self) -> None:
        if self._loop_conn is not None:
            self._loop_conn.close()
            self._loop_conn = None

    def _write_on_loop(self, batch: list[_Pending]) -> list[int | BaseException] | None:
        """A batch without state changes on ``loop_connection``, if SQLite's write lock is
        free right now; None (nothing done) if another process holds it."""
        raw = self.loop_connection()
        try:
            with _no_busy_wait(raw):
                raw.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc):
                raise
            return None  # another process is writing
        try:
            results = _batch_rows(raw, batch, None)
            raw.execute("COMMIT")
        except BaseException:
            if raw.in_transaction:
                raw.execute("ROLLBACK")
            raise
        return results

    def _write_sync(
        self, batch: list[_Pending], wait: bool = True
    ) -> list[int | BaseException] | None:
        """The batch's transaction on the synchronous twin. With ``wait=False`` the write lock
        is tried once, without SQLite's busy wait: None (nothing done) if it is taken."""
        assert self._sync is not None
        with self._sync.connect() as conn:
            if not wait:
                return self._try_write(conn, batch)
            with conn.execution_options(immediate=True).begin():
                return self._write_batch(conn, batch)

    def _try_write(
        self, conn: Connection, batch: list[_Pending]
    ) -> list[int | BaseException] | None:
        try:
            with _no_busy_wait(conn.connection.driver_connection):
                transaction = conn.execution_options(immediate=True).begin()
        except OperationalError as exc:
            if not _is_busy(exc.orig):
                raise
            return None  # another process is writing
        with transaction:
            return self._write_batch(conn, batch)

    @staticmethod
    def _write_batch(conn: Connection, batch: list[_Pending]) -> list[int | BaseException]:
        """The batch on a SQLAlchemy connection to SQLite, in the transaction the caller began:
        state changes run through SQLAlchemy, the log's own statements through the driver."""
        return _batch_rows(conn.connection.driver_connection, batch, conn)

    @staticmethod
    async def _record_seen(conn: AsyncConnection, batch: list[_Pending]) -> set[int]:
        """``_record_seen_sync`` on the async connection."""
        return await conn.run_sync(_record_seen_sync, batch)


@contextlib.contextmanager
def _no_busy_wait(raw: Any) -> Iterator[None]:
    """For one attempt to take the write lock: fail at once instead of SQLite's busy wait."""
    raw.execute("PRAGMA busy_timeout=0")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")


def _is_busy(exc: BaseException | None) -> bool:
    """SQLITE_BUSY (or one of its extended codes): another connection holds the write lock.
    Any other error is a real one and must not be taken for a lock held elsewhere."""
    return isinstance(exc, sqlite3.Error) and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def _batch_rows(
    raw: Any, batch: list[_Pending], conn: Connection | None
) -> list[int | BaseException]:
    """Write a batch's seen ids, state changes (on ``conn``) and chained entries in the open
    SQLite transaction of ``raw``. The log's own statements go to the ``sqlite3`` driver
    directly: SQLAlchemy's per-statement work cost more than the statements."""
    results: list[int | BaseException] = []
    head = raw.execute(_HEAD).fetchone()
    seq, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    replays = _record_seen_raw(raw, batch)
    rows = []
    for item in batch:
        outcome: int | BaseException = seq + 1
        if id(item) in replays:
            item.draft.outcome, item.draft.reason = "refused", "replayed"
            outcome = DuplicateMessage(item.seen.message_id if item.seen else "")
        elif isinstance(item.change, SyncChange):
            assert conn is not None
            try:
                with conn.begin_nested():
                    item.change.apply(conn)
            except Exception as exc:
                item.draft.outcome, item.draft.reason = "failed", "internal"
                outcome = exc
        seq += 1
        assert item.draft.at is not None
        row = draft_row(item.draft, seq, prev, item.draft.at)
        prev = row["hash"]
        row["at"] = sqlite_time(row["at"])
        rows.append(tuple(row[c] for c in COLUMNS))
        results.append(outcome)
    raw.executemany(_INSERT, rows)
    return results


def _record_seen_sync(conn: Connection, batch: list[_Pending]) -> set[int]:
    """Insert the batch's seen ids in one statement; return the items that are replays.

    Runs under the log's write lock (BEGIN IMMEDIATE / advisory lock), and every seen id is
    written through here or ``_record_seen_raw``, so the SELECT cannot race with another
    writer's INSERT.
    """
    known: set[tuple[str, str]] = set()
    for sender, ids in _seen_by_sender(batch).items():  # (sender, message_id) is the key
        found = conn.execute(
            select(T_SEEN.c.message_id).where(
                (T_SEEN.c.sender == sender) & T_SEEN.c.message_id.in_(ids)
            )
        )
        known.update((sender, r[0]) for r in found)
    replays, fresh = _split_replays(batch, known)
    if fresh:
        conn.execute(
            T_SEEN.insert(),
            [{"sender": s, "message_id": m, "expires_at": e} for s, m, e in fresh],
        )
    return replays


def _record_seen_raw(raw: Any, batch: list[_Pending]) -> set[int]:
    """``_record_seen_sync`` through the ``sqlite3`` driver (the SQLite group commit)."""
    known: set[tuple[str, str]] = set()
    for sender, ids in _seen_by_sender(batch).items():
        marks = ",".join("?" * len(ids))
        found = raw.execute(
            f"SELECT message_id FROM seen_message WHERE sender = ? AND message_id IN ({marks})",
            (sender, *ids),
        )
        known.update((sender, r[0]) for r in found)
    replays, fresh = _split_replays(batch, known)
    if fresh:
        raw.executemany(
            "INSERT INTO seen_message (sender, message_id, expires_at) VALUES (?, ?, ?)",
            [(s, m, sqlite_time(e)) for s, m, e in fresh],
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


async def verify_chain(
    engine: AsyncEngine, keep: set[int] | None = None, batch: int = 20_000, parts: int | None = None
) -> ChainResult:
    """Walk the whole chain in seq order; stop at the first entry that does not fit.

    ``keep`` names seqs whose hashes the caller wants back (to compare with checkpoints). On a
    SQLite file the walk reads through its own read-only ``sqlite3`` connection in a worker
    thread, and in ``parts`` ranges at once (child processes; default: one per core for a long
    chain), see ``chain_verify``: a million entries took ~25-50 s through the async stream.
    Elsewhere (PostgreSQL, an in-memory SQLite) the engine streams the rows into the same walker.
    """
    path = _sqlite_file(engine)
    if path is not None:
        return await asyncio.to_thread(verify_sqlite, path, keep, parts)
    walker = ChainWalker(keep, aware_at_text, _same)
    table = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
    query = text(f"SELECT {', '.join(COLUMNS)} FROM exchange_log ORDER BY seq")
    async with engine.connect() as conn:
        stream = await conn.stream(query.columns(*[table.c[c] for c in COLUMNS]))
        async for part in stream.partitions(batch):
            if not walker.feed(part):
                break
    return walker.result()


def _sqlite_file(engine: AsyncEngine) -> str | None:
    """The engine's SQLite database file, if it is one that another connection can open."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database if os.path.isfile(database) else None


def _same(at: datetime) -> datetime:
    return at


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
