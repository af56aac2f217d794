"""Queries over revocations (and tombstones), the outbox and per-peer catch-up cursors."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import Consent, OutboxItem, RevocationRecord

REVOCATION_LOCK_ID = 0x62707276  # "bprv"
T_REVOCATION = RevocationRecord.__table__  # type: ignore[attr-defined]
T_OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
T_CONSENT = Consent.__table__  # type: ignore[attr-defined]


def _of(consent_id: Any, plan_id: Any) -> Any:
    """A revocation is of a consent *in a plan*: the plan of the consent's statement, or for a
    tombstone the plan its notice named. One bound to another plan revokes nothing here."""
    return and_(T_REVOCATION.c.consent_id == consent_id, T_REVOCATION.c.plan_id == plan_id)


def revoked_clause(consent_id: Any, plan_id: Any) -> Any:
    """Whether ``consent_id`` is revoked within ``plan_id`` (values or SQL expressions), as
    an EXISTS a larger read can select (``records.release_facts``)."""
    return select(T_REVOCATION.c.seq).where(_of(consent_id, plan_id)).exists()


def is_revoked_sync(conn: Connection, consent_id: str, plan_id: str) -> bool:
    """Is ``consent_id`` revoked within ``plan_id`` (pass the plan of its statement when held)?"""
    return bool(conn.execute(select(revoked_clause(consent_id, plan_id))).scalar())


async def is_revoked(conn: AsyncConnection, consent_id: str, plan_id: str) -> bool:
    return await conn.run_sync(is_revoked_sync, consent_id, plan_id)


def get_revocation_sync(conn: Connection, consent_id: str, plan_id: str) -> RevocationRecord | None:
    row = conn.execute(select(T_REVOCATION).where(_of(consent_id, plan_id))).mappings().first()
    return RevocationRecord.model_validate(dict(row)) if row else None


async def get_revocation(
    conn: AsyncConnection, consent_id: str, plan_id: str
) -> RevocationRecord | None:
    return await conn.run_sync(get_revocation_sync, consent_id, plan_id)


def insert_revocation_sync(
    conn: Connection,
    *,
    consent_id: str,
    plan_id: str,
    revoked_at: datetime,
    revoked_by: str,
    notice_id: str,
    now: datetime,
) -> int:
    """Insert a revocation with the next local seq (the catch-up cursor peers page by).

    Seqs are handed out under a lock (PostgreSQL advisory transaction lock; SQLite's write
    transactions are already serialized) so two node processes never pick the same one.
    Written for a synchronous connection so it can run in the exchange log's worker-thread
    transaction; ``insert_revocation`` runs it on an async one.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": REVOCATION_LOCK_ID})
    seq = int(conn.execute(select(func.coalesce(func.max(T_REVOCATION.c.seq), 0))).scalar_one()) + 1
    conn.execute(
        T_REVOCATION.insert().values(
            seq=seq,
            consent_id=consent_id,
            plan_id=plan_id,
            revoked_at=revoked_at,
            revoked_by=revoked_by,
            notice_id=notice_id,
            recorded_at=now,
        )
    )
    return seq


async def insert_revocation(conn: AsyncConnection, **values: Any) -> int:
    return await conn.run_sync(lambda sync: insert_revocation_sync(sync, **values))


async def revocations_since(
    conn: AsyncConnection, cursor: int, led: list[str], joined: list[str], own: str, limit: int
) -> list[RevocationRecord]:
    """Revocations after ``cursor`` that this node vouches for: every one of the plans in
    ``led`` (it leads them) and, of the plans in ``joined``, those it recorded itself (``own``
    is its node id). A participant passes on nothing it did not record (SPEC §7.6)."""
    if not led and not joined:
        return []
    which = or_(
        T_REVOCATION.c.plan_id.in_(led),
        and_(T_REVOCATION.c.plan_id.in_(joined), T_REVOCATION.c.revoked_by == own),
    )
    rows = (
        (
            await conn.execute(
                select(T_REVOCATION)
                .where(and_(T_REVOCATION.c.seq > cursor, which))
                .order_by(T_REVOCATION.c.seq)
                .limit(limit)
            )
        )
        .mappings()
        .all()
    )
    return [RevocationRecord.model_validate(dict(r)) for r in rows]


async def max_revocation_seq(conn: AsyncConnection) -> int:
    return int(
        (await conn.execute(select(func.coalesce(func.max(T_REVOCATION.c.seq), 0)))).scalar_one()
    )


