"""Queries over this agency's own records: users, children, plans, fragments and consents.

Hot paths (the release decision) use SQLAlchemy Core and read everything one request needs in a
few statements; the ORM models serve as table definitions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import and_, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlmodel import SQLModel

from protocol.jsontext import parse_json_object

from ..domain.records import FragmentRecord, PlanFacts
from .chain_verify import sqlite_at
from .engine import begin_write
from .tables import Child, Consent, FragmentVersion, Plan, PlanParticipant, User, UTCDateTime

M = TypeVar("M", bound=SQLModel)

T_USER = User.__table__  # type: ignore[attr-defined]
T_CHILD = Child.__table__  # type: ignore[attr-defined]
T_PLAN = Plan.__table__  # type: ignore[attr-defined]
T_PART = PlanParticipant.__table__  # type: ignore[attr-defined]
T_FRAG = FragmentVersion.__table__  # type: ignore[attr-defined]
T_CONSENT = Consent.__table__  # type: ignore[attr-defined]


# --- users ----------------------------------------------------------------------------------


async def insert_user(engine: AsyncEngine, user: User) -> None:
    async with begin_write(engine) as conn:
        await conn.execute(T_USER.insert().values(**user.model_dump()))


async def user_by_token_hash(engine: AsyncEngine, token_hash: str) -> User | None:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(T_USER).where(T_USER.c.token_hash == token_hash)))
            .mappings()
            .first()
        )
    return User.model_validate(dict(row)) if row else None


async def user_by_id(engine: AsyncEngine, user_id: str) -> User | None:
    async with engine.connect() as conn:
        row = (
            (await conn.execute(select(T_USER).where(T_USER.c.user_id == user_id)))
            .mappings()
            .first()
        )
    return User.model_validate(dict(row)) if row else None


async def users_by_ids(engine: AsyncEngine, user_ids: list[str]) -> list[User]:
    if not user_ids:
        return []
    async with engine.connect() as conn:
        rows = (await conn.execute(select(T_USER).where(T_USER.c.user_id.in_(user_ids)))).mappings()
        return [User.model_validate(dict(r)) for r in rows]


async def user_by_subject(engine: AsyncEngine, issuer: str, subject: str) -> User | None:
    """The user a provider's (issuer, stored subject) names, if any."""
    async with engine.connect() as conn:
        row = (
            (
                await conn.execute(
                    select(T_USER).where(
                        T_USER.c.oidc_issuer == issuer, T_USER.c.oidc_subject == subject
                    )
                )
            )
            .mappings()
            .first()
        )
    return User.model_validate(dict(row)) if row else None


async def update_user(engine: AsyncEngine, user_id: str, **values: Any) -> User | None:
    """Set some of a user's columns; the user as now stored, or None if there is no such user."""
    async with begin_write(engine) as conn:
        changed = await conn.execute(
            update(T_USER).where(T_USER.c.user_id == user_id).values(**values)
        )
        if not changed.rowcount:
            return None
        row = (
            (await conn.execute(select(T_USER).where(T_USER.c.user_id == user_id))).mappings().one()
        )
    return User.model_validate(dict(row))


async def list_users(engine: AsyncEngine) -> list[User]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(T_USER).order_by(T_USER.c.user_id))).mappings().all()
    return [User.model_validate(dict(r)) for r in rows]


# --- children -------------------------------------------------------------------------------


CHILD_LOCK_ID = 0x62706368  # "bpch": PostgreSQL advisory lock serializing new children


async def insert_new_child(engine: AsyncEngine, child: Child) -> str | None:
    """Insert ``child`` unless its personnummer is already recorded; return the child id that
    holds it then (and insert nothing). Check and insert are one write transaction, taken in
    turn (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), so two concurrent adds of one
    child cannot both succeed."""
    async with begin_write(engine) as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": CHILD_LOCK_ID})
        existing = await children_by_personnummer(conn, child.personnummer)
        if existing:
            return existing[0]
        await conn.execute(T_CHILD.insert().values(**child.model_dump()))
    return None


