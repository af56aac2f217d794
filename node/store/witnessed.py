"""Queries of log witnessing (SPEC.md §7.8), both roles, each written once.

As a witness: what this node holds of a peer's log (the checkpoints it countersigned, in
``witnessed_checkpoint``, and the restore declarations it accepted, in ``witness_event``), its
refusals, and the setting aside of a restored peer's superseded checkpoints.

As a witnessed node: its own checkpoints (``log_checkpoint``) that a peer has not countersigned
yet, each with the link it follows, and its own restore declarations (``log_restore``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ..domain.witness_rule import Held, Link
from .log_entry import GENESIS
from .tables import (
    CheckpointWitness,
    ExchangeLogEntry,
    LogCheckpoint,
    LogRestore,
    WitnessedCheckpoint,
    WitnessEvent,
)

T_WITNESSED = WitnessedCheckpoint.__table__  # type: ignore[attr-defined]
T_EVENT = WitnessEvent.__table__  # type: ignore[attr-defined]
T_RESTORE = LogRestore.__table__  # type: ignore[attr-defined]
T_CHECKPOINT = LogCheckpoint.__table__  # type: ignore[attr-defined]
T_WITNESS = CheckpointWitness.__table__  # type: ignore[attr-defined]
T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]

REFUSED = "refused"
RESTORE = "restore"


# --- as a witness -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WitnessedLog:
    """What this node holds of one peer's log, for ``witness_rule``: ``held`` at the seq asked
    about and the latest link; the restore declaration it accepted last (as signed), if any."""

    held: Held
    declaration: str | None


async def witnessed_log(conn: AsyncConnection, origin: str, seq: int) -> WitnessedLog:
    """The checkpoints of ``origin`` this node countersigned and the last restore declaration it
    accepted (whose entry counts as witnessed: SPEC.md §7.8)."""
    at_seq = (
        await conn.execute(
            select(T_WITNESSED.c.head_hash).where(
                (T_WITNESSED.c.origin == origin) & (T_WITNESSED.c.seq == seq)
            )
        )
    ).scalar_one_or_none()
    highest = (
        await conn.execute(
            select(T_WITNESSED.c.seq, T_WITNESSED.c.head_hash)
            .where(T_WITNESSED.c.origin == origin)
            .order_by(T_WITNESSED.c.seq.desc())
            .limit(1)
        )
    ).first()
    restore = (
        await conn.execute(
            select(T_EVENT.c.seq, T_EVENT.c.head_hash, T_EVENT.c.signed)
            .where((T_EVENT.c.origin == origin) & (T_EVENT.c.kind == RESTORE))
            .order_by(T_EVENT.c.id.desc())
            .limit(1)
        )
    ).first()
    latest = Link(int(highest[0]), str(highest[1])) if highest is not None else None
    if restore is not None:
        declared = Link(int(restore[0]), str(restore[1]))
        if at_seq is None and declared.seq == seq:
            at_seq = declared.head
        if latest is None or declared.seq >= latest.seq:
            latest = declared
    return WitnessedLog(
        Held(None if at_seq is None else str(at_seq), latest),
        None if restore is None else str(restore[2]),
    )


async def record_witnessed(
    conn: AsyncConnection, origin: str, link: Link, signed: str, now: datetime
) -> None:
    """Keep a copy of a checkpoint this node countersigned (once per origin and seq)."""
    exists = (
        await conn.execute(
            select(T_WITNESSED.c.seq).where(
                (T_WITNESSED.c.origin == origin) & (T_WITNESSED.c.seq == link.seq)
            )
        )
    ).first()
    if exists is None:
        await conn.execute(
            T_WITNESSED.insert().values(
                origin=origin, seq=link.seq, head_hash=link.head, signed=signed, received_at=now
            )
        )


async def record_refusal(
    conn: AsyncConnection,
    origin: str,
    checkpoint: Link,
    problem: str,
    seen: Link | None,
    now: datetime,
) -> None:
    await conn.execute(
        T_EVENT.insert().values(
            origin=origin,
            at=now,
            kind=REFUSED,
            problem=problem,
            seq=checkpoint.seq,
            head_hash=checkpoint.head,
            seen_seq=None if seen is None else seen.seq,
        )
    )


async def accept_restore(
    conn: AsyncConnection,
    origin: str,
    declared: Link,
    signed: str,
    seen: Link | None,
    now: datetime,
) -> int:
    """Open a new history of ``origin`` at the declared entry: the checkpoints witnessed above
    it move into the event (kept as signed, as evidence) and out of the witnessed ones, so the
    new history's checkpoints are judged against the declaration. Returns how many moved."""
    above = (
        await conn.execute(
            select(T_WITNESSED.c.signed)
            .where((T_WITNESSED.c.origin == origin) & (T_WITNESSED.c.seq > declared.seq))
            .order_by(T_WITNESSED.c.seq)
        )
    ).all()
    await conn.execute(
        T_WITNESSED.delete().where(
            (T_WITNESSED.c.origin == origin) & (T_WITNESSED.c.seq > declared.seq)
        )
    )
    await conn.execute(
        T_EVENT.insert().values(
            origin=origin,
            at=now,
            kind=RESTORE,
            seq=declared.seq,
            head_hash=declared.head,
            seen_seq=None if seen is None else seen.seq,
            signed=signed,
            superseded=json.dumps([json.loads(row[0]) for row in above]),
        )
    )
    return len(above)


