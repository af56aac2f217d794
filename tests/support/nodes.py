"""Starting real node processes on loopback for integration and end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.ports import free_port as free_port  # ports below the ephemeral range
from tests.support.waiting import wait_until


def barnplan(
    *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a subprocess exactly as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "node", *args],
        capture_output=True,
        text=True,
        check=check,
        input=input,
        timeout=60,
    )


@dataclass
class NodeProcess:
    """A node directory and, while running, its ``barnplan serve`` process."""

    directory: Path
    node_id: str
    port: int
    proc: subprocess.Popen[str] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None, wait: float = 20.0) -> None:
        log = open(self.directory / "serve.log", "a")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "node", "serve", "--dir", str(self.directory)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        proc = self.proc

        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{self.node_id} exited: {(self.directory / 'serve.log').read_text()}"
                )
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as resp:
                    return resp.status == 200
            except OSError:
                return False

        wait_until(healthy, timeout=wait, what=f"{self.node_id} starts (answers /healthz)")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def init_node(
    base: Path,
    node_id: str,
    kind: str,
    name: str,
    store_url: str = "",
    schema: str = "",
) -> NodeProcess:
    port = free_port()
    directory = base / node_id
    args = [
        "init",
        str(directory),
        "--id",
        node_id,
        "--agency-name",
        name,
        "--kind",
        kind,
        "--port",
        str(port),
    ]
    if store_url:
        args += ["--store-url", store_url, "--store-schema", schema]
    barnplan(*args)
    return NodeProcess(directory, node_id, port)


async def barnplan_async(*args: str) -> subprocess.CompletedProcess[str]:
    """``barnplan`` in a subprocess from async code, which must not block the event loop its
    in-process nodes serve on."""
    import asyncio

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "node", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())
