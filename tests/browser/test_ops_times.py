"""Operators' pages show times in UTC and say so, as the CLI, the exchange log and the process
logs do (they showed Swedish local time with no zone, an hour or two off what the log said)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.store.exchange_log import LogFilter, query_log
from protocol.clock import ManualClock
from tests.support.federation import SCHOOL, SOCIAL, RunningNode

from .support import PageClient, web_federation


@pytest.fixture
async def pair(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL], clock) as nodes:
        yield nodes


async def test_the_ops_log_shows_each_entry_in_utc_as_the_cli_does(
    pair: list[RunningNode], clock: ManualClock
) -> None:
    school, social = pair
    await social.node.peers.send(school.node_id, "hello", {"started_at": "2026-11-23T09:00:00Z"})
    [entry] = await query_log(school.node.engine, LogFilter(), 10)
    assert entry["at"].hour == 9  # the test clock: 09:00 UTC, 10:00 in Stockholm in November
    ops = PageClient(school)
    try:
        await ops.login("ops")
        status, page = await ops.get("/ops/log")
        assert status == 200
        shown = re.findall(r'<time datetime="[^"]+">([^<]+)</time>', page)
        assert shown == ["2026-11-23 09:00:00 UTC"]
    finally:
        await ops.close()
