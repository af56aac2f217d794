"""Set-up shared by the benchmarks that drive real nodes (not a benchmark; not registered).

Node directories are made with the product's own ``init_node``; trust, plans, consents and
fragments are written straight into each node's store with the product's record functions,
which is what ``barnplan peers add`` and the API end up writing, minus the HTTP round trips that
would only slow the set-up. Processes run on loopback: ``python -m node serve`` for one node,
``python -m bench.host`` for many in-process nodes (or bare servers) sharing one event loop.
Everything a benchmark starts it stops again by process id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import aiohttp

from node.config import NodeConfig, load_config
from node.logs import configure_logging
from node.runtime import Node, open_node
from node.services.fragments import AuthoredContent
from node.services.peers import FetchedPeer, trust_peer
from node.services.setup import init_node
from node.store import records
from node.store.engine import begin_write
from node.store.tables import Child, FragmentVersion, Plan, User
from protocol.clock import SystemClock, format_time
from protocol.documents import sign_consent, verify_node_document
from protocol.keys import fingerprint
from tests.support.ports import LOOPBACK, free_port

from .harness import REPO_ROOT, BenchmarkError

FEDERATION_PATH = "/federation/v1/messages"
READY = "ready"
CLOCK = SystemClock()
CHILD_PNR = "201503152389"  # synthetic test identity (valid Luhn), as the tests use
Host = asyncio.subprocess.Process


@dataclass(frozen=True)
class NodeDir:
    """A node directory made by ``init_node``; ``port`` is where its server will listen."""

    directory: Path
    node_id: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def config(self) -> NodeConfig:
        return load_config(self.directory)


async def make_node_dir(base: Path, node_id: str, kind: str = "school") -> NodeDir:
    port = free_port()
    await init_node(
        base / node_id,
        node_id=node_id,
        agency_name=f"Benchmark {node_id}",
        agency_kind=kind,
        base_url=f"http://{LOOPBACK}:{port}",
        host=LOOPBACK,
        port=port,
        store_url="",
        clock=CLOCK,
    )
    return NodeDir(base / node_id, node_id, port)


@contextlib.asynccontextmanager
async def opened(node_dir: NodeDir) -> AsyncIterator[Node]:
    """The node's store and keys, opened in this process for seeding (no server)."""
    node = await open_node(node_dir.config(), CLOCK, run_migrations=False)
    try:
        yield node
    finally:
        await node.close()


def document_of(node: Node) -> dict[str, Any]:
    return node.identity.node_document(CLOCK.now())


async def trust(node: Node, document: dict[str, Any]) -> None:
    """Record a peer from its signed node document, as ``barnplan peers add --yes`` does."""
    parsed, keys = verify_node_document(document)
    fetched = FetchedPeer(parsed, document, [fingerprint(k.raw) for k in keys])
    await trust_peer(node.engine, fetched, node.node_id, CLOCK.now())
    await node.reload_peers()


def lead_user(node_id: str = "lead") -> User:
    """The acting lead professional (services only read its role and id)."""
    return User(
        user_id=node_id,
        display_name="Benchmark lead",
        role="lead",
        token_hash=uuid.uuid4().hex * 2,
        created_at=CLOCK.now(),
    )


async def seed_plan(
    node: Node, plan_id: str, lead: str, participants: Sequence[str], reason: str = ""
) -> None:
    """The plan as ``node`` holds it: its own record of the child (one per node, shared by
    its plans), every participant linked."""
    now = CLOCK.now()
    child = Child(
        child_id=str(uuid.uuid4()), name="Testa Testsson", personnummer=CHILD_PNR, created_at=now
    )
    child_id = await records.insert_new_child(node.engine, child) or child.child_id
    members = {p: "linked" for p in participants}
    members[lead] = "lead"
    plan = Plan(
        plan_id=plan_id,
        child_id=child_id,
        role="lead" if node.node_id == lead else "participant",
        status="active",
        lead_node=lead,
        lead_professional=f"{lead}/u/lead",
        responsible_node=lead,
        purpose="sip",
        reason=reason,
        created_at=now,
    )
    async with begin_write(node.engine) as conn:
        await records.insert_plan(conn, plan, members)


def consent_statement(
    lead: Node, plan_id: str, grants: Sequence[tuple[str, Sequence[str], Sequence[str]]]
) -> dict[str, Any]:
    """A consent statement signed by ``lead``; grants are (from, to nodes, categories)."""
    now = CLOCK.now()
    return sign_consent(
        {
            "consent_id": str(uuid.uuid4()),
            "plan_id": plan_id,
            "lead": lead.node_id,
            "purpose": "sip",
            "required": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
            "given_by": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
            "grants": [
                {"from": source, "to": list(to), "categories": list(categories)}
                for source, to, categories in grants
            ],
            "valid_from": format_time(now - timedelta(days=1)),
            "valid_until": format_time(now + timedelta(days=365)),
            "evidence_ref": "Samtyckesblankett (benchmark)",
            "recorded_by": f"{lead.node_id}/u/lead",
            "issued_at": format_time(now - timedelta(minutes=1)),
        },
        lead.identity.key,
    )


