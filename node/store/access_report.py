"""The one query of the access report (SPEC.md §7.12): the release decisions this node made
for a plan, read from its own exchange log.

A release decision is an inbound ``fragments.request`` the node answered (outcome ``released``
or ``withheld``); the log entry holds who asked (the verified peer), when, under which consent,
for what purpose, the acting professional's reference, the categories asked for and the
withheld ones with reasons. The log is the single source: the report says exactly what the log
says, so an operator's ``log verify`` vouches for the report too. After ``log archive`` the
oldest entries are in an archive file, not in the store: ``archived_before`` says from when the
log, and so the report, is complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from .tables import ExchangeLogEntry, LogArchive

T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
T_ARCHIVE = LogArchive.__table__  # type: ignore[attr-defined]
RELEASE_TYPE = "fragments.request"
DECIDED = ("released", "withheld")


@dataclass(frozen=True)
class LoggedRelease:
    """One release decision as the exchange log holds it (no plan content, no names)."""

    seq: int
    at: datetime
    recipient: str
    consent_id: str
    purpose: str
    professional: str | None
    released: tuple[str, ...]
    withheld: tuple[tuple[str, str], ...]


def _withheld(text: str) -> tuple[tuple[str, str], ...]:
    """The log's ``"category:reason,..."`` form back into pairs."""
    pairs = []
    for item in text.split(","):
        if item:
            category, _, reason = item.partition(":")
            pairs.append((category, reason))
    return tuple(pairs)


def releases_for_plan(
    conn: Connection, plan_id: str, after_seq: int, limit: int
) -> list[LoggedRelease]:
    """Up to ``limit`` release decisions for ``plan_id`` with a log seq above ``after_seq``, in
    log order. Released categories are those asked for and not withheld (a category is either
    released or withheld, SPEC.md §11); none when the entry released no fragment."""
    query = (
        select(T_LOG)
        .where(
            (T_LOG.c.plan_id == plan_id)
            & (T_LOG.c.direction == "in")
            & (T_LOG.c.message_type == RELEASE_TYPE)
            & T_LOG.c.outcome.in_(DECIDED)
            & (T_LOG.c.seq > after_seq)
        )
        .order_by(T_LOG.c.seq)
        .limit(limit)
    )
    found = []
    for row in conn.execute(query).mappings():
        withheld = _withheld(row["withheld"])
        kept = {c for c, _ in withheld}
        asked = [c for c in row["categories"].split(",") if c]
        released = tuple(c for c in asked if c not in kept) if row["released"] else ()
        found.append(
            LoggedRelease(
                seq=row["seq"],
                at=row["at"],
                recipient=row["peer"],
                consent_id=row["consent_id"] or "",
                purpose=row["purpose"] or "",
                professional=row["professional"],
                released=released,
                withheld=withheld,
            )
        )
    return found


def archived_before(conn: Connection) -> datetime | None:
    """The time of the first entry the live log kept after the last ``log archive`` (every
    entry before it is in an archive file), or None when nothing was archived."""
    boundary = select(func.max(T_ARCHIVE.c.seq)).scalar_subquery()
    query = select(T_LOG.c.at).where(T_LOG.c.seq > boundary).order_by(T_LOG.c.seq).limit(1)
    at: datetime | None = conn.execute(query).scalar_one_or_none()
    return at