async def recent_events(engine: AsyncEngine, limit: int = 20) -> list[dict[str, Any]]:
    """The latest witness events, newest first, for the operators' pages: who, what, which
    entries; a declaration's note and how many checkpoints it set aside."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(select(T_EVENT).order_by(T_EVENT.c.id.desc()).limit(limit))
        ).mappings()
        events = []
        for row in rows:
            event = {k: row[k] for k in ("origin", "at", "kind", "problem", "seq", "seen_seq")}
            event["note"] = (
                json.loads(row["signed"]).get("note") if row["signed"] is not None else None
            )
            event["superseded"] = (
                len(json.loads(row["superseded"])) if row["superseded"] is not None else None
            )
            events.append(event)
    return events


# --- as the witnessed node -----------------------------------------------------------------------


@dataclass(frozen=True)
class ToWitness:
    """One of this node's checkpoints to send a peer: as signed, and the link it follows."""

    checkpoint: dict[str, Any]
    prior: Link | None


async def latest_declaration(conn: AsyncConnection) -> tuple[Link, dict[str, Any]] | None:
    """This node's latest restore declaration (its entry and the signed object), if any."""
    row = (
        await conn.execute(
            select(T_RESTORE.c.seq, T_RESTORE.c.head_hash, T_RESTORE.c.signed)
            .order_by(T_RESTORE.c.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    return Link(int(row[0]), str(row[1])), json.loads(row[2])


async def declarations(conn: AsyncConnection) -> list[tuple[int, dict[str, Any]]]:
    """This node's restore declarations, oldest first: (the entry declared, as signed)."""
    rows = (
        await conn.execute(select(T_RESTORE.c.seq, T_RESTORE.c.signed).order_by(T_RESTORE.c.id))
    ).all()
    return [(int(seq), json.loads(signed)) for seq, signed in rows]


async def record_declaration(
    conn: AsyncConnection, declared: Link, signed: dict[str, Any], now: datetime
) -> None:
    await conn.execute(
        T_RESTORE.insert().values(
            seq=declared.seq, head_hash=declared.head, signed=json.dumps(signed), declared_at=now
        )
    )


async def head_seq(conn: AsyncConnection) -> int:
    """The exchange log's last entry (0 for an empty log)."""
    last = (await conn.execute(select(func.max(T_LOG.c.seq)))).scalar_one_or_none()
    return int(last or 0)


async def entry_hash_at(conn: AsyncConnection, seq: int) -> str:
    """The hash of log entry ``seq`` (``GENESIS`` for 0, the empty log's head)."""
    if seq == 0:
        return GENESIS
    found = (
        await conn.execute(select(T_LOG.c.hash).where(T_LOG.c.seq == seq))
    ).scalar_one_or_none()
    if found is None:
        raise LookupError(f"no log entry {seq}")
    return str(found)


async def to_witness(conn: AsyncConnection, peer: str, limit: int) -> list[ToWitness]:
    """This node's checkpoints ``peer`` has not countersigned, oldest first (at most ``limit``),
    each with the link it follows: the checkpoint before it, or the latest restore declaration
    if that is later. Only checkpoints above that declaration: the ones below belong to the
    history the declaration left. If the peer countersigned them all, the latest again (a
    witness signs a checkpoint it holds again), so every round asks every peer something."""
    declared = await latest_declaration(conn)
    floor = declared[0].seq if declared is not None else -1
    acked = (
        await conn.execute(
            select(T_WITNESS.c.seq)
            .where((T_WITNESS.c.witness == peer) & (T_WITNESS.c.seq > floor))
            .order_by(T_WITNESS.c.seq.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    start = floor if acked is None else int(acked)
    rows = (
        await conn.execute(
            select(T_CHECKPOINT.c.seq, T_CHECKPOINT.c.head_hash, T_CHECKPOINT.c.signed)
            .where(T_CHECKPOINT.c.seq > start)
            .order_by(T_CHECKPOINT.c.seq)
            .limit(limit)
        )
    ).all()
    if not rows:
        rows = (
            await conn.execute(
                select(T_CHECKPOINT.c.seq, T_CHECKPOINT.c.head_hash, T_CHECKPOINT.c.signed)
                .where(T_CHECKPOINT.c.seq > floor)
                .order_by(T_CHECKPOINT.c.seq.desc())
                .limit(1)
            )
        ).all()
    if not rows:
        return []
    before = (
        await conn.execute(
            select(T_CHECKPOINT.c.seq, T_CHECKPOINT.c.head_hash)
            .where(T_CHECKPOINT.c.seq < int(rows[0][0]))
            .order_by(T_CHECKPOINT.c.seq.desc())
            .limit(1)
        )
    ).first()
    prior = Link(int(before[0]), str(before[1])) if before is not None else None
    if declared is not None and (prior is None or declared[0].seq >= prior.seq):
        prior = declared[0]
    out = []
    for seq, head, signed in rows:
        out.append(ToWitness(json.loads(signed), prior))
        prior = Link(int(seq), str(head))
    return out
