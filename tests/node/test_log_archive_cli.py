"""``barnplan log archive`` and ``log verify --archive`` as an operator runs them, against a
serving node's store: bad input and refusals change nothing; the archive, the live log,
``status``, ``/metrics`` and ``/ops`` agree afterwards."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
import pytest

from node.services.audit import checkpoint_and_witness
from node.store.exchange_log import log_head
from protocol.clock import ManualClock, format_time
from tests.browser.support import PageClient
from tests.support.federation import RunningNode
from tests.support.nodes import barnplan_async

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses, seconds each

cli = barnplan_async
DAY = 86_400
LOGGED = re.compile(r"^barnplan_exchange_log_messages_total\{[^}]*\} ([0-9.e+]+)$", re.M)


async def traffic(school: RunningNode, social: RunningNode, n: int) -> None:
    for _ in range(n):
        sent = await school.node.peers.send(
            social.node_id, "hello", {"started_at": format_time(school.node.clock.now())}
        )
        assert sent.ok, sent


async def scrape(node: RunningNode) -> str:
    async with aiohttp.ClientSession() as session, session.get(node.url + "/metrics") as resp:
        assert resp.status == 200
        return await resp.text()


def logged_total(metrics: str) -> float:
    return sum(float(v) for v in LOGGED.findall(metrics))


async def test_archive_from_the_command_line(
    sqlite_pair: list[RunningNode], clock: ManualClock, tmp_path: Path
) -> None:
    school, social = sqlite_pair
    directory = str(school.node.config.directory)
    await traffic(school, social, 3)  # 2026-11-23
    clock.advance(2 * DAY)
    target = tmp_path / "log-2026-11.jsonl"
    head = await log_head(school.node.engine)

    bad = await cli("log", "archive", "--before", "last week", "--to", str(target), "-d", directory)
    assert bad.returncode == 2 and "use YYYY-MM-DD" in bad.stderr
    none = await cli(
        "log", "archive", "--before", "2026-11-24", "--to", str(target), "-d", directory
    )
    assert none.returncode == 1
    assert "no checkpoint witnessed by a peer" in none.stderr
    assert "barnplan log checkpoint" in none.stderr and "Traceback" not in none.stderr
    assert not target.exists() and await log_head(school.node.engine) == head

    await checkpoint_and_witness(school.node)
    checkpointed = head[0]
    taken = tmp_path / "taken.jsonl"
    taken.write_text("an operator's file\n")
    exists = await cli(
        "log", "archive", "--before", "2026-11-24", "--to", str(taken), "-d", directory
    )
    assert exists.returncode == 1 and "never overwrites" in exists.stderr
    assert taken.read_text() == "an operator's file\n"

    before = logged_total(await scrape(school))
    done = await cli(
        "log", "archive", "--before", "2026-11-24", "--to", str(target), "--json", "-d", directory
    )
    assert done.returncode == 0, done.stderr
    archived = json.loads(done.stdout)["archived"]
    assert (archived["first_seq"], archived["last_seq"]) == (1, checkpointed)
    assert archived["witnesses"] == 1

    ok = await cli("log", "verify", "--archive", str(target), "-d", directory)
    assert ok.returncode == 0 and "archive verified: OK" in ok.stdout, ok.stdout
    as_json = await cli("log", "verify", "--archive", str(target), "--json", "-d", directory)
    checked = json.loads(as_json.stdout)
    assert checked["ok"] and (checked["first_seq"], checked["last_seq"]) == (1, checkpointed)
    assert checked["node"] == school.node_id and checked["witnesses"] == 1
    live = await cli("log", "verify", "--json", "-d", directory)
    assert live.returncode == 0, live.stdout
    assert json.loads(live.stdout)["archived_through"] == checkpointed

    # counters never go back: the scrape reads entries above its cursor, seqs continue
    metrics = await scrape(school)
    assert logged_total(metrics) >= before
    assert f"barnplan_exchange_log_entries {float((await log_head(school.node.engine))[0])}" in (
        metrics
    )
    # /ops and its log page still answer, listing the live entries
    page = PageClient(school)
    try:
        await page.login("ops")
        status, _ = await page.get("/ops?lang=en")
        assert status == 200
        status, text = await page.get("/ops/log?lang=en&type=log.archive")
        assert status == 200 and "log.archive" in text
    finally:
        await page.close()

    report = await cli("status", "--json", "--no-peers", "-d", directory)
    facts = json.loads(report.stdout)
    assert facts["log_archived"]["through"] == checkpointed
    assert facts["log_first_seq"] == checkpointed + 1 and facts["log_entries"] > 0
    assert len(facts["log_growth"]) == 7 and facts["log_bytes"] > 0
    text_report = await cli("status", "--no-peers", "-d", directory)
    assert f"archived  entries up to {checkpointed}" in text_report.stdout

    # the archive file tampered with: verification fails with exit 1
    lines = target.read_text().splitlines()
    lines[1] = lines[1].replace('"hello"', '"plan.invite"')
    target.write_text("\n".join(lines) + "\n")
    tampered = await cli("log", "verify", "--archive", str(target), "-d", directory)
    assert tampered.returncode == 1 and "archive verification FAILED" in tampered.stdout
    missing = await cli("log", "verify", "--archive", str(tmp_path / "nope"), "-d", directory)
    assert missing.returncode == 2 and "no such file" in missing.stderr


async def test_status_shows_growth_per_day(
    sqlite_pair: list[RunningNode], clock: ManualClock
) -> None:
    school, social = sqlite_pair
    await traffic(school, social, 2)
    report = await cli("status", "--json", "--no-peers", "-d", str(school.node.config.directory))
    facts = json.loads(report.stdout)
    # the nodes' clock is in November; status reads the system clock: the days are its own
    assert facts["log_entries"] >= 2 and facts["log_archived"] is None
    assert [d["day"] for d in facts["log_growth"]] == sorted(d["day"] for d in facts["log_growth"])
