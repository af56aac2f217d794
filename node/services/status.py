"""How a node is, in one report: what runs, its store, keys, peers, outbox and exchange log.

Why: an operator (or a monitoring check) needs one command that says whether the node is fit
to serve and, if not, what to fix — without starting the node, migrating its store or sending
anything to a peer but a GET of its public node document. Each check that fails adds one line
to ``problems``; the report is the same for ``barnplan status`` and ``--json``.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta

import aiohttp
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock
from protocol.encoding import b64url_decode
from protocol.keys import fingerprint

from ..config import NodeConfig
from ..domain.json_object import JsonObject
from ..store import log_archive
from ..store import peers as peer_store
from ..store.engine import StoreError, create_engine, current_revision
from ..store.migration_head import expected_revision
from ..store.schema_check import schema_differences
from ..store.tables import CheckpointWitness, LogCheckpoint, OutboxItem, Peer
from ..store.verifications import last_verification
from ..tls import client_ssl
from ..version import current_build
from .peers import PeerError, fetch_peer

PEER_TIMEOUT_S = 3.0
# what counts as stale for the report's problems (alerting has its own rules in deploy/)
OUTBOX_STALE = timedelta(hours=1)
VERIFICATION_STALE = timedelta(days=2)
GROWTH_DAYS = 7  # the days of exchange-log growth the report shows, today included


@dataclass
class LogDay:
    """One UTC day's exchange-log growth (bytes: the entries' data, not the store's pages)."""

    day: str
    entries: int
    bytes: int


@dataclass
class LogArchived:
    """The live log's boundary: the entries up to ``through`` are in archive files."""

    through: int
    head: str
    entries: int  # in the latest archive
    at: datetime


@dataclass
class KeyStatus:
    key_id: str
    fingerprint: str
    valid_from: datetime
    valid_until: datetime | None
    state: str  # current | retiring (still valid, ends) | retired


@dataclass
class PeerStatus:
    node_id: str
    base_url: str
    reachable: bool
    detail: str
    last_contact_at: datetime | None


@dataclass
class NodeStatus:
    node: str
    version: str
    schema_expected: str
    schema_store: str | None = None
    store: str = "unknown"  # ok | the error
    keys: list[KeyStatus] = field(default_factory=list)
    peers: list[PeerStatus] = field(default_factory=list)
    outbox_pending: int = 0
    outbox_oldest: datetime | None = None
    last_checkpoint_seq: int | None = None
    last_checkpoint_at: datetime | None = None
    last_checkpoint_witnesses: int = 0
    last_verification_at: datetime | None = None
    last_verification_ok: bool | None = None
    log_entries: int = 0  # in the live log (after any archive)
    log_bytes: int = 0
    log_first_seq: int | None = None
    log_last_seq: int | None = None
    log_growth: list[LogDay] = field(default_factory=list)  # the last GROWTH_DAYS days
    log_archived: LogArchived | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> JsonObject:
        def plain(value: object) -> object:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        return {**{k: plain(v) for k, v in asdict(self).items()}, "ok": self.ok}


def key_state(valid_until: datetime | None, now: datetime) -> str:
    if valid_until is None:
        return "current"
    return "retiring" if valid_until > now else "retired"


async def node_status(config: NodeConfig, clock: Clock) -> NodeStatus:
    """Check everything ``barnplan status`` shows; never raises for a broken store or peer."""
    build = current_build()
    report = NodeStatus(
        node=config.node.id, version=build.version, schema_expected=expected_revision()
    )
    now = clock.now()
    try:
        engine = create_engine(config.database_url, config.store.schema_name)
    except StoreError as exc:
        report.store = str(exc)
        report.problems.append(f"store: {exc}")
        return report
    try:
        await _store_checks(engine, report, now)
    except StoreError as exc:
        report.store = str(exc)
        report.problems.append(f"store: {exc}")
        return report
    finally:
        await engine.dispose()
    return report


async def _store_checks(engine: AsyncEngine, report: NodeStatus, now: datetime) -> None:
    report.schema_store = await current_revision(engine)
    async with engine.connect() as conn:
        missing = await conn.run_sync(schema_differences)
    report.store = "ok"
    if report.schema_store != report.schema_expected or missing:
        lacks = f" and lacks {', '.join(missing[:5])}" if missing else ""
        report.problems.append(
            f"schema: the store is at revision {report.schema_store}{lacks}, this release "
            f"expects {report.schema_expected}: run 'barnplan migrate'"
        )
        if missing:  # the queries below would fail on a store this old
            return
    for key in await peer_store.own_keys(engine):
        state = key_state(key.valid_until, now)
        report.keys.append(
            KeyStatus(
                key.key_id,
                fingerprint(b64url_decode(key.public)),
                key.valid_from,
                key.valid_until,
                state,
            )
        )
    if not any(k.state == "current" for k in report.keys):
        report.problems.append("keys: no current signing key")
    await _outbox_and_log(engine, report, now)
    await _log_growth(engine, report, now)