async def list_children(engine: AsyncEngine) -> list[Child]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(T_CHILD).order_by(T_CHILD.c.name))).mappings().all()
    return [Child.model_validate(dict(r)) for r in rows]


def get_child_sync(conn: Connection, child_id: str) -> Child | None:
    row = conn.execute(select(T_CHILD).where(T_CHILD.c.child_id == child_id)).mappings().first()
    return Child.model_validate(dict(row)) if row else None


async def get_child(engine: AsyncEngine, child_id: str) -> Child | None:
    async with engine.connect() as conn:
        return await conn.run_sync(get_child_sync, child_id)


async def children_by_personnummer(conn: AsyncConnection, personnummer: str) -> list[str]:
    rows = await conn.execute(
        select(T_CHILD.c.child_id).where(T_CHILD.c.personnummer == personnummer)
    )
    return [r[0] for r in rows]


# --- plans ----------------------------------------------------------------------------------


async def insert_plan(conn: AsyncConnection, plan: Plan, participants: dict[str, str]) -> None:
    await conn.execute(T_PLAN.insert().values(**plan.model_dump()))
    if participants:
        await conn.execute(
            T_PART.insert(),
            [{"plan_id": plan.plan_id, "node_id": n, "status": s} for n, s in participants.items()],
        )


async def insert_plan_if_absent(
    conn: AsyncConnection, plan: Plan, participants: dict[str, str]
) -> bool:
    """Insert ``plan`` unless its id is taken (by the primary key, in a savepoint, so a
    concurrent insert of the same id loses cleanly instead of failing the transaction)."""
    try:
        async with conn.begin_nested():
            await insert_plan(conn, plan, participants)
    except IntegrityError:
        return False
    return True


async def set_participant_status(
    conn: AsyncConnection, plan_id: str, node_id: str, status: str, *, was: str | None = None
) -> None:
    """Set a participant's status; with ``was``, only if it still is that (never overwrites a
    newer answer, e.g. a ``plan.link`` that arrived before the invitation's reply was recorded)."""
    where = and_(T_PART.c.plan_id == plan_id, T_PART.c.node_id == node_id)
    if was is not None:
        where = and_(where, T_PART.c.status == was)
    await conn.execute(T_PART.update().where(where).values(status=status))


async def update_plan(conn: AsyncConnection, plan_id: str, **values: Any) -> None:
    await conn.execute(T_PLAN.update().where(T_PLAN.c.plan_id == plan_id).values(**values))


async def get_plan(engine: AsyncEngine, plan_id: str) -> Plan | None:
    async with engine.connect() as conn:
        return await get_plan_on(conn, plan_id)


def get_plan_sync(conn: Connection, plan_id: str) -> Plan | None:
    row = conn.execute(select(T_PLAN).where(T_PLAN.c.plan_id == plan_id)).mappings().first()
    return Plan.model_validate(dict(row)) if row else None


async def get_plan_on(conn: AsyncConnection, plan_id: str) -> Plan | None:
    return await conn.run_sync(get_plan_sync, plan_id)


async def list_plans(engine: AsyncEngine, status: str | None = None) -> list[Plan]:
    query = select(T_PLAN).order_by(T_PLAN.c.created_at.desc())
    if status is not None:
        query = query.where(T_PLAN.c.status == status)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [Plan.model_validate(dict(r)) for r in rows]


async def participants(engine: AsyncEngine, plan_id: str) -> dict[str, str]:
    async with engine.connect() as conn:
        return await participants_on(conn, plan_id)


def participants_sync(conn: Connection, plan_id: str) -> dict[str, str]:
    rows = conn.execute(
        select(T_PART.c.node_id, T_PART.c.status).where(T_PART.c.plan_id == plan_id)
    )
    return {r[0]: r[1] for r in rows}


async def participants_on(conn: AsyncConnection, plan_id: str) -> dict[str, str]:
    return await conn.run_sync(participants_sync, plan_id)


