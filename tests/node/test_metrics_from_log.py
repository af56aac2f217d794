"""``/metrics`` counts every message in the exchange log, whichever process of the node sent
or received it: a checkpoint a ``barnplan log checkpoint`` process sent shows in the running
node's metrics (before, CLI processes' counters died with them)."""

from __future__ import annotations

import re

import aiohttp

from protocol.clock import format_time
from tests.support.federation import RunningNode
from tests.support.nodes import barnplan_async


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` with these labels in a Prometheus exposition."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{([^}}]*)\}} (\S+)$", line)
        if match:
            found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(match.group(2))
    return total


async def scrape(node: RunningNode) -> str:
    async with aiohttp.ClientSession() as http, http.get(node.url + "/metrics") as response:
        assert response.status == 200
        return await response.text()


async def test_a_message_a_cli_command_sent_is_in_the_running_nodes_metrics(
    sqlite_pair: list[RunningNode],
) -> None:
    school, social = sqlite_pair
    logged = "barnplan_exchange_log_messages_total"
    # something in the log to checkpoint: the serving node greets its peer
    started = format_time(school.node.clock.now())
    greeted = await school.node.peers.send(social.node_id, "hello", {"started_at": started})
    assert greeted.ok
    before = await scrape(school)
    assert sample(before, logged, direction="out", type="hello", outcome="ok") == 1
    assert sample(before, logged, direction="out", type="log.checkpoint") == 0
    # another process sends: (it runs on the real clock, the nodes on the test's, so the
    # witness's reply may be refused as out of time; sent and logged either way)
    ran = await barnplan_async("log", "checkpoint", "--dir", str(school.node.config.directory))
    assert ran.returncode == 0, ran.stderr
    after = await scrape(school)
    assert sample(after, logged, direction="out", type="log.checkpoint") == 1
    # the process-local counter saw the hello it sent, never the checkpoint: the CLI sent it
    assert sample(after, "barnplan_outbound_requests_total", type="hello") == 1
    assert sample(after, "barnplan_outbound_requests_total", type="log.checkpoint") == 0
    assert re.search(r"^barnplan_exchange_log_entries 2\.0$", after, re.M)
    # the witness logged the checkpoint it received, and counts it on its next scrape
    assert sample(await scrape(social), logged, direction="in", type="log.checkpoint") == 1
    # a second scrape counts nothing twice
    assert sample(await scrape(school), logged, direction="out", type="log.checkpoint") == 1
