"""Two node processes on one PostgreSQL database: every notice is delivered exactly once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import POSTGRES_URL, run_psql
from tests.integration.test_release_flow import consent_body
from tests.support.federation import BUP, SCHOOL, SOCIAL
from tests.support.nodes import barnplan, free_port
from tests.support.procfed import ProcNode, make_nodes, run, trust_all
from tests.support.waiting import wait_until

BURST = 100

pytestmark = [
    pytest.mark.slow,  # node processes, two of them on one PostgreSQL store
    pytest.mark.skipif(not POSTGRES_URL, reason="needs BARNPLAN_TEST_POSTGRES_URL"),
]


@pytest.fixture
def federation(tmp_path: Path) -> Iterator[tuple[ProcNode, ProcNode, list[ProcNode]]]:
    """The school's node on PostgreSQL served by two processes; two SQLite peers."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    run_psql(f'CREATE SCHEMA "{schema}"')
    port = free_port()
    school_dir = tmp_path / SCHOOL[0]
    barnplan(
        "init",
        str(school_dir),
        "--id",
        SCHOOL[0],
        "--agency-name",
        SCHOOL[1],
        "--kind",
        SCHOOL[2],
        "--port",
        str(port),
        "--store-url",
        POSTGRES_URL,
        "--store-schema",
        schema,
    )
    first = ProcNode(school_dir, SCHOOL[0], port)
    first.tokens = {}
    for user, role in (("lead", "lead"), ("prof", "professional")):
        out = barnplan(
            "users", "add", user, "--name", role, "--role", role, "--dir", str(school_dir)
        ).stdout
        first.tokens[user] = out.split("token: ")[1].strip()
    second = ProcNode(school_dir, SCHOOL[0], free_port())
    second.tokens = first.tokens
    peers = make_nodes(tmp_path, [SOCIAL, BUP])
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for n in (first, *peers):
            n.start()
        # the second process serves the same directory and database on another port
        log = open(school_dir / "serve2.log", "ab")  # noqa: SIM115 - owned by the child
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "node",
                    "serve",
                    "--dir",
                    str(school_dir),
                    "--port",
                    str(second.port),
                ],
                stdout=log,
                stderr=log,
            )
        )
        run(trust_all([first, *peers]))

        def second_answers() -> bool:
            try:
                return second.api("GET", "/me")[0] == 200
            except OSError:
                return False

        wait_until(second_answers, timeout=30, what="the second process answers", interval=0.2)
        yield first, second, peers
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        for n in (first, *peers):
            n.stop()
        run_psql(f'DROP SCHEMA "{schema}" CASCADE')


def inbound_revocations(peer: ProcNode) -> list[str]:
    with sqlite3.connect(peer.directory / "node.db") as db:
        rows = db.execute(
            "select consent_id from exchange_log where direction='in' and "
            "message_type='consent.revoke' and outcome='ok'"
        ).fetchall()
    return [r[0] for r in rows]


def test_a_revocation_burst_is_delivered_exactly_once_by_two_processes(
    federation: tuple[ProcNode, ProcNode, list[ProcNode]],
) -> None:
    first, second, peers = federation
    for n in (first, *peers):
        status, body = n.api(
            "POST", "/children", "prof", {"name": "Testa Testsson", "personnummer": "20150315-2389"}
        )
        assert status == 201, body
        if n is first:
            child = body["child_id"]
    status, plan = first.api(
        "POST", "/plans", "lead", {"child_id": child, "participants": [p.node_id for p in peers]}
    )
    assert status == 201 and {p["status"] for p in plan["participants"]} == {"lead", "pending"}
    for peer in peers:
        peer.link_invitation(plan["plan_id"])
    grants = [{"from": p.node_id, "to": [first.node_id], "categories": ["social"]} for p in peers]
    consents = []
    for i in range(BURST):
        status, consent = (first if i % 2 else second).api(
            "POST", f"/plans/{plan['plan_id']}/consents", "lead", consent_body(grants)
        )
        assert status == 201, consent
        consents.append(consent["consent_id"])

    def revoke(i: int) -> int:
        node = first if i % 2 else second
        return node.api("POST", f"/consents/{consents[i]}/revoke", "prof")[0]

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(revoke, range(BURST))) == {201}

    backlog: list[object] = []

    def delivered() -> bool:
        backlog[:] = json.loads(barnplan("outbox", "--json", "--dir", str(first.directory)).stdout)
        return not backlog

    wait_until(delivered, timeout=60, what=lambda: f"an empty outbox: {backlog[:3]}", interval=0.5)
    for peer in peers:
        received = inbound_revocations(peer)
        assert sorted(received) == sorted(consents), f"{peer.node_id}: {len(received)} notices"
    everything = json.loads(
        barnplan("outbox", "--json", "--all", "--dir", str(first.directory)).stdout
    )
    assert len(everything) == BURST * len(peers)
    assert all(item["attempts"] == 1 for item in everything), "a notice was sent twice"
    verify = barnplan("log", "verify", "--json", "--dir", str(first.directory), check=False)
    assert verify.returncode == 0, verify.stdout  # one linear chain from two writers