# a participant row in one of these states does not take part in the plan (it never got the
# invitation, or said no): it is given nothing, told nothing and heard on nothing of the plan
NOT_TAKING_PART = ("declined", "failed")


async def plans_shared_with(conn: AsyncConnection, node_id: str) -> tuple[list[str], list[str]]:
    """(plans this node leads, plans it joined) that ``node_id`` takes part in too, as this node
    knows them: not where ``node_id`` declined or was never reached, nor plans this node
    declined."""
    rows = await conn.execute(
        select(T_PART.c.plan_id, T_PLAN.c.role)
        .join(T_PLAN, T_PLAN.c.plan_id == T_PART.c.plan_id)
        .where(
            and_(
                T_PART.c.node_id == node_id,
                T_PART.c.status.not_in(NOT_TAKING_PART),
                T_PLAN.c.status != "declined",
            )
        )
    )
    led: list[str] = []
    joined: list[str] = []
    for plan_id, role in rows:
        (led if role == "lead" else joined).append(plan_id)
    return led, joined


async def plan_facts(
    conn: AsyncConnection, plan_id: str, *, declined: bool = False
) -> PlanFacts | None:
    """The plan as the release decision needs it (declined participants are not in it).

    A plan this node itself declined reads as unknown (None), as the release rule wants, unless
    ``declined``: a revocation for it is still judged by who takes part (SPEC §7.5)."""
    return await conn.run_sync(plan_facts_sync, plan_id, declined)


def plan_facts_sync(conn: Connection, plan_id: str, declined: bool = False) -> PlanFacts | None:
    """``plan_facts`` on a synchronous connection (in a write transaction's worker thread)."""
    row = conn.execute(
        select(T_PLAN.c.lead_node, T_PLAN.c.status).where(T_PLAN.c.plan_id == plan_id)
    ).first()
    if row is None or (row[1] == "declined" and not declined):
        return None
    members = conn.execute(
        select(T_PART.c.node_id).where(
            and_(T_PART.c.plan_id == plan_id, T_PART.c.status.not_in(NOT_TAKING_PART))
        )
    )
    return PlanFacts(plan_id, row[0], frozenset(r[0] for r in members), row[1])


# --- fragments ------------------------------------------------------------------------------


async def insert_fragment_version(conn: AsyncConnection, fragment: FragmentVersion) -> None:
    await conn.execute(T_FRAG.insert().values(**fragment.model_dump()))


async def latest_version(conn: AsyncConnection, fragment_id: str) -> tuple[int, str] | None:
    row = (
        await conn.execute(
            select(T_FRAG.c.version, T_FRAG.c.plan_id)
            .where(T_FRAG.c.fragment_id == fragment_id)
            .order_by(T_FRAG.c.version.desc())
            .limit(1)
        )
    ).first()
    return (int(row[0]), str(row[1])) if row else None


def _record(row: Any) -> FragmentRecord:
    return FragmentRecord(
        fragment_id=row["fragment_id"],
        plan_id=row["plan_id"],
        version=int(row["version"]),
        category=row["category"],
        indicators=tuple(i for i in row["indicators"].split(",") if i),
        content=json.loads(row["content"]),
        authored_at=row["authored_at"],
    )


async def latest_fragments(
    conn: AsyncConnection, plan_id: str, categories: list[str] | None = None
) -> dict[str, list[FragmentRecord]]:
    return await conn.run_sync(latest_fragments_sync, plan_id, categories)


def latest_fragments_sync(
    conn: Connection, plan_id: str, categories: list[str] | None = None
) -> dict[str, list[FragmentRecord]]:
    """This node's current fragments of a plan, by category (one query)."""
    newest = (
        select(T_FRAG.c.fragment_id, func.max(T_FRAG.c.version).label("v"))
        .where(T_FRAG.c.plan_id == plan_id)
        .group_by(T_FRAG.c.fragment_id)
        .subquery()
    )
    query = select(T_FRAG).join(
        newest,
        and_(T_FRAG.c.fragment_id == newest.c.fragment_id, T_FRAG.c.version == newest.c.v),
    )
    if categories is not None:
        query = query.where(T_FRAG.c.category.in_(categories))
    rows = conn.execute(query.order_by(T_FRAG.c.authored_at)).mappings().all()
    result: dict[str, list[FragmentRecord]] = defaultdict(list)
    for row in rows:
        record = _record(row)
        result[record.category].append(record)
    return dict(result)


