"""Queries over this agency's own records: users, children, plans, fragments and consents.

Hot paths (the release decision) use SQLAlchemy Core and read everything one request needs in a
few statements of one read transaction; the ORM models serve as table definitions. Each query
exists once, written against a synchronous ``Connection`` and run through the store's
transaction runner (``run_sync`` on the async engine), the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import and_, bindparam, func, select, text, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from protocol.jsontext import parse_json_object

from ..domain.records import FragmentRecord, PlanFacts
from ..domain.statement_json import StatementJson
from .consent_people import replaced_clause
from .engine import begin_write
from .revocations import revoked_clause
from .tables import (
    Child,
    Consent,
    FragmentVersion,
    Plan,
    PlanParticipant,
    User,
)

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


async def list_users(engine: AsyncEngine, roles: tuple[str, ...] | None = None) -> list[User]:
    """The users by id: every one, or those of ``roles``."""
    query = select(T_USER).order_by(T_USER.c.user_id)
    if roles is not None:
        query = query.where(T_USER.c.role.in_(roles))
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
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


async def add_participants(
    conn: AsyncConnection, plan_id: str, nodes: list[str], status: str
) -> list[str]:
    """Add each of ``nodes`` that has no row in the plan yet with ``status``; return those
    added (a node already recorded keeps its state: declined stays declined)."""
    known = await participants_on(conn, plan_id)
    added = [n for n in dict.fromkeys(nodes) if n not in known]
    if added:
        await conn.execute(
            T_PART.insert(), [{"plan_id": plan_id, "node_id": n, "status": status} for n in added]
        )
    return added


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


# a status of one who takes part, as plain comparisons (NOT IN over a list is re-rendered per
# execution by SQLAlchemy, an "expanding" parameter)
_TAKING_PART = and_(*(T_PART.c.status != status for status in NOT_TAKING_PART))
# The hot reads' statements are built once, here, with bound parameters: building a statement
# (and its cache key) per request cost more than running it.
_PLAN_ID = bindparam("plan_id", type_=T_PLAN.c.plan_id.type)
_CONSENT_ID = bindparam("consent_id", type_=T_CONSENT.c.consent_id.type)
# the plan's lead, its status and its taking-part members (comma-joined; node ids hold no
# comma), as scalar subqueries: one statement reads them, alone or with more
_PLAN_COLUMNS = (
    select(T_PLAN.c.lead_node).where(T_PLAN.c.plan_id == _PLAN_ID).scalar_subquery(),
    select(T_PLAN.c.status).where(T_PLAN.c.plan_id == _PLAN_ID).scalar_subquery(),
    select(func.aggregate_strings(T_PART.c.node_id, ","))
    .where(and_(T_PART.c.plan_id == _PLAN_ID, _TAKING_PART))
    .scalar_subquery(),
)
_PLAN_FACTS = select(*_PLAN_COLUMNS)


def _plan_from(
    plan_id: str, lead: str | None, status: str | None, members: str | None, declined: bool
) -> PlanFacts | None:
    if lead is None or status is None or (status == "declined" and not declined):
        return None
    return PlanFacts(plan_id, lead, frozenset((members or "").split(",")) - {""}, status)


def plan_facts_sync(conn: Connection, plan_id: str, declined: bool = False) -> PlanFacts | None:
    """``plan_facts`` on a synchronous connection, in one statement."""
    lead, status, members = conn.execute(_PLAN_FACTS, {"plan_id": plan_id}).one()
    return _plan_from(plan_id, lead, status, members, declined)


# --- fragments ------------------------------------------------------------------------------


async def insert_fragment_version(conn: AsyncConnection, fragment: FragmentVersion) -> None:
    await conn.execute(T_FRAG.insert().values(**fragment.model_dump()))


async def latest_version(conn: AsyncConnection, fragment_id: str) -> tuple[int, str, str] | None:
    """(version, plan id, authored_by) of a fragment's newest version, if it has one."""
    row = (
        await conn.execute(
            select(T_FRAG.c.version, T_FRAG.c.plan_id, T_FRAG.c.authored_by)
            .where(T_FRAG.c.fragment_id == fragment_id)
            .order_by(T_FRAG.c.version.desc())
            .limit(1)
        )
    ).first()
    return (int(row[0]), str(row[1]), str(row[2])) if row else None


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


_NEWEST = (
    select(T_FRAG.c.fragment_id, func.max(T_FRAG.c.version).label("v"))
    .where(T_FRAG.c.plan_id == _PLAN_ID)
    .group_by(T_FRAG.c.fragment_id)
    .subquery()
)
_LATEST_ALL = select(T_FRAG).join(
    _NEWEST,
    and_(T_FRAG.c.fragment_id == _NEWEST.c.fragment_id, T_FRAG.c.version == _NEWEST.c.v),
)
_LATEST = _LATEST_ALL.order_by(T_FRAG.c.authored_at)


