"""Applying a signed federation member list: fetch each member's document, check it, trust it.

A member is trusted only if its published node document matches what the federation vouches for
(``protocol.federation.document_mismatches``). A member that does not match, or cannot be reached,
is reported with one line and not trusted; the others are. The list's version is remembered per
federation in the node directory, so an older list (which might re-admit a removed member) is
refused.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from ssl import SSLContext

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import format_time
from protocol.federation import (
    FederationMembers,
    Member,
    document_mismatches,
    member_fingerprints,
)
from protocol.keys import fingerprint

from ..domain.json_object import JsonObject
from ..errors import Conflict
from ..store import peers as peer_store
from .peers import FetchedPeer, PeerError, fetch_peer, trust_peer

STATE_FILE = "federation-state.json"
FETCH_CONCURRENCY = 16


class FederationError(Conflict):
    """The list cannot be applied at all (older than one already applied, unreadable state)."""

    code = "federation_list_refused"


@dataclass(frozen=True)
class MemberCheck:
    """What fetching and checking one member found; ``fetched`` is set only when it matches."""

    member: Member
    problem: str | None
    fetched: FetchedPeer | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


async def check_member(session: aiohttp.ClientSession, member: Member) -> MemberCheck:
    try:
        fetched = await fetch_peer(session, member.base_url)
    except PeerError as exc:
        return MemberCheck(member, str(exc))
    problems = document_mismatches(member, fetched.document, fetched.fingerprints)
    if problems:
        return MemberCheck(member, "; ".join(problems))
    return MemberCheck(member, None, fetched)


async def check_members(
    members: Sequence[Member],
    own_id: str,
    timeout_s: float = 10.0,
    ssl: SSLContext | bool = True,
) -> list[MemberCheck]:
    """Fetch and check every member except this node, a few at a time, in list order, with
    the node's client TLS (``node.tls.client_ssl``)."""
    others = [m for m in members if m.id != own_id]
    limit = asyncio.Semaphore(FETCH_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    connector = aiohttp.TCPConnector(ssl=ssl)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def one(member: Member) -> MemberCheck:
            async with limit:
                return await check_member(session, member)

        return list(await asyncio.gather(*(one(m) for m in others)))


async def trust_matching(
    engine: AsyncEngine, checks: Sequence[MemberCheck], own_id: str, now: datetime
) -> list[str]:
    """Trust every member whose document matched; return their ids."""
    trusted: list[str] = []
    for check in checks:
        if check.fetched is not None:
            await trust_peer(engine, check.fetched, own_id, now)
            trusted.append(check.member.id)
    return trusted


def own_entry_problem(members: FederationMembers, own_id: str, own_public: Sequence[bytes]) -> str:
    """Empty if the list vouches for this node's keys, else why members will refuse it."""
    entry = next((m for m in members.members if m.id == own_id), None)
    if entry is None:
        return f"this node ({own_id}) is not in the member list"
    listed = member_fingerprints(entry)
    missing = [fingerprint(raw) for raw in own_public if fingerprint(raw) not in listed]
    if missing:
        return (
            f"this node's key SHA-256 {missing[0]} is not in its member entry; "
            "members applying this list will not trust this node"
        )
    return ""


async def stale_peers(engine: AsyncEngine, members: FederationMembers) -> list[str]:
    """Trusted peers the list does not name (remove them with ``barnplan peers remove``)."""
    named = {m.id for m in members.members}
    return [p.node_id for p in await peer_store.list_peers(engine) if p.node_id not in named]


# --- remembering the applied version ------------------------------------------------------------


def _load_state(directory: Path) -> JsonObject:
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise FederationError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict):
        raise FederationError(f"{path} is not a JSON object")
    return data


def check_version(directory: Path, members: FederationMembers) -> int | None:
    """Refuse a list older than the newest applied one for this federation; return that one."""
    applied = _load_state(directory).get(members.federation)
    if not isinstance(applied, dict):
        return None
    version = applied.get("version")
    if isinstance(version, int) and members.version < version:
        raise FederationError(
            f"member list version {members.version} of {members.federation} is older than "
            f"version {version}, applied at {applied.get('applied_at')}; refusing to roll back"
        )
    return version if isinstance(version, int) else None


def record_version(directory: Path, members: FederationMembers, now: datetime) -> None:
    state = _load_state(directory)
    state[members.federation] = {
        "version": members.version,
        "issued_at": members.issued_at,
        "applied_at": format_time(now),
    }
    path = directory / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
