"""``barnplan demo``: a small federation on loopback, each node its own process and store.

Today it sets up the nodes and their mutual trust; the mission walk-through (invite, consent,
assemble, revoke, catch-up) is added as those capabilities land.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import click

DEMO_NODES = (
    ("elevhalsa.kungsbacka.se", "Kungsbacka kommun, elevhälsa", "school"),
    ("ifo.kungsbacka.se", "Kungsbacka kommun, IFO", "social_services"),
)


@dataclass
class DemoNode:
    node_id: str
    directory: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "node", *args], capture_output=True, text=True)


def _step(text: str) -> None:
    click.echo(click.style(f"▶ {text}", bold=True))


def _ok(text: str) -> None:
    click.echo(f"  ✓ {text}")


def _wait_healthy(node: DemoNode, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(node.url + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise click.ClickException(f"{node.node_id} did not start; see {node.directory}/serve.log")


@click.command()
@click.option(
    "--dir",
    "base",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to create the demo nodes [default: a new temporary directory].",
)
@click.option("--no-wait", is_flag=True, help="Exit when the walk-through is done.")
def demo(base: Path | None, no_wait: bool) -> None:
    """Start a demo federation on loopback and walk through what barnplan does today."""
    workdir = base or Path(tempfile.mkdtemp(prefix="barnplan-demo-"))
    nodes: list[DemoNode] = []
    try:
        _step(f"creating {len(DEMO_NODES)} nodes in {workdir}")
        for node_id, name, kind in DEMO_NODES:
            node = DemoNode(node_id, workdir / node_id, _free_port())
            result = _cli(
                "init",
                str(node.directory),
                "--id",
                node_id,
                "--agency-name",
                name,
                "--kind",
                kind,
                "--port",
                str(node.port),
            )
            if result.returncode != 0:
                raise click.ClickException(result.stderr.strip())
            nodes.append(node)
            _ok(f"{node_id}: own key and SQLite store")
        _step("starting each node as its own process")
        for node in nodes:
            log = open(node.directory / "serve.log", "ab")  # noqa: SIM115 - owned by the child
            node.proc = subprocess.Popen(
                [sys.executable, "-m", "node", "serve", "--dir", str(node.directory)],
                stdout=log,
                stderr=log,
            )
        for node in nodes:
            _wait_healthy(node)
            _ok(f"{node.node_id} at {node.url}")
        _step("each node verifies and trusts the others' signed node documents")
        for node in nodes:
            for other in nodes:
                if other is node:
                    continue
                result = _cli("peers", "add", other.url, "--dir", str(node.directory), "--yes")
                if result.returncode != 0:
                    raise click.ClickException(result.stderr.strip())
                _ok(f"{node.node_id} trusts {other.node_id}")
        _step("done")
        for node in nodes:
            click.echo(f"  {node.node_id:28} {node.url}/.well-known/barnplan/node")
        if not no_wait:
            click.echo("nodes are running; press Ctrl-C to stop")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for node in nodes:
            if node.proc is not None:
                node.proc.terminate()
                node.proc.wait(timeout=10)
        if base is None and no_wait:
            shutil.rmtree(workdir, ignore_errors=True)
