"""The record of ``barnplan log verify`` runs: written by whichever process verified, read by
the running node's ``/metrics`` and by ``barnplan status``."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import begin_write
from .tables import LogVerification

T_VERIFICATION = LogVerification.__table__  # type: ignore[attr-defined]


async def record_verification(engine: AsyncEngine, verification: LogVerification) -> None:
    async with begin_write(engine) as conn:
        await conn.execute(
            T_VERIFICATION.insert().values(**verification.model_dump(exclude={"id"}))
        )


async def last_verification(engine: AsyncEngine) -> LogVerification | None:
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(T_VERIFICATION).order_by(T_VERIFICATION.c.at.desc()).limit(1)
                )
            )
            .mappings()
            .first()
        )
    return LogVerification.model_validate(dict(row)) if row else None
