"""Revocation reach: how fast a withdrawn consent stops releases everywhere.

``revocation_*_s_n16``: the revoking node (a real node, served in the benchmark process with its
own app, scheduler and outbox) runs the product's ``record_revocation`` — one transaction that
records the revocation and queues a notice per participant — and its outbox delivers a signed
``consent.revoke`` to each of the plan's 16 other participants, which store it and answer with a
signed ack. Time runs from the call to the moment the 16th ack is in (the outbox's ack counter,
polled every millisecond). The 16 participants are real nodes sharing one event loop in a second
process (``bench.host``), as in the assembly benchmark, for the same reason: 2 cores.

Baseline, interleaved with the revocations: the same node sends one signed ``hello`` to the same
16 peers at once through the same client (sign, POST, verified reply, exchange log on both
sides): the plain round trip a revocation notice cannot beat. `revocation_vs_hello_fanout` is
the median revocation time over the median hello fan-out time.

``catchup_s``: a participant that was down while a consent was revoked is started as its own
process (``python -m node serve``); a client signs a fresh ``fragments.request`` as the revoking
(lead) node and posts it every 10 ms from the moment the process is spawned until the answer
withholds with ``consent_revoked``. The node answers no fragment request before it has said hello
to its 17 peers and pulled the revocations it missed, so this covers interpreter start and
imports, opening the store, and catch-up. A release before the refusal would be a failure of
DESIGN.md invariant 4 and aborts the benchmark.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from node.runtime import Node, open_node
from node.services.revocation import record_revocation
from node.store import revocations as revocation_store
from node.web.app import create_app
from protocol.clock import format_time
from protocol.envelope import sign_envelope
from tests.support.ports import LOOPBACK

from .fleet import (
    CLOCK,
    FEDERATION_PATH,
    Host,
    NodeDir,
    consent_statement,
    document_of,
    lead_user,
    make_node_dir,
    opened,
    percentile,
    quiet_logs,
    seed_fragments,
    seed_plan,
    start_host,
    start_serve,
    stop_host,
    stop_process,
    store_consents,
    trust,
)
from .harness import BenchmarkError, Figure, RunConfig

PEERS = 16
LEAD = "ifo.bench.se"
RETURNING = "q.bench.se"
CATEGORY = "education"
GOAL_P99_S = 0.25
GOAL_CATCHUP_S = 3.0
ACKS = "barnplan_outbox_delivery_seconds_count"


@dataclass
class Federation:
    lead: NodeDir
    peers: list[NodeDir]
    returning: NodeDir
    plan_peers: str
    plan_returning: str
    consents_peers: list[str]
    consents_returning: list[str]


async def build(base: Path, revocations: int, catchups: int) -> Federation:
    lead_dir = await make_node_dir(base, LEAD, "social_services")
    peers = [await make_node_dir(base, f"r{i:02d}.bench.se", "school") for i in range(PEERS)]
    returning = await make_node_dir(base, RETURNING, "school")
    plan_peers, plan_returning = str(uuid.uuid4()), str(uuid.uuid4())
    peer_ids = [p.node_id for p in peers]
    async with opened(lead_dir) as lead, opened(returning) as back:
        lead_doc, back_doc = document_of(lead), document_of(back)
        await seed_plan(lead, plan_peers, LEAD, peer_ids)
        await seed_plan(lead, plan_returning, LEAD, [RETURNING])
        grants_peers = [(p, [LEAD], [CATEGORY]) for p in peer_ids]
        for_peers = [consent_statement(lead, plan_peers, grants_peers) for _ in range(revocations)]
        for_back = [
            consent_statement(lead, plan_returning, [(RETURNING, [LEAD], [CATEGORY])])
            for _ in range(catchups)
        ]
        await store_consents(lead, for_peers + for_back)
        await trust(lead, back_doc)
        await trust(back, lead_doc)
        await seed_plan(back, plan_returning, LEAD, [RETURNING])
        await store_consents(back, for_back)
        await seed_fragments(back, plan_returning, CATEGORY, 1)
        for peer in peers:
            async with opened(peer) as node:
                await trust(node, lead_doc)
                await trust(node, back_doc)
                await trust(lead, document_of(node))
                await trust(back, document_of(node))
                await seed_plan(node, plan_peers, LEAD, peer_ids)
                await store_consents(node, for_peers)
    return Federation(
        lead_dir,
        peers,
        returning,
        plan_peers,
        plan_returning,
        [s["consent_id"] for s in for_peers],
        [s["consent_id"] for s in for_back],
    )


def acks(node: Node) -> float:
    return node.metrics.registry.get_sample_value(ACKS) or 0.0


async def revoke_and_wait(node: Node, consent_id: str, expected: int) -> float:
    """Seconds from ``record_revocation`` to the ``expected``-th ack of its notices."""
    before = acks(node)
    started = time.perf_counter()
    result = await record_revocation(node, lead_user(), consent_id)
    if len(result["notified"]) != expected:
        raise BenchmarkError(f"revocation notified {len(result['notified'])} peers")
    deadline = started + 30
    while acks(node) < before + expected:
        if time.perf_counter() > deadline:
            raise BenchmarkError("revocation notices were not all acknowledged within 30 s")
        await asyncio.sleep(0.001)
    return time.perf_counter() - started


async def hello_fanout(node: Node, peers: list[str]) -> float:
    started = time.perf_counter()
    results = await asyncio.gather(
        *(node.peers.send(p, "hello", {"started_at": format_time(CLOCK.now())}) for p in peers)
    )
    elapsed = time.perf_counter() - started
    bad = [r for r in results if not r.ok]
    if bad:
        raise BenchmarkError(f"hello to {bad[0].peer}: {bad[0].outcome} {bad[0].reason}")
    return elapsed


async def outbox_empty(node: Node) -> None:
    deadline = time.perf_counter() + 30
    while True:
        async with node.engine.connect() as conn:
            if not await revocation_store.outbox_rows(conn):
                return
        if time.perf_counter() > deadline:
            raise BenchmarkError("the outbox did not drain")
        await asyncio.sleep(0.01)


@dataclass
class Catchup:
    listening_s: float
    refused_s: float


async def first_health(session: aiohttp.ClientSession, url: str, started: float) -> float:
    """Seconds from ``started`` until ``/healthz`` first answers (it never awaits catch-up)."""
    while True:
        try:
            async with session.get(url + "/healthz") as resp:
                if resp.status == 200:
                    return time.perf_counter() - started
        except (aiohttp.ClientError, OSError):
            pass
        await asyncio.sleep(0.01)


async def catch_up_once(lead: Node, fed: Federation, consent_id: str, log: Any) -> Catchup:
    """Revoke while the returning node is down; time its start to its first refusal."""
    await record_revocation(lead, lead_user(), consent_id)
    await asyncio.sleep(0.6)  # the first delivery attempt fails: the notice is missed
    url = fed.returning.url + FEDERATION_PATH
    body = {
        "plan_id": fed.plan_returning,
        "consent_id": consent_id,
        "categories": [CATEGORY],
        "purpose": "sip",
        "professional": f"{LEAD}/u/lead",
    }
    started = time.perf_counter()
    proc = start_serve(fed.returning, log)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            health = asyncio.create_task(first_health(session, fed.returning.url, started))
            while True:
                if time.perf_counter() - started > 60:
                    raise BenchmarkError("the returning node never refused within 60 s")
                if proc.poll() is not None:
                    raise BenchmarkError(f"the returning node exited with {proc.returncode}")
                envelope = sign_envelope(
                    type="fragments.request",
                    body=body,
                    sender=LEAD,
                    to=RETURNING,
                    key=lead.identity.key,
                    clock=CLOCK,
                )
                try:
                    async with session.post(url, json=envelope) as resp:
                        reply = json.loads(await resp.read())
                except (aiohttp.ClientError, OSError):
                    await asyncio.sleep(0.01)
                    continue
                answer = reply.get("body", {})
                if answer.get("fragments"):
                    raise BenchmarkError("the returning node released under a revoked consent")
                reasons = [w.get("reason") for w in answer.get("withheld", [])]
                if reasons == ["consent_revoked"]:
                    refused = time.perf_counter() - started
                    break
                raise BenchmarkError(f"unexpected answer from the returning node: {reply}")
            listening = await asyncio.wait_for(health, 10)
    finally:
        stop_process(proc)
    return Catchup(listening, refused)


async def serve_lead(lead: Node, port: int) -> web.AppRunner:
    runner = web.AppRunner(create_app(lead), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, port).start()
    return runner


async def measure(config: RunConfig, base: Path) -> list[Figure]:
    with quiet_logs(base / "lead.log"):
        return await _measure(config, base)


async def _measure(config: RunConfig, base: Path) -> list[Figure]:
    samples = config.pick(full=30, quick=3)
    warmup = config.pick(full=3, quick=1)
    catchups = config.pick(full=3, quick=1)
    fed = await build(base, samples + warmup, catchups)
    log = (base / "processes.log").open("ab")
    hosts: list[Host] = []
    lead = await open_node(fed.lead.config(), CLOCK, run_migrations=False)
    runner: web.AppRunner | None = None
    peer_ids = [p.node_id for p in fed.peers]
    try:
        hosts.append(
            await start_host(
                ["nodes", "--log", str(base / "nodes.log"), *[str(p.directory) for p in fed.peers]],
                log,
            )
        )
        runner = await serve_lead(lead, fed.lead.port)
        await asyncio.wait_for(lead.caught_up.wait(), 30)
        revoke: list[float] = []
        hello: list[float] = []
        consents = iter(fed.consents_peers)
        for i in range(warmup + samples):
            consent_id = next(consents)
            if i % 2 == 0:
                r = await revoke_and_wait(lead, consent_id, PEERS)
                h = await hello_fanout(lead, peer_ids)
            else:
                h = await hello_fanout(lead, peer_ids)
                r = await revoke_and_wait(lead, consent_id, PEERS)
            await outbox_empty(lead)
            if i >= warmup:
                revoke.append(r)
                hello.append(h)
        returns = [
            await catch_up_once(lead, fed, consent_id, log) for consent_id in fed.consents_returning
        ]
    finally:
        if runner is not None:
            await runner.cleanup()
        for host in hosts:
            await stop_host(host)
        await lead.close()
        log.close()

    how = f"{len(revoke)} revocations interleaved with {len(hello)} hello fan-outs"
    p50, p99 = percentile(revoke, 0.5), percentile(revoke, 0.99)
    listening = statistics.median(c.listening_s for c in returns)
    return [
        Figure(
            name="revocation_p99_s_n16",
            value=p99,
            unit="s",
            description=(
                "p99 (of so few samples: about the slowest) time from record_revocation to the "
                f"16th peer's signed ack ({how}; peers are real nodes sharing one process)"
            ),
            goal="a revocation reaches every reachable participant within a quarter second",
            threshold=GOAL_P99_S,
            higher_is_better=False,
        ),
        Figure(
            name="revocation_p50_s_n16",
            value=p50,
            unit="s",
            description=f"median time from record_revocation to the 16th peer's ack ({how})",
        ),
        Figure(
            name="revocation_vs_hello_fanout",
            value=p50 / statistics.median(hello),
            unit="ratio",
            description=(
                "median revocation time (record + outbox delivery + 16 acks) over the median "
                f"time of one signed hello to the same 16 peers at once "
                f"({statistics.median(hello) * 1000:.3g} ms); 1.0 would mean the outbox adds "
                "nothing to a plain signed round trip"
            ),
        ),
        Figure(
            name="catchup_s",
            value=statistics.median(c.refused_s for c in returns),
            unit="s",
            description=(
                "median over "
                f"{len(returns)} restarts of a node that missed a revocation: from spawning "
                "`python -m node serve` to its first fragments.request answer, which withholds "
                f"with consent_revoked (it first says hello to its {PEERS + 1} peers and pulls "
                f"what it missed); of this, {listening:.2f} s passed before it accepted its "
                "first HTTP request (interpreter, imports, store)"
            ),
            goal="a returning node refuses under a missed revocation within 3 s of starting",
            threshold=GOAL_CATCHUP_S,
            higher_is_better=False,
        ),
        Figure(
            name="catchup_listen_s",
            value=listening,
            unit="s",
            description=(
                "median time from spawning the returning node's process to its first HTTP "
                "answer: the part of catchup_s that is interpreter start, imports and opening "
                "the store rather than catch-up"
            ),
        ),
    ]


def run(config: RunConfig) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-revocation-") as tmp:
        return asyncio.run(measure(config, Path(tmp)))
