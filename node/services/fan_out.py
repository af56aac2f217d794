"""Asking several peers at once, as the assembly and the access report do.

The requests go out one after another without waiting (each is signed and sent before the
next is signed, so the first peers start on their answers at once), all run together under
the caller's deadline, and however the whole ends — every answer in, a failing check, the
caller cancelled — no request is left running and every exchange that finished is appended to
the exchange log in one transaction before the caller goes on (DESIGN.md invariant 3).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from ..store.exchange_log import ExchangeLog, LogDraft

Item = TypeVar("Item")
Answer = TypeVar("Answer")


async def ask_each(
    items: Iterable[Item],
    ask: Callable[[Item], Awaitable[Answer]],
    exchange_log: ExchangeLog,
    drafts: list[LogDraft],
) -> list[Answer]:
    """``ask(item)`` for every item at once; the answers in the items' order. ``drafts`` is
    the list the asks append their log entries to; it is logged whatever happens."""
    tasks: list[asyncio.Task[Answer]] = []
    try:
        for item in items:
            tasks.append(asyncio.ensure_future(ask(item)))
            await asyncio.sleep(0)
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.shield(exchange_log.append_many(drafts))
