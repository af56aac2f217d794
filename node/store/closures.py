"""Queries over plan closures (SPEC §7.11) and each peer's closure catch-up cursor."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import Plan, PlanClosure

CLOSURE_LOCK_ID = 0x62706370  # "bpcp"
T_CLOSURE = PlanClosure.__table__  # type: ignore[attr-defined]
T_PLAN = Plan.__table__  # type: ignore[attr-defined]


def get_closure_sync(conn: Connection, plan_id: str) -> PlanClosure | None:
    row = conn.execute(select(T_CLOSURE).where(T_CLOSURE.c.plan_id == plan_id)).mappings().first()
    return PlanClosure.model_validate(dict(row)) if row else None


async def get_closure(conn: AsyncConnection, plan_id: str) -> PlanClosure | None:
    return await conn.run_sync(get_closure_sync, plan_id)


def record_closure_sync(
    conn: Connection,
    *,
    plan_id: str,
    closed_at: datetime,
    closed_by: str,
    notice_id: str,
    now: datetime,
) -> bool:
    """Record that ``plan_id`` is closed: the closure row with the next local seq, and the plan
    itself read-only (status ``closed``, unless this node declined it: that stays declined).
    False, changing nothing, when the closure was already recorded (idempotent, final).

    Seqs are handed out under a lock, as revocations' are (``insert_revocation_sync``)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CLOSURE_LOCK_ID})
    if get_closure_sync(conn, plan_id) is not None:
        return False
    seq = int(conn.execute(select(func.coalesce(func.max(T_CLOSURE.c.seq), 0))).scalar_one()) + 1
    conn.execute(
        T_CLOSURE.insert().values(
            seq=seq,
            plan_id=plan_id,
            closed_at=closed_at,
            closed_by=closed_by,
            notice_id=notice_id,
            recorded_at=now,
        )
    )
    conn.execute(
        update(T_PLAN)
        .where(T_PLAN.c.plan_id == plan_id, T_PLAN.c.status != "declined")
        .values(status="closed", closed_at=closed_at, link_personnummer=None)
    )
    return True


async def record_closure(conn: AsyncConnection, **values: object) -> bool:
    return await conn.run_sync(lambda sync: record_closure_sync(sync, **values))  # type: ignore[arg-type]


async def closures_since(
    conn: AsyncConnection, cursor: int, led: list[str], limit: int
) -> list[PlanClosure]:
    """Closures after ``cursor`` of the plans in ``led`` (this node leads them: only a plan's
    lead closes it and only the lead vouches for a closure, SPEC §7.11)."""
    if not led:
        return []
    rows = (
        (
            await conn.execute(
                select(T_CLOSURE)
                .where(T_CLOSURE.c.seq > cursor, T_CLOSURE.c.plan_id.in_(led))
                .order_by(T_CLOSURE.c.seq)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return [PlanClosure.model_validate(dict(r)) for r in rows]


async def max_closure_seq(conn: AsyncConnection) -> int:
    return int(
        (await conn.execute(select(func.coalesce(func.max(T_CLOSURE.c.seq), 0)))).scalar_one()
    )
