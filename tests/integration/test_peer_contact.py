"""A peer's last contact is written to its row (at most once a minute), so ``peers list`` and
other processes show what ``/ops/peers`` shows, not ``null``."""

from __future__ import annotations

import json
import subprocess
import sys

from node.store import peers as peer_store
from protocol.clock import ManualClock, format_time
from tests.support.federation import RunningNode


async def test_a_peer_heard_from_has_its_last_contact_in_the_store(
    sqlite_pair: list[RunningNode], clock: ManualClock
) -> None:
    school, social = sqlite_pair
    assert (await peer_store.get_peer(school.node.engine, social.node_id)).last_contact_at is None
    first = clock.now()
    await social.node.peers.send(school.node_id, "hello", {"started_at": format_time(first)})
    stored = await peer_store.get_peer(school.node.engine, social.node_id)
    assert stored is not None and stored.last_contact_at == first

    clock.advance(30)  # within the minute: memory only
    await social.node.peers.send(school.node_id, "hello", {"started_at": format_time(first)})
    assert school.node.last_contact[social.node_id] == clock.now()
    stored = await peer_store.get_peer(school.node.engine, social.node_id)
    assert stored is not None and stored.last_contact_at == first

    clock.advance(31)
    await social.node.peers.send(school.node_id, "hello", {"started_at": format_time(first)})
    stored = await peer_store.get_peer(school.node.engine, social.node_id)
    assert stored is not None and stored.last_contact_at == clock.now()

    listed = subprocess.run(
        [
            sys.executable,
            "-m",
            "node",
            "peers",
            "list",
            "--json",
            "--dir",
            str(school.node.config.directory),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    [peer] = json.loads(listed.stdout)
    assert peer["last_contact_at"] == clock.now().isoformat()


async def test_an_unreachable_peer_is_named_by_a_short_code_not_a_class_name(
    sqlite_pair: list[RunningNode], clock: ManualClock
) -> None:
    """The outbox's last error and the exchange log said ``ClientConnectorError``."""
    school, social = sqlite_pair
    await social.stop()
    hello = {"started_at": format_time(clock.now())}
    result = await school.node.peers.send(social.node_id, "hello", hello)
    assert (result.outcome, result.reason) == ("unreachable", "connect_failed")