@dataclass(frozen=True)
class LogGrowth:
    """How big the live exchange log is (``size``), how it grew over the last ``GROWTH_DAYS``
    days (``days``), and where the last archive left it (``archived``)."""

    size: log_archive.LogSize
    days: list[LogDay]
    archived: LogArchived | None


async def log_growth(engine: AsyncEngine, now: datetime) -> LogGrowth:
    """What an operator plans 'barnplan log archive' from: ``barnplan status`` and ``/ops``."""
    since = datetime.combine(now.date() - timedelta(days=GROWTH_DAYS - 1), time(), UTC)
    async with engine.connect() as conn:
        size = await log_archive.log_size(conn)
        days = await log_archive.growth_by_day(conn, since)
        boundary = await log_archive.boundary(conn)
    counted = {d: (n, b) for d, n, b in days}
    growth = [
        LogDay(day.isoformat(), *counted.get(day, (0, 0)))
        for day in (since.date() + timedelta(days=i) for i in range(GROWTH_DAYS))
    ]
    archived = (
        None
        if boundary is None
        else LogArchived(boundary.seq, boundary.head_hash, boundary.entries, boundary.archived_at)
    )
    return LogGrowth(size, growth, archived)


async def _log_growth(engine: AsyncEngine, report: NodeStatus, now: datetime) -> None:
    grown = await log_growth(engine, now)
    report.log_entries, report.log_bytes = grown.size.entries, grown.size.bytes
    report.log_first_seq, report.log_last_seq = grown.size.first_seq, grown.size.last_seq
    report.log_growth, report.log_archived = grown.days, grown.archived


async def _outbox_and_log(engine: AsyncEngine, report: NodeStatus, now: datetime) -> None:
    outbox = OutboxItem.__table__  # type: ignore[attr-defined]
    checkpoints = LogCheckpoint.__table__  # type: ignore[attr-defined]
    witnesses = CheckpointWitness.__table__  # type: ignore[attr-defined]
    async with engine.connect() as conn:
        pending = (
            await conn.execute(
                select(func.count(), func.min(outbox.c.created_at)).where(
                    outbox.c.delivered_at.is_(None)
                )
            )
        ).one()
        last = (
            (await conn.execute(select(checkpoints).order_by(checkpoints.c.seq.desc()).limit(1)))
            .mappings()
            .first()
        )
        witnessed = 0
        if last is not None:
            witnessed = (
                await conn.execute(select(func.count()).where(witnesses.c.seq == last["seq"]))
            ).scalar_one()
    report.outbox_pending = int(pending[0])
    report.outbox_oldest = pending[1]  # min() keeps the column's type: an aware UTC time
    if report.outbox_oldest is not None and now - report.outbox_oldest > OUTBOX_STALE:
        report.problems.append(
            f"outbox: {report.outbox_pending} notice(s) unacknowledged, the oldest since "
            f"{report.outbox_oldest.isoformat()}: see 'barnplan outbox'"
        )
    if last is not None:
        report.last_checkpoint_seq = int(last["seq"])
        report.last_checkpoint_at = last["created_at"]
        report.last_checkpoint_witnesses = int(witnessed)
    verification = await last_verification(engine)
    if verification is None:
        report.problems.append("log: never verified: run 'barnplan log verify' (daily, from cron)")
        return
    report.last_verification_at = verification.at
    report.last_verification_ok = verification.ok
    if not verification.ok:
        report.problems.append(
            f"log: the last verification ({verification.at.isoformat()}) FAILED: "
            "run 'barnplan log verify' and see deploy/OPERATIONS.md §6"
        )
    elif now - verification.at > VERIFICATION_STALE:
        report.problems.append(
            f"log: last verified {verification.at.isoformat()}: is the daily cron job running?"
        )


async def peer_checks(config: NodeConfig, report: NodeStatus) -> None:
    """GET each trusted peer's node document (the only traffic ``status`` makes)."""
    if report.store != "ok" or any(p.startswith("schema:") for p in report.problems):
        return
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        peers = await peer_store.list_peers(engine)
    finally:
        await engine.dispose()
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT_S)
    connector = aiohttp.TCPConnector(ssl=client_ssl(config))
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def one(peer: Peer) -> PeerStatus:
            try:
                fetched = await fetch_peer(session, peer.base_url)
            except PeerError as exc:
                return PeerStatus(
                    peer.node_id, peer.base_url, False, str(exc), peer.last_contact_at
                )
            if fetched.document.id != peer.node_id:
                detail = f"{peer.base_url} now serves {fetched.document.id}"
                return PeerStatus(peer.node_id, peer.base_url, False, detail, peer.last_contact_at)
            return PeerStatus(peer.node_id, peer.base_url, True, "ok", peer.last_contact_at)

        report.peers = list(await asyncio.gather(*(one(p) for p in peers)))
    for peer in report.peers:
        if not peer.reachable:
            report.problems.append(f"peer {peer.node_id}: {peer.detail}")
