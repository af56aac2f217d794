"""Queries of exchange-log archiving (``barnplan log archive``) and of the log's growth, each
written once for SQLite and PostgreSQL.

Archiving moves a prefix of the log (entries 1..N, or the entries after the previous archive up
to N) into a file and deletes it from the store in the transaction that records the boundary
(``log_archive``). The seqs of the live log continue from N + 1, so a peer's witness, the metrics'
cursor and the pages see a log that only lost its oldest entries.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, and_, cast, delete, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from .log_entry import COLUMNS
from .tables import CheckpointWitness, ExchangeLogEntry, LogArchive, LogCheckpoint

T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
T_ARCHIVE = LogArchive.__table__  # type: ignore[attr-defined]
T_CHECKPOINT = LogCheckpoint.__table__  # type: ignore[attr-defined]
T_WITNESS = CheckpointWitness.__table__  # type: ignore[attr-defined]

ARCHIVE_TYPE = "log.archive"  # the entry an archive run appends to the live log
ARCHIVED = "archived"


def archive_message_id(seq: int) -> str:
    """The ``message_id`` of the ``log.archive`` entry of the archive that ends at ``seq``:
    the entry binds the boundary into the chain that continues after it."""
    return f"archive-{seq}"


@dataclass(frozen=True)
class Boundary:
    """Where the live log starts: the last archived entry (``seq``, ``head_hash``) with this
    node's signed checkpoint of it."""

    seq: int
    head_hash: str
    first_seq: int
    entries: int
    signed: dict[str, Any]
    file_sha256: str
    archived_at: datetime


async def boundary(conn: AsyncConnection) -> Boundary | None:
    """The latest archive (the highest ``seq``), or None if nothing was archived."""
    row = (
        (await conn.execute(select(T_ARCHIVE).order_by(T_ARCHIVE.c.seq.desc()).limit(1)))
        .mappings()
        .first()
    )
    if row is None:
        return None
    return Boundary(
        seq=int(row["seq"]),
        head_hash=str(row["head_hash"]),
        first_seq=int(row["first_seq"]),
        entries=int(row["entries"]),
        signed=json.loads(row["signed"]),
        file_sha256=str(row["file_sha256"]),
        archived_at=row["archived_at"],
    )


async def boundary_head(conn: AsyncConnection, seq: int) -> str | None:
    """The head of the archive that ended at ``seq``, if this node recorded one."""
    found = (
        await conn.execute(select(T_ARCHIVE.c.head_hash).where(T_ARCHIVE.c.seq == seq).limit(1))
    ).scalar_one_or_none()
    return None if found is None else str(found)


async def last_seq_before(conn: AsyncConnection, before: datetime) -> int:
    """The last entry logged before ``before`` (0 if none)."""
    found = (
        await conn.execute(select(func.max(T_LOG.c.seq)).where(T_LOG.c.at < before))
    ).scalar_one_or_none()
    return int(found or 0)


@dataclass(frozen=True)
class ArchivePoint:
    """A checkpoint an archive may end at, and how many peers witnessed it."""

    seq: int
    head: str
    signed: dict[str, Any]
    witnesses: int


async def checkpoint_at_or_below(
    conn: AsyncConnection, above: int, through: int, witnessed: bool
) -> ArchivePoint | None:
    """The highest checkpoint with ``above < seq <= through`` (one a peer witnessed, if
    ``witnessed``), with its number of witnesses."""
    count = (
        select(func.count())
        .where(T_WITNESS.c.seq == T_CHECKPOINT.c.seq)
        .correlate(T_CHECKPOINT)
        .scalar_subquery()
    )
    query = select(T_CHECKPOINT.c.seq, T_CHECKPOINT.c.head_hash, T_CHECKPOINT.c.signed, count)
    query = query.where(T_CHECKPOINT.c.seq > above, T_CHECKPOINT.c.seq <= through)
    if witnessed:
        query = query.where(count > 0)
    row = (await conn.execute(query.order_by(T_CHECKPOINT.c.seq.desc()).limit(1))).first()
    if row is None:
        return None
    return ArchivePoint(int(row[0]), str(row[1]), json.loads(row[2]), int(row[3]))


async def entries_between(
    engine: AsyncEngine, lo: int, hi: int, batch: int = 10_000
) -> AsyncIterator[Sequence[Sequence[Any]]]:
    """The entries with ``lo <= seq <= hi`` in seq order, as rows of ``COLUMNS``, in parts."""
    query = select(*[T_LOG.c[c] for c in COLUMNS]).where(T_LOG.c.seq >= lo, T_LOG.c.seq <= hi)
    async with engine.connect() as conn:
        stream = await conn.stream(query.order_by(T_LOG.c.seq))
        async for part in stream.partitions(batch):
            yield part


