"""``barnplan log``: filters, JSON lines, CSV, --follow and ``log verify``'s exit code."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from protocol.clock import ManualClock
from tests.integration.test_release_flow import consent_body, fragment, setup_plan
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode, sqlite_federation
from tests.support.nodes import barnplan_async

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses against three nodes


@pytest.fixture
async def traffic(
    tmp_path: Path, clock: ManualClock
) -> AsyncIterator[tuple[list[RunningNode], str]]:
    async with sqlite_federation(tmp_path, [SCHOOL, SOCIAL, BUP], clock) as nodes:
        school, social, _ = nodes
        plan_id, _ = await setup_plan(nodes)
        await social.api("POST", f"/plans/{plan_id}/fragments", "prof", fragment("social", "S"))
        grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
        await school.api("POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants))
        await school.api("GET", f"/plans/{plan_id}/shared", "lead")
        yield nodes, plan_id


cli = barnplan_async


async def test_filters_and_json_lines(traffic: tuple[list[RunningNode], str]) -> None:
    (school, social, _), plan_id = traffic
    directory = str(social.node.config.directory)
    result = await cli("log", "--json", "--dir", directory)
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["seq"] for e in entries] == sorted((e["seq"] for e in entries), reverse=True)
    assert {e["message_type"] for e in entries} >= {
        "plan.invite",
        "consent.statement",
        "fragments.request",
    }
    released = await cli(
        "log",
        "--json",
        "--type",
        "fragments.request",
        "--outcome",
        "released",
        "--peer",
        school.node_id,
        "--plan",
        plan_id,
        "--dir",
        directory,
    )
    rows = [json.loads(line) for line in released.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["categories"] == "social" and rows[0]["released"] == 1
    none = await cli("log", "--json", "--until", "2000-01-01", "--dir", directory)
    assert none.stdout == ""


async def test_csv_export_has_a_header_and_every_entry(
    traffic: tuple[list[RunningNode], str],
) -> None:
    (school, _, _), _ = traffic
    result = await cli("log", "--csv", "--dir", str(school.node.config.directory))
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {"seq", "peer", "message_type", "outcome", "reason", "hash"} <= set(rows[0])


async def test_follow_prints_new_entries_as_they_come(
    traffic: tuple[list[RunningNode], str],
) -> None:
    (school, _, _), plan_id = traffic
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node",
        "log",
        "--json",
        "--follow",
        "--limit",
        "1",
        "--dir",
        str(school.node.config.directory),
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        first = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        await school.api("GET", f"/plans/{plan_id}/shared", "lead")
        later = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
        assert later["seq"] > first["seq"]
    finally:
        process.terminate()
        await process.wait()


async def test_log_verify_exit_code_says_pass_or_fail(
    traffic: tuple[list[RunningNode], str],
) -> None:
    (school, _, _), _ = traffic
    directory = str(school.node.config.directory)
    ok = await cli("log", "verify", "--dir", directory)
    assert ok.returncode == 0 and "log verified: OK" in ok.stdout
    assert "barnplan_log_verification_ok 1.0" in await scrape(school)
    import sqlite3

    database = school.node.config.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(database) as db:
        db.execute("update exchange_log set outcome='released' where seq=2")
    bad = await cli("log", "verify", "--dir", directory)
    assert bad.returncode == 1 and "FAIL at entry 2: edited" in bad.stdout
    # the running node's /metrics tells the alerting what the CLI found
    metrics = await scrape(school)
    assert "barnplan_log_verification_ok 0.0" in metrics
    assert "barnplan_log_verification_timestamp_seconds " in metrics


async def scrape(node: RunningNode) -> str:
    async with aiohttp.ClientSession() as session, session.get(node.url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


async def test_log_verify_cannot_reach_the_store_is_exit_2_not_a_failed_verification(
    tmp_path: Path,
) -> None:
    """A database outage must not raise "exchange log verification FAILED": exit 2, and the
    error line names the setting to fix."""
    unreachable = "postgresql://barnplan@127.0.0.1:9/none"
    directory = tmp_path / "node"
    init = await cli(
        "init",
        str(directory),
        *("--id", "skola.test.se", "--agency-name", "Testskolan", "--kind", "school"),
    )
    assert init.returncode == 0, init.stderr
    config = directory / "barnplan.toml"
    config.write_text(
        config.read_text().replace('url = ""', f'url = "{unreachable}"', 1), encoding="utf-8"
    )
    result = await cli("log", "verify", "--dir", str(directory))
    assert result.returncode == 2, result
    assert "could not verify the exchange log" in result.stderr
    assert "store.url" in result.stderr
    assert "FAILED" not in result.stdout + result.stderr
