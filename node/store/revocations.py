"""Queries over revocations and tombstones."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .tables import RevocationRecord

T_REVOCATION = RevocationRecord.__table__  # type: ignore[attr-defined]


async def is_revoked(conn: AsyncConnection, consent_id: str) -> bool:
    row = (
        await conn.execute(
            select(T_REVOCATION.c.seq).where(T_REVOCATION.c.consent_id == consent_id)
        )
    ).first()
    return row is not None


async def get_revocation(conn: AsyncConnection, consent_id: str) -> RevocationRecord | None:
    row = (
        (await conn.execute(select(T_REVOCATION).where(T_REVOCATION.c.consent_id == consent_id)))
        .mappings()
        .first()
    )
    return RevocationRecord.model_validate(dict(row)) if row else None