# --- outbox ---------------------------------------------------------------------------------


async def enqueue(
    conn: AsyncConnection,
    item_id: str,
    peer: str,
    message_type: str,
    body: dict[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        T_OUTBOX.insert().values(
            item_id=item_id,
            peer=peer,
            message_type=message_type,
            body=json.dumps(body, ensure_ascii=False),
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )


def _due(now: datetime) -> Any:
    """Undelivered items whose next attempt has come (index ``ix_outbox_undelivered_due``)."""
    return and_(T_OUTBOX.c.delivered_at.is_(None), T_OUTBOX.c.next_attempt_at <= now)


def has_due_sync(conn: Connection, now: datetime) -> bool:
    """Is any undelivered item due? A read, so an idle outbox costs no write transaction."""
    return conn.execute(select(T_OUTBOX.c.item_id).where(_due(now)).limit(1)).first() is not None


async def claim_due(
    conn: AsyncConnection, now: datetime, lease_until: datetime, peer: str | None, limit: int = 100
) -> list[OutboxItem]:
    """Claim due, undelivered items by pushing their next attempt to ``lease_until``.

    On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED`` so several node processes
    never claim the same item; on SQLite the caller's ``BEGIN IMMEDIATE`` serializes claims.
    """
    query = select(T_OUTBOX).where(_due(now)).order_by(T_OUTBOX.c.created_at).limit(limit)
    if peer is not None:
        query = query.where(T_OUTBOX.c.peer == peer)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = (await conn.execute(query)).mappings().all()
    items = [OutboxItem.model_validate(dict(r)) for r in rows]
    if items:
        await conn.execute(
            update(T_OUTBOX)
            .where(T_OUTBOX.c.item_id.in_([i.item_id for i in items]))
            .values(next_attempt_at=lease_until)
        )
    return items


async def mark_delivered(
    conn: AsyncConnection, item_id: str, now: datetime, note: str | None = None
) -> None:
    """Acknowledged; ``note`` (shown where a last error would be) says how, when that matters
    to an operator (a key announcement the peer answered ``superseded``)."""
    await conn.execute(
        update(T_OUTBOX)
        .where(T_OUTBOX.c.item_id == item_id)
        .values(
            delivered_at=now,
            attempts=T_OUTBOX.c.attempts + 1,
            last_error=note[:200] if note else None,
        )
    )


async def mark_failed(
    conn: AsyncConnection, item_id: str, next_attempt: datetime, error: str
) -> None:
    await conn.execute(
        update(T_OUTBOX)
        .where(T_OUTBOX.c.item_id == item_id)
        .values(
            attempts=T_OUTBOX.c.attempts + 1, next_attempt_at=next_attempt, last_error=error[:200]
        )
    )


async def reset_backoff(conn: AsyncConnection, peer: str, now: datetime) -> int:
    """Make every pending item for ``peer`` due now (the peer showed it is up)."""
    result = await conn.execute(
        update(T_OUTBOX)
        .where(
            and_(
                T_OUTBOX.c.peer == peer,
                T_OUTBOX.c.delivered_at.is_(None),
                T_OUTBOX.c.next_attempt_at > now,
            )
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount or 0)


async def pending_peers(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(
        select(T_OUTBOX.c.peer).where(T_OUTBOX.c.delivered_at.is_(None)).distinct()
    )
    return {r[0] for r in rows}


async def outbox_rows(conn: AsyncConnection, include_delivered: bool = False) -> list[OutboxItem]:
    query = select(T_OUTBOX).order_by(T_OUTBOX.c.peer, T_OUTBOX.c.created_at)
    if not include_delivered:
        query = query.where(T_OUTBOX.c.delivered_at.is_(None))
    rows = (await conn.execute(query)).mappings().all()
    return [OutboxItem.model_validate(dict(r)) for r in rows]


# --- catch-up cursors -----------------------------------------------------------------------


# --- consent expiry -------------------------------------------------------------------------


async def mark_expired(conn: AsyncConnection, now: datetime) -> list[str]:
    rows = await conn.execute(
        select(T_CONSENT.c.consent_id).where(
            and_(T_CONSENT.c.valid_until <= now, T_CONSENT.c.expired_at.is_(None))
        )
    )
    ids = [r[0] for r in rows]
    if ids:
        await conn.execute(
            update(T_CONSENT).where(T_CONSENT.c.consent_id.in_(ids)).values(expired_at=now)
        )
    return ids
