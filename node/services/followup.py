"""Follow-up figures for operators, counted from the exchange log and the outbox.

Nothing here reads plan content, names or identity numbers: only the log's ids, types,
categories, counts, outcomes and reasons (DESIGN.md invariant 3), and the outbox's timestamps.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from ..store import revocations as revocation_store
from ..store.tables import ExchangeLogEntry, OutboxItem
from .ports import FederationNode

T_LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
UNREACHABLE = ("unreachable", "timeout")


def iso_week(when: datetime) -> str:
    year, week, _ = when.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class WeekCount:
    week: str
    assemblies: int = 0
    plans: int = 0
    requests: int = 0


async def assemblies_per_week(
    engine: AsyncEngine, since: datetime, gap_s: float
) -> list[WeekCount]:
    """Assemblies per ISO week, from the outbound ``fragments.request`` exchanges.

    One assembly asks every participant at once, so its requests for one plan lie within one
    deadline of each other: requests for a plan more than ``gap_s`` apart are counted as
    separate assemblies (an estimate; the log has no assembly id).
    """
    query = (
        select(T_LOG.c.at, T_LOG.c.plan_id)
        .where(
            and_(
                T_LOG.c.direction == "out",
                T_LOG.c.message_type == "fragments.request",
                T_LOG.c.at >= since,
            )
        )
        .order_by(T_LOG.c.plan_id, T_LOG.c.at)
    )
    weeks: dict[str, WeekCount] = {}
    plans: dict[str, set[str]] = defaultdict(set)
    last: tuple[str | None, datetime | None] = (None, None)
    async with engine.connect() as conn:
        for at, plan_id in await conn.execute(query):
            week = weeks.setdefault(iso_week(at), WeekCount(iso_week(at)))
            week.requests += 1
            plans[week.week].add(plan_id or "")
            if last[0] != plan_id or last[1] is None or (at - last[1]).total_seconds() > gap_s:
                week.assemblies += 1
            last = (plan_id, at)
    for week in weeks.values():
        week.plans = len(plans[week.week])
    return [weeks[w] for w in sorted(weeks)]


@dataclass
class CategoryFigures:
    category: str
    requested: int = 0
    released: int = 0
    withheld: Counter[str] = field(default_factory=Counter)


@dataclass
class ReleaseFigures:
    categories: list[CategoryFigures]
    refused: Counter[str]


async def releases_by_category(engine: AsyncEngine, since: datetime) -> ReleaseFigures:
    """Per category asked of us: how often released, how often withheld and why."""
    query = select(T_LOG.c.categories, T_LOG.c.withheld, T_LOG.c.outcome, T_LOG.c.reason).where(
        and_(
            T_LOG.c.direction == "in",
            T_LOG.c.message_type == "fragments.request",
            T_LOG.c.at >= since,
        )
    )
    figures: dict[str, CategoryFigures] = {}
    refused: Counter[str] = Counter()
    async with engine.connect() as conn:
        for categories, withheld, outcome, reason in await conn.execute(query):
            if outcome in ("refused", "failed"):
                refused[reason or outcome] += 1
                continue
            reasons = dict(
                item.split(":", 1) for item in (withheld or "").split(",") if ":" in item
            )
            for category in filter(None, (categories or "").split(",")):
                entry = figures.setdefault(category, CategoryFigures(category))
                entry.requested += 1
                if category in reasons:
                    entry.withheld[reasons[category]] += 1
                else:
                    entry.released += 1
    return ReleaseFigures([figures[c] for c in sorted(figures)], refused)


@dataclass
class RevocationFigures:
    revoked_at: datetime
    peers: int
    delivered: int
    seconds_to_all: float | None


async def revocation_delivery(node: FederationNode) -> list[RevocationFigures]:
    """Each revocation this node sent: how many peers it reached and how long that took."""
    import json

    async with node.store.reading() as conn:
        rows = await revocation_store.outbox_rows(conn, include_delivered=True)
    groups: dict[str, list[OutboxItem]] = defaultdict(list)
    for row in rows:
        if row.message_type == "consent.revoke":
            notice = json.loads(row.body).get("notice_id") or row.item_id
            groups[notice].append(row)
    result = []
    for items in groups.values():
        created = min(i.created_at for i in items)
        done = [i.delivered_at for i in items if i.delivered_at is not None]
        all_done = len(done) == len(items)
        result.append(
            RevocationFigures(
                revoked_at=created,
                peers=len(items),
                delivered=len(done),
                seconds_to_all=(max(done) - created).total_seconds() if all_done else None,
            )
        )
    return sorted(result, key=lambda r: r.revoked_at, reverse=True)


@dataclass
class UnreachableFigures:
    peer: str
    unreachable: int
    timeout: int
    last_at: datetime


async def unreachable_peers(engine: AsyncEngine, since: datetime) -> list[UnreachableFigures]:
    query = (
        select(T_LOG.c.peer, T_LOG.c.outcome, func.count(), func.max(T_LOG.c.at))
        .where(
            and_(
                T_LOG.c.direction == "out",
                T_LOG.c.outcome.in_(UNREACHABLE),
                T_LOG.c.at >= since,
            )
        )
        .group_by(T_LOG.c.peer, T_LOG.c.outcome)
    )
    figures: dict[str, UnreachableFigures] = {}
    async with engine.connect() as conn:
        for peer, outcome, count, last_at in await conn.execute(query):
            entry = figures.setdefault(peer, UnreachableFigures(peer, 0, 0, last_at))
            if outcome == "timeout":
                entry.timeout += int(count)
            else:
                entry.unreachable += int(count)
            entry.last_at = max(entry.last_at, last_at)
    return sorted(figures.values(), key=lambda f: -(f.unreachable + f.timeout))


async def last_outbound(engine: AsyncEngine) -> dict[str, tuple[str, datetime]]:
    """Per peer: the outcome and time of our latest request to it."""
    latest = select(func.max(T_LOG.c.seq)).where(T_LOG.c.direction == "out").group_by(T_LOG.c.peer)
    query = select(T_LOG.c.peer, T_LOG.c.outcome, T_LOG.c.at).where(T_LOG.c.seq.in_(latest))
    async with engine.connect() as conn:
        return {peer: (outcome, at) for peer, outcome, at in await conn.execute(query)}
