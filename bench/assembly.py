"""Assembly latency: the lead asks every participant at once, so a plan should take about one
round trip to the slowest participant, not the sum of them.

Set-up, chosen for a 2-core machine: the lead is a real node opened in the benchmark process and
assembles with the product's ``assemble`` (the service behind ``GET /api/v1/plans/{id}/shared``,
without the API's HTTP hop). The 32 participants are real nodes — each its own directory, SQLite
store, keys and aiohttp app on its own loopback port — hosted side by side in ONE second process
and event loop (``bench.host``): 32 processes would only time-share the same 2 cores, and the
lead's process keeps a core of its own this way. Each participant holds the plan, the lead's
consent statement granting the lead one category from it, and one ~1 KB fragment of that
category; the lead holds one fragment of its own. Plans with the first 3, 8 and 32 participants
are assembled. Serving is therefore serialized on one core across participants, so the figures
are pessimistic for real deployments, where each participant runs on its own machine.

The baseline is the same fan-out without the protocol: as many bare aiohttp servers (also in one
process), each returning the reply bytes its real counterpart produced; the baseline client posts
a request of the same size to each concurrently and parses every reply as JSON. Real and bare
assemblies alternate, one by one. A third contender is the same fan-out plus only the signatures an
assembly needs (``--signatures`` servers verify one signature and sign their reply; the client
signs each request and verifies each reply's and each fragment's signature): the ceiling that
cryptography alone leaves (`assembly_signatures_p50_vs_bare_n*`). The three take turns going
first. The goal is stated against that ceiling (issue #15): `assembly_p50_vs_signatures_n8`, the
real assembly's median divided by the signatures-only fan-out's, at most 2.0.

Building 33 node directories leaves the benchmark process a heap no lead would have; it is
frozen out of the garbage collector before timing (as ``serve`` freezes its imports), and the
participants' host freezes its nodes' long-lived objects the same way after opening them.

``assembly_p50_ms_n32_delay50``: the participants' host is restarted with an aiohttp middleware
that holds every federation request for 50 ms before the node sees it; a concurrent fan-out should
then take about 50 ms plus the undelayed work, not 32 × 50 ms. Both baselines are restarted with
the same delay: `assembly_bare_p50_ms_n32_delay50` is its floor and
`assembly_signatures_p50_ms_n32_delay50` its ceiling with signatures alone.
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from node.domain.statement_json import StatementJson
from node.runtime import Node, open_node
from node.services.assembly import assemble
from protocol.envelope import sign_envelope
from protocol.messages import FragmentsRequest
from tests.support.ports import LOOPBACK, free_port

from .bare_server import SignatureWork
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
    stop_host,
    store_consents,
    trust,
)
from .harness import BenchmarkError, Figure, RunConfig

SIZES = (3, 8, 32)
LEAD = "ifo.bench.se"
CATEGORIES = ("education", "health", "mental_health", "family", "police", "leisure")
GOAL_RATIO_N8 = 2.0
GOAL_DELAY_MS = 75.0
DELAY_MS = 50.0


def participant_id(index: int) -> str:
    return f"p{index:02d}.bench.se"


@dataclass
class Federation:
    base: Path
    lead: NodeDir
    participants: list[NodeDir]
    plans: dict[int, str]  # participants → plan id


async def build(base: Path) -> Federation:
    lead_dir = await make_node_dir(base, LEAD, "social_services")
    participants = [
        await make_node_dir(base, participant_id(i), "school") for i in range(max(SIZES))
    ]
    plans = {n: str(uuid.uuid4()) for n in SIZES}
    category = {p.node_id: CATEGORIES[i % len(CATEGORIES)] for i, p in enumerate(participants)}
    async with opened(lead_dir) as lead:
        lead_doc = document_of(lead)
        statements: dict[int, dict[str, Any]] = {}
        for n, plan_id in plans.items():
            members = [p.node_id for p in participants[:n]]
            await seed_plan(lead, plan_id, LEAD, members)
            statements[n] = consent_statement(
                lead, plan_id, [(m, [LEAD], [category[m]]) for m in members]
            )
            await seed_fragments(lead, plan_id, "social", 1)
        await store_consents(lead, list(statements.values()))
        for index, participant in enumerate(participants):
            async with opened(participant) as node:
                await trust(node, lead_doc)
                await trust(lead, document_of(node))
                mine = [n for n in SIZES if index < n]
                for n in mine:
                    members = [p.node_id for p in participants[:n]]
                    await seed_plan(node, plans[n], LEAD, members)
                    await seed_fragments(node, plans[n], category[participant.node_id], 1)
                await store_consents(node, [statements[n] for n in mine])
    return Federation(base, lead_dir, participants, plans)


@dataclass
class BareFanout:
    """The baseline client: POST one request-sized body to each server at once, parse replies.

    With ``signatures`` (against servers started with ``--signatures``) it also does the lead's
    share of the cryptography and nothing more: signs each request body before sending it, and
    verifies one signature per reply and one per fragment the reply carries."""

    session: aiohttp.ClientSession
    targets: list[tuple[str, bytes]]
    signatures: SignatureWork | None = None

    async def run(self, n: int) -> None:
        work = self.signatures

        async def one(url: str, body: bytes) -> Any:
            if work is not None:
                work.sign(body)
            async with self.session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                data = await resp.read()
                if resp.status != 200:
                    raise BenchmarkError(f"bare server {url} answered HTTP {resp.status}")
            reply = json.loads(data)
            if work is not None:
                for _ in range(1 + len(reply["body"]["fragments"])):
                    work.verify_like(data)
            return reply

        await asyncio.gather(*(one(url, body) for url, body in self.targets[:n]))


async def capture_replies(lead: Node, fed: Federation, out: Path) -> tuple[list[Path], list[bytes]]:
    """Each participant's real reply to the 32-participant plan's request, and one signed
    request per participant (the baseline posts these, so request sizes match)."""
    plan_id = fed.plans[max(SIZES)]
    statement = (await _consents(lead, plan_id))[-1]
    files: list[Path] = []
    requests: list[bytes] = []
    for participant in fed.participants:
        categories = sorted(
            c
            for g in statement["grants"]
            if g["from"] == participant.node_id
            for c in g["categories"]
        )
        body = FragmentsRequest.model_validate(
            {
                "plan_id": plan_id,
                "consent_id": statement["consent_id"],
                "categories": categories,
                "purpose": "sip",
                "professional": f"{LEAD}/u/lead",
            }
        )
        result = await lead.peers.send(participant.node_id, "fragments.request", body)
        if not result.ok or result.reply is None:
            raise BenchmarkError(f"{participant.node_id} answered {result.outcome} {result.reason}")
        path = out / f"reply-{participant.node_id}.json"
        path.write_bytes(json.dumps(result.reply.raw, ensure_ascii=False).encode("utf-8"))
        files.append(path)
        envelope = sign_envelope(
            type="fragments.request",
            body=body,
            sender=LEAD,
            to=participant.node_id,
            key=lead.identity.key,
            clock=CLOCK,
        )
        requests.append(json.dumps(envelope).encode("utf-8"))
    return files, requests


async def _consents(lead: Node, plan_id: str) -> list[StatementJson]:
    from node.store import records

    return await records.consents_for_plan(lead.engine, plan_id)


async def timed(fn: Callable[[], Awaitable[object]]) -> float:
    started = time.perf_counter()
    await fn()
    return time.perf_counter() - started


def checked_assembly(lead: Node, plan_id: str, n: int) -> Callable[[], Awaitable[object]]:
    actor = lead_user()

    async def once() -> object:
        shared = await assemble(lead, actor, plan_id)
        included = [p for p in shared["participants"] if p["status"] == "included"]
        if len(included) != n + 1:  # every participant and the lead itself
            bad = [p for p in shared["participants"] if p["status"] != "included"]
            raise BenchmarkError(f"assembly of {n} left out participants: {bad[:3]}")
        return shared

    return once


async def measure(config: RunConfig, base: Path) -> list[Figure]:
    with quiet_logs(base / "lead.log"):
        return await _measure(config, base)


async def _measure(config: RunConfig, base: Path) -> list[Figure]:
    iterations = {
        3: config.pick(full=60, quick=5),
        8: config.pick(full=40, quick=5),
        32: config.pick(full=25, quick=3),
    }
    delayed_iterations = config.pick(full=20, quick=3)
    warmup = config.pick(full=3, quick=1)
    fed = await build(base)
    host_log = (base / "host.log").open("ab")
    dirs = [str(p.directory) for p in fed.participants]
    hosts: list[Host] = []
    lead = await open_node(fed.lead.config(), CLOCK, run_migrations=False)
    # what building 33 node directories left behind is no part of a lead's heap: keep the
    # collector from walking it during the timed assemblies (serve freezes its imports alike)
    gc.collect()
    gc.freeze()
    try:
        nodes_host = await start_host(["nodes", "--log", str(base / "nodes.log"), *dirs], host_log)
        hosts.append(nodes_host)
        reply_files, requests = await capture_replies(lead, fed, base)
        bare_specs = specs(reply_files)
        hosts.append(await start_host(["bare", *bare_specs], host_log))
        signed_specs = specs(reply_files)  # the signatures-only servers, on ports of their own
        hosts.append(await start_host(["bare", "--signatures", *signed_specs], host_log))
        runs: dict[str, dict[int, list[float]]] = {"real": {}, "bare": {}, "signatures": {}}
        timeout = aiohttp.ClientTimeout(total=lead.config.protocol.request_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            fanout = BareFanout(session, list(zip(urls_of(bare_specs), requests, strict=True)))
            signed = BareFanout(
                session, list(zip(urls_of(signed_specs), requests, strict=True)), SignatureWork()
            )

            async def warmed(n: int) -> dict[str, Callable[[], Awaitable[object]]]:
                """The three contenders for ``n`` participants, each run ``warmup`` times."""
                contenders: dict[str, Callable[[], Awaitable[object]]] = {
                    "real": checked_assembly(lead, fed.plans[n], n),
                    "bare": partial(fanout.run, n),
                    "signatures": partial(signed.run, n),
                }
                for _ in range(warmup):
                    for contender in contenders.values():
                        await contender()
                return contenders

            for n in SIZES:
                contenders = await warmed(n)
                names = list(contenders)
                for name in names:
                    runs[name][n] = []
                for i in range(iterations[n]):
                    # each contender goes first, second and third in turn
                    for name in names[i % 3 :] + names[: i % 3]:
                        runs[name][n].append(await timed(contenders[name]))

            # every participant answers 50 ms late: restart the three hosts with the delay
            for host in hosts:
                await stop_host(host)
            hosts.clear()
            hosts.append(
                await start_host(
                    ["nodes", "--log", str(base / "nodes.log"), "--delay-ms", str(DELAY_MS), *dirs],
                    host_log,
                )
            )
            delay = ["--delay-ms", str(DELAY_MS)]
            hosts.append(await start_host(["bare", *delay, *bare_specs], host_log))
            hosts.append(
                await start_host(["bare", "--signatures", *delay, *signed_specs], host_log)
            )
            delayed_contenders = await warmed(max(SIZES))
            delayed: dict[str, list[float]] = {name: [] for name in delayed_contenders}
            for _ in range(delayed_iterations):
                for name, contender in delayed_contenders.items():
                    delayed[name].append(await timed(contender))
    finally:
        for host in hosts:
            await stop_host(host)
        await lead.close()
        host_log.close()
    return figures(runs, delayed)


def specs(reply_files: Sequence[Path]) -> list[str]:
    """``PORT=REPLYFILE`` for ``bench.host bare``: one fresh loopback port per reply."""
    return [f"{free_port()}={path}" for path in reply_files]


def urls_of(bare_specs: Sequence[str]) -> list[str]:
    return [f"http://{LOOPBACK}:{spec.partition('=')[0]}{FEDERATION_PATH}" for spec in bare_specs]


def figures(
    runs: dict[str, dict[int, list[float]]], delayed: dict[str, list[float]]
) -> list[Figure]:
    real, bare, signed = runs["real"], runs["bare"], runs["signatures"]
    out: list[Figure] = []
    setup = (
        "lead in the benchmark process, participants as real nodes sharing one event loop in a "
        "second process"
    )
    for n in SIZES:
        p50 = percentile(real[n], 0.5) * 1000
        bare_p50 = percentile(bare[n], 0.5) * 1000
        out.append(
            Figure(
                name=f"assembly_p50_vs_bare_n{n}",
                value=p50 / bare_p50,
                unit="ratio",
                description=(
                    f"median assembly time with {n} participants divided by the median bare "
                    f"fan-out to {n} plain aiohttp servers returning the same bytes "
                    f"({bare_p50:.3g} ms); {len(real[n])} interleaved samples each; {setup}"
                ),
                higher_is_better=False,
            )
        )
    for n in SIZES:
        out.append(
            Figure(
                name=f"assembly_p50_vs_signatures_n{n}",
                value=percentile(real[n], 0.5) / percentile(signed[n], 0.5),
                unit="ratio",
                description=(
                    f"median assembly time with {n} participants divided by the median of the "
                    f"same fan-out doing only the signatures an assembly needs (the ceiling "
                    "below, timed interleaved): what the node's own work adds to them"
                ),
                goal=("the node's own work at most doubles the signed fan-out" if n == 8 else None),
                threshold=GOAL_RATIO_N8 if n == 8 else None,
                higher_is_better=False,
            )
        )
    for n in SIZES:
        signed_p50 = percentile(signed[n], 0.5) * 1000
        out.append(
            Figure(
                name=f"assembly_signatures_p50_vs_bare_n{n}",
                value=signed_p50 / (percentile(bare[n], 0.5) * 1000),
                unit="ratio",
                description=(
                    f"the bare fan-out to {n} servers plus only the signatures an assembly "
                    f"needs ({signed_p50:.3g} ms): the client signs each request and verifies "
                    "each reply's and each fragment's signature, each server verifies one and "
                    "signs its reply (``--signatures``); divided by the bare fan-out: the "
                    f"ceiling for assembly_p50_vs_bare_n{n}, timed interleaved with it"
                ),
            )
        )
    for n in SIZES:
        for q, label in ((0.5, "p50"), (0.95, "p95")):
            out.append(
                Figure(
                    name=f"assembly_{label}_ms_n{n}",
                    value=percentile(real[n], q) * 1000,
                    unit="ms",
                    description=(
                        f"{label} of assemble() with {n} participants: sign {n} requests, "
                        "concurrent POSTs, verify replies and fragments, log each exchange, "
                        f"sign own fragment, merge ({len(real[n])} samples; {setup})"
                    ),
                )
            )
    n = max(SIZES)
    out.append(
        Figure(
            name=f"assembly_p50_ms_n{n}_delay50",
            value=percentile(delayed["real"], 0.5) * 1000,
            unit="ms",
            description=(
                f"median assembly time with {n} participants that each hold every "
                f"request {DELAY_MS:.0f} ms (aiohttp middleware) before answering "
                f"({len(delayed['real'])} samples); undelayed median: "
                f"{percentile(real[n], 0.5) * 1000:.3g} ms"
            ),
            goal="latency follows the slowest peer (50 ms), not the sum of the peers",
            threshold=GOAL_DELAY_MS,
            higher_is_better=False,
        )
    )
    out.append(
        Figure(
            name=f"assembly_bare_p50_ms_n{n}_delay50",
            value=statistics.median(delayed["bare"]) * 1000,
            unit="ms",
            description=(
                f"the bare fan-out to {n} servers that each wait {DELAY_MS:.0f} ms "
                f"before answering ({len(delayed['bare'])} samples): the floor for the figure above"
            ),
        )
    )
    out.append(
        Figure(
            name=f"assembly_signatures_p50_ms_n{n}_delay50",
            value=statistics.median(delayed["signatures"]) * 1000,
            unit="ms",
            description=(
                f"the same delayed fan-out plus only the signatures an assembly needs "
                f"({len(delayed['signatures'])} samples): the ceiling for "
                f"assembly_p50_ms_n{n}_delay50"
            ),
        )
    )
    return out


def run(config: RunConfig) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-assembly-") as tmp:
        return asyncio.run(measure(config, Path(tmp)))
