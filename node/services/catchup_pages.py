"""Paging through a peer's catch-up list: revocations (SPEC §7.6) and closures (§7.11) alike.

A node that was down asks each peer for what it missed, page by page from its cursor for that
peer and list. Each entry is applied only if this node's own records admit it (``take``, as a
notice from that peer would be), else counted in ``skipped`` by reason; the cursor moves past
both in the transaction that applies the page. One loop for every list, so the two catch-ups
cannot drift apart.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy.engine import Connection

from protocol.errors import Reason

from ..store import peer_cursors
from ..store.peer_cursors import CursorColumn
from .ports import FederationNode

Entry = TypeVar("Entry")
MAX_PAGES = 100  # a peer that keeps saying "more" is not followed for ever


@dataclass(frozen=True)
class Page(Generic[Entry]):
    """One reply of a catch-up list: its entries, the cursor to send next, whether more follow."""

    entries: Sequence[Entry]
    cursor: int
    more: bool


@dataclass(frozen=True)
class CatchUpList(Generic[Entry]):
    """One catch-up list: what to ask, the entries of a reply, how one is applied, and the
    ``peer_state`` column that keeps the cursor."""

    request_type: str
    request: Callable[[int], BaseModel]
    read: Callable[[BaseModel], Page[Entry]]
    take: Callable[[Connection, Entry, str, datetime], Reason | None]
    cursor_column: CursorColumn


async def pull_pages(
    node: FederationNode,
    peer: str,
    what: CatchUpList[Entry],
    timeout_s: float,
    skipped: Counter[str],
) -> str:
    """Page through ``peer``'s list after this node's cursor for it; the outcome ("ok", or why
    a request failed: an older peer answers ``unknown_type``)."""
    async with node.store.reading() as conn:
        cursor = await peer_cursors.get_cursor(conn, peer, what.cursor_column)
    for _ in range(MAX_PAGES):
        result = await node.peers.send(
            peer, what.request_type, what.request(cursor), timeout=timeout_s
        )
        if not result.ok or result.reply is None:
            return result.outcome
        page = what.read(result.reply.body)
        now = node.clock.now()
        async with node.store.writing() as conn:
            for entry in page.entries:
                problem = await conn.run_sync(what.take, entry, peer, now)
                if problem is not None:
                    skipped[problem.value] += 1
            await peer_cursors.set_cursor(conn, peer, what.cursor_column, page.cursor)
        cursor = page.cursor
        if not page.more:
            break
    return "ok"