# --- consents -------------------------------------------------------------------------------


async def consent_statement(conn: AsyncConnection, consent_id: str) -> dict[str, Any] | None:
    row = (
        await conn.execute(
            select(T_CONSENT.c.statement).where(T_CONSENT.c.consent_id == consent_id)
        )
    ).first()
    return parse_json_object(row[0]) if row else None


def consent_plan_sync(conn: Connection, consent_id: str) -> str | None:
    """The plan the held statement of ``consent_id`` is for (None: no statement held here)."""
    row = conn.execute(
        select(T_CONSENT.c.plan_id).where(T_CONSENT.c.consent_id == consent_id)
    ).first()
    return str(row[0]) if row else None


async def insert_consent(
    conn: AsyncConnection, statement: dict[str, Any], valid_until: datetime, now: datetime
) -> None:
    await conn.execute(
        T_CONSENT.insert().values(
            consent_id=statement["consent_id"],
            plan_id=statement["plan_id"],
            statement=json.dumps(statement, ensure_ascii=False),
            valid_until=valid_until,
            received_at=now,
        )
    )


def consents_for_plan_sync(conn: Connection, plan_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(T_CONSENT.c.statement)
        .where(T_CONSENT.c.plan_id == plan_id)
        .order_by(T_CONSENT.c.received_at)
    )
    return [parse_json_object(r[0]) for r in rows]