async def checkpoints_between(
    conn: AsyncConnection, lo: int, hi: int
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """This node's signed checkpoints with ``lo <= seq <= hi`` in seq order, each with the
    witnesses its peers signed of it."""
    rows = (
        await conn.execute(
            select(T_CHECKPOINT.c.seq, T_CHECKPOINT.c.signed, T_WITNESS.c.signed)
            .select_from(T_CHECKPOINT.outerjoin(T_WITNESS, T_WITNESS.c.seq == T_CHECKPOINT.c.seq))
            .where(T_CHECKPOINT.c.seq >= lo, T_CHECKPOINT.c.seq <= hi)
            .order_by(T_CHECKPOINT.c.seq, T_WITNESS.c.witness)
        )
    ).all()
    found: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for seq, checkpoint, witness in rows:
        item = found.setdefault(int(seq), (json.loads(checkpoint), []))
        if witness is not None:
            item[1].append(json.loads(witness))
    return [found[seq] for seq in sorted(found)]


async def first_seq(conn: AsyncConnection) -> int | None:
    """The live log's first entry (None for an empty log)."""
    found = (await conn.execute(select(func.min(T_LOG.c.seq)))).scalar_one_or_none()
    return None if found is None else int(found)


async def delete_through(conn: AsyncConnection, seq: int) -> int:
    """Delete the entries up to ``seq``; the number deleted."""
    result = await conn.execute(delete(T_LOG).where(T_LOG.c.seq <= seq))
    return int(result.rowcount or 0)


async def record_archive(conn: AsyncConnection, archive: Boundary) -> None:
    await conn.execute(
        T_ARCHIVE.insert().values(
            seq=archive.seq,
            head_hash=archive.head_hash,
            first_seq=archive.first_seq,
            entries=archive.entries,
            signed=json.dumps(archive.signed),
            file_sha256=archive.file_sha256,
            archived_at=archive.archived_at,
        )
    )


async def archive_entries(conn: AsyncConnection, peer: str, seq: int) -> list[int]:
    """The live log's ``log.archive`` entries (outcome ``archived``) that name the archive
    ending at ``seq``: the boundary's record in the chain."""
    rows = await conn.execute(
        select(T_LOG.c.seq).where(
            and_(
                T_LOG.c.peer == peer,
                T_LOG.c.message_type == ARCHIVE_TYPE,
                T_LOG.c.message_id == archive_message_id(seq),
                T_LOG.c.outcome == ARCHIVED,
            )
        )
    )
    return [int(r[0]) for r in rows]


# --- growth ---------------------------------------------------------------------------------------

# an entry's size as stored: the length of its text columns plus 16 bytes for its numbers and
# time (an estimate of the data, not of the database's pages and indexes)
_TEXT = (
    "direction",
    "peer",
    "message_type",
    "message_id",
    "plan_id",
    "consent_id",
    "purpose",
    "professional",
    "categories",
    "withheld",
    "outcome",
    "reason",
    "prev_hash",
    "hash",
)


def _entry_bytes() -> ColumnElement[Any]:
    total: ColumnElement[Any] = literal_column("16")
    for name in _TEXT:
        total = total + func.coalesce(func.length(T_LOG.c[name]), 0)
    return total


@dataclass(frozen=True)
class LogSize:
    entries: int
    bytes: int
    first_seq: int | None
    last_seq: int | None


async def log_size(conn: AsyncConnection) -> LogSize:
    """The live log's entries, their estimated bytes and its first and last seq."""
    row = (
        await conn.execute(
            select(
                func.count(), func.sum(_entry_bytes()), func.min(T_LOG.c.seq), func.max(T_LOG.c.seq)
            )
        )
    ).one()
    return LogSize(
        int(row[0]),
        int(row[1] or 0),
        None if row[2] is None else int(row[2]),
        None if row[3] is None else int(row[3]),
    )


async def growth_by_day(conn: AsyncConnection, since: datetime) -> list[tuple[date, int, int]]:
    """Entries and estimated bytes per UTC day from ``since`` on, oldest day first."""
    if conn.dialect.name == "postgresql":
        day: ColumnElement[Any] = cast(func.timezone("UTC", T_LOG.c.at), Date)
    else:  # SQLite stores the UTC time as text
        day = func.date(T_LOG.c.at)
    rows = (
        await conn.execute(
            select(day.label("day"), func.count(), func.sum(_entry_bytes()))
            .where(T_LOG.c.at >= since)
            .group_by(day)
            .order_by(day)
        )
    ).all()
    return [
        (d if isinstance(d, date) else date.fromisoformat(str(d)), int(n), int(b or 0))
        for d, n, b in rows
    ]