def latest_fragments_sync(
    conn: Connection,
    plan_id: str,
    categories: list[str] | None = None,
    parsed: RecordCache | None = None,
) -> dict[str, list[FragmentRecord]]:
    """This node's current fragments of a plan, by category (one query). A fragment version
    never changes once written, so one found in ``parsed`` under (fragment id, version) is
    reused rather than parsed again. The categories are picked here rather than in SQL: an
    IN over a list is re-rendered per execution, and a plan holds few current fragments."""
    if categories is not None and not categories:
        return {}
    wanted = None if categories is None else frozenset(categories)
    rows = conn.execute(_LATEST, {"plan_id": plan_id}).mappings().all()
    result: dict[str, list[FragmentRecord]] = defaultdict(list)
    for row in rows:
        if wanted is not None and row["category"] not in wanted:
            continue
        key = (row["fragment_id"], int(row["version"]))
        record: FragmentRecord | None = parsed.get(key) if parsed is not None else None
        if record is None:
            record = _record(row)
            if parsed is not None:
                parsed.put(key, record)
        result[record.category].append(record)
    return dict(result)


# --- consents -------------------------------------------------------------------------------


def _statement(text: str) -> StatementJson:
    """A held statement's JSON, typed: the node stores only statements it verified and parsed
    as ``ConsentStatement`` (``services.consents``, ``handlers``), so its shape is known."""
    return cast(StatementJson, parse_json_object(text))


async def consent_statement(conn: AsyncConnection, consent_id: str) -> StatementJson | None:
    row = (
        await conn.execute(
            select(T_CONSENT.c.statement).where(T_CONSENT.c.consent_id == consent_id)
        )
    ).first()
    return _statement(row[0]) if row else None


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


def consents_for_plan_sync(conn: Connection, plan_id: str) -> list[StatementJson]:
    rows = conn.execute(
        select(T_CONSENT.c.statement)
        .where(T_CONSENT.c.plan_id == plan_id)
        .order_by(T_CONSENT.c.received_at)
    )
    return [_statement(r[0]) for r in rows]


async def consents_for_plan(engine: AsyncEngine, plan_id: str) -> list[StatementJson]:
    async with engine.connect() as conn:
        return await conn.run_sync(consents_for_plan_sync, plan_id)


class RecordCache(Protocol):
    """Where already-parsed fragment versions are kept (``ReleaseCache.records``)."""

    def get(self, key: tuple[str, int]) -> FragmentRecord | None: ...

    def put(self, key: tuple[str, int], value: FragmentRecord) -> None: ...


@dataclass(frozen=True)
class ReleaseFacts:
    """What one release decision reads: the plan (None: unknown here, or declined), the held
    consent statement as its stored JSON text (the caller parses it, or reuses a parse of the
    same text), whether the consent is revoked, and the plan's current fragments of the asked
    categories (only read when something may be released)."""

    plan: PlanFacts | None
    statement: str | None
    revoked: bool
    fragments: dict[str, list[FragmentRecord]]
    replaced: bool = False  # by a later statement of the plan's lead (SPEC §7.3)


# revoked within the consent's own plan (a tombstone: within the plan asked about)
_CONSENT_PLAN = (
    select(T_CONSENT.c.plan_id).where(T_CONSENT.c.consent_id == _CONSENT_ID).scalar_subquery()
)
_RELEASE_FACTS = select(
    *_PLAN_COLUMNS,
    select(T_CONSENT.c.statement).where(T_CONSENT.c.consent_id == _CONSENT_ID).scalar_subquery(),
    revoked_clause(_CONSENT_ID, func.coalesce(_CONSENT_PLAN, _PLAN_ID)),
    replaced_clause(_CONSENT_ID, _CONSENT_PLAN),
)


def release_facts(
    conn: Connection,
    plan_id: str,
    consent_id: str,
    categories: list[str],
    parsed: RecordCache | None = None,
) -> ReleaseFacts:
    """Every read of a release decision, in one read transaction of at most two statements:
    the plan (``plan_facts``), the consent statement and whether it is revoked in one, then the
    current fragments of the asked categories (only when the plan and consent are held and not
    revoked)."""
    lead, status, members, statement, is_revoked, is_replaced = conn.execute(
        _RELEASE_FACTS, {"plan_id": plan_id, "consent_id": consent_id}
    ).one()
    plan = _plan_from(plan_id, lead, status, members, False)
    fragments: dict[str, list[FragmentRecord]] = {}
    held = plan is not None and statement is not None
    if held and not is_revoked and not is_replaced and categories:
        fragments = latest_fragments_sync(conn, plan_id, categories, parsed)
    return ReleaseFacts(plan, statement, bool(is_revoked), fragments, bool(is_replaced))