async def consents_for_plan(engine: AsyncEngine, plan_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        return await conn.run_sync(consents_for_plan_sync, plan_id)


# plan, participants, consent statement and revocation in one statement (node ids hold no comma)
_RELEASE_SQL = (
    "SELECT (SELECT lead_node FROM plan WHERE plan_id = ?1), "
    "(SELECT status FROM plan WHERE plan_id = ?1), "
    "(SELECT group_concat(node_id, ',') FROM plan_participant "
    "WHERE plan_id = ?1 AND status NOT IN ('declined', 'failed')), "
    "(SELECT statement FROM consent WHERE consent_id = ?2), "
    # revoked within the consent's own plan (a tombstone: within the plan asked about)
    "EXISTS (SELECT 1 FROM revocation WHERE consent_id = ?2 AND plan_id = "
    "COALESCE((SELECT plan_id FROM consent WHERE consent_id = ?2), ?1))"
)
# the newest version of each of a plan's fragments ({} is an optional category filter)
_LATEST_SQL = (
    "SELECT f.fragment_id, f.version, f.category FROM fragment_version f "
    "JOIN (SELECT fragment_id, MAX(version) AS v FROM fragment_version WHERE plan_id = ? "
    "GROUP BY fragment_id) n ON f.fragment_id = n.fragment_id AND f.version = n.v{} "
    "ORDER BY f.authored_at"
)
_VERSION_SQL = (
    "SELECT plan_id, indicators, content, authored_at FROM fragment_version "
    "WHERE fragment_id = ? AND version = ?"
)


class RecordCache(Protocol):
    """Where already-parsed fragment versions are kept (``ReleaseCache.records``)."""

    def get(self, key: Any) -> Any: ...

    def put(self, key: Any, value: Any) -> None: ...


def release_facts_sqlite(
    db: Any,
    plan_id: str,
    consent_id: str,
    categories: list[str],
    parsed: RecordCache | None = None,
) -> tuple[PlanFacts | None, str | None, bool, dict[str, list[FragmentRecord]]]:
    """What a release decision reads (``plan_facts``, ``consent_statement``, ``is_revoked``,
    ``latest_fragments``) on the raw sqlite3 connection, in one read transaction: ~50 µs instead
    of ~3 ms of SQLAlchemy statement building, thread round trips and result handling.

    The consent statement comes back as its stored JSON text, for the caller to parse (or reuse
    a parse of the same text). A fragment version never changes once written, so one found in
    ``parsed`` under (fragment id, version) is reused rather than parsed again.
    Times are SQLAlchemy's SQLite storage format (always with microseconds), stored as UTC."""

    db.execute("BEGIN")
    try:
        lead, status, members, raw, revoked_flag = db.execute(
            _RELEASE_SQL, (plan_id, consent_id)
        ).fetchone()
        plan: PlanFacts | None = None
        if lead is not None and status != "declined":
            plan = PlanFacts(plan_id, lead, frozenset((members or "").split(",")) - {""}, status)
        revoked = bool(revoked_flag)
        result: dict[str, list[FragmentRecord]] = {}
        if plan is not None and raw is not None and not revoked and categories:
            result = latest_fragments_raw(db, plan_id, categories, parsed)
    finally:
        db.execute("ROLLBACK")
    return plan, raw, revoked, result


def latest_fragments_raw(
    db: Any, plan_id: str, categories: list[str] | None, parsed: RecordCache | None = None
) -> dict[str, list[FragmentRecord]]:
    """``latest_fragments_sync`` on a raw sqlite3 connection, inside the caller's transaction;
    a version found in ``parsed`` under (fragment id, version) is reused, not parsed again."""
    if categories is not None and not categories:
        return {}
    where = f" WHERE f.category IN ({', '.join('?' * len(categories))})" if categories else ""
    result: dict[str, list[FragmentRecord]] = defaultdict(list)
    for fragment_id, version, category in db.execute(
        _LATEST_SQL.format(where), (plan_id, *(categories or ()))
    ):
        key = (fragment_id, int(version))
        record: FragmentRecord | None = parsed.get(key) if parsed is not None else None
        if record is None:  # a version never changes: its content is read and parsed once
            r = db.execute(_VERSION_SQL, key).fetchone()
            record = FragmentRecord(
                fragment_id=fragment_id,
                plan_id=r[0],
                version=int(version),
                category=category,
                indicators=tuple(i for i in r[1].split(",") if i),
                content=json.loads(r[2]),
                authored_at=sqlite_at(r[3]),
            )
            if parsed is not None:
                parsed.put(key, record)
        result[category].append(record)
    return dict(result)


def consent_texts_raw(db: Any, plan_id: str) -> list[str]:
    """``consents_for_plan_sync``'s statements as stored JSON text, on a raw sqlite3 connection."""
    sql = "SELECT statement FROM consent WHERE plan_id = ? ORDER BY received_at"
    return [r[0] for r in db.execute(sql, (plan_id,))]


def participants_raw(db: Any, plan_id: str) -> dict[str, str]:
    """``participants_sync`` on a raw sqlite3 connection."""
    sql = "SELECT node_id, status FROM plan_participant WHERE plan_id = ?"
    return {r[0]: r[1] for r in db.execute(sql, (plan_id,))}


def rows_as_models(db: Any, model: type[M], where: str, params: tuple[Any, ...]) -> list[M]:
    """Rows of ``model``'s table matching ``where`` (SQL with ``?`` marks) read on a raw
    sqlite3 connection, as models: times are SQLAlchemy's SQLite text and become aware UTC, as
    ``UTCDateTime`` returns them. For hot reads, where SQLAlchemy's per-statement work cost
    more than the statement."""
    table = model.__table__  # type: ignore[attr-defined]
    names = [c.name for c in table.columns]
    times = {c.name for c in table.columns if isinstance(c.type, UTCDateTime)}
    sql = f"SELECT {', '.join(names)} FROM {table.name} WHERE {where}"
    out: list[M] = []
    for row in db.execute(sql, params):
        values = dict(zip(names, row, strict=True))
        for name in times:
            if values[name] is not None:
                values[name] = sqlite_at(values[name])
        out.append(model.model_validate(values))
    return out