async def store_consents(node: Node, statements: Sequence[dict[str, Any]]) -> None:
    now = CLOCK.now()
    async with begin_write(node.engine) as conn:
        for statement in statements:
            until = datetime.fromisoformat(statement["valid_until"].replace("Z", "+00:00"))
            await records.insert_consent(conn, statement, until, now)


def fragment_content(marker: str) -> dict[str, Any]:
    """About 1 KB of plan content, shaped like what professionals write (every field used)."""
    content = {
        "summary": f"Sammanfattning av läget i skolan och hemma ({marker}).",
        "needs": [
            {"what": "Stöd i matematik och läsförståelse"},
            {"what": "Regelbunden kontakt med elevhälsan", "indicator": "healthy"},
        ],
        "goals": [{"what": "Närvaro över 90 % under vårterminen", "by": "2027-06-01"}],
        "actions": [
            {
                "what": "Anpassad studiegång två dagar i veckan",
                "who": "Mentor och specialpedagog",
                "start": "2026-12-01",
                "end": "2027-03-01",
                "status": "planned",
            },
            {"what": "Samtal varannan vecka", "who": "Kurator", "status": "ongoing"},
        ],
        "child_view": "Barnet vill ha lugnare raster och en vuxen att prata med.",
        "family_view": "Familjen vill ha tätare återkoppling från skolan.",
        "next_review": "2027-02-01",
        "events": [{"on": "2026-10-15", "what": "Uppstartsmöte med familjen"}],
        "internal_note": "Intern anteckning som aldrig lämnar noden i klartext till fel part.",
    }
    return AuthoredContent.model_validate(content).model_dump(mode="json")


async def seed_fragments(node: Node, plan_id: str, category: str, count: int) -> None:
    now = CLOCK.now()
    async with begin_write(node.engine) as conn:
        for index in range(count):
            await records.insert_fragment_version(
                conn,
                FragmentVersion(
                    fragment_id=str(uuid.uuid4()),
                    version=1,
                    plan_id=plan_id,
                    category=category,
                    indicators="safe",
                    content=json.dumps(
                        fragment_content(f"{node.node_id} {index}"), ensure_ascii=False
                    ),
                    authored_by="prof",
                    authored_at=now - timedelta(days=1, minutes=index),
                ),
            )


# --- processes --------------------------------------------------------------------------------


def child_env() -> dict[str, str]:
    """The environment for child processes: this repo importable, Python output unbuffered."""
    path = os.environ.get("PYTHONPATH", "")
    return {
        **os.environ,
        "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{path}" if path else str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
    }


async def wait_healthy(
    url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60.0, *, bare: bool = False
) -> None:
    """Poll until the server answers 200 (``/healthz``; a bare server: an empty POST to the
    federation path); fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchmarkError(f"server process for {url} exited with {proc.returncode}")
            try:
                if bare:
                    probe = session.post(url + FEDERATION_PATH, data=b"{}")
                else:
                    probe = session.get(url + "/healthz")
                async with probe as resp:
                    if resp.status == 200:
                        return
            except (aiohttp.ClientError, OSError, TimeoutError):
                pass
            await asyncio.sleep(0.02)
    raise BenchmarkError(f"{url} did not become healthy within {timeout_s} s")


def start_serve(node_dir: NodeDir, log: IO[bytes]) -> subprocess.Popen[bytes]:
    """``python -m node serve --dir DIR``: a node exactly as an operator runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "node", "serve", "--dir", str(node_dir.directory)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_env(),
        cwd=REPO_ROOT,
    )


def start_bare(
    port: int, reply_file: Path, log: IO[bytes], *, signatures: bool = False
) -> subprocess.Popen[bytes]:
    """``python -m bench.bare_server``: the baseline server in a process of its own
    (``signatures``: with one verify and one sign per request, see ``bench.bare_server``)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.bare_server",
            "--port",
            str(port),
            "--reply",
            str(reply_file),
            *(["--signatures"] if signatures else []),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=child_env(),
        cwd=REPO_ROOT,
    )


async def start_host(args: Sequence[str], log: IO[bytes], timeout_s: float = 120.0) -> Host:
    """``python -m bench.host ARGS``; returns once it printed that every server listens."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.host",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        env=child_env(),
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    except TimeoutError:
        line = b""
    if line.strip() != READY.encode():
        await stop_host(proc)
        raise BenchmarkError(f"bench.host {' '.join(args[:2])} did not start (see {log.name})")
    return proc


async def stop_host(proc: Host) -> None:
    """SIGTERM (the host closes its nodes cleanly), then SIGKILL if it hangs."""
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def quiet_logs(path: Path) -> Iterator[None]:
    """Send this process's structlog output (the in-process nodes') to a file, as JSON lines
    like a served node writes them, so it neither floods the console nor costs a pretty-printer.
    Afterwards stray log lines (tasks still closing) go to /dev/null, never to a closed file.
    """
    with path.open("a", encoding="utf-8") as stream:
        configure_logging(stream)
        try:
            yield
        finally:
            configure_logging(open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) by linear interpolation between closest ranks."""
    if not samples:
        raise BenchmarkError("no samples")
    ordered = sorted(samples)
    pos = (len(ordered) - 1) * q
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)
