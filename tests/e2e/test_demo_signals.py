"""``bash deploy/demo.sh`` stops its four nodes when it is stopped: by ``kill`` (SIGTERM), by
Ctrl-C (SIGINT) or by its terminal closing (SIGHUP).

The script is started as a user starts it (no ``--no-wait``), in a session of its own, so every
process it starts can be found by session id even after it is gone; the signal goes to the
script's process alone, never to its group (a terminal's Ctrl-C would reach the nodes too and
hide the fault).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
READY = "Nodes keep running"
SERVING = re.compile(r"serving at http://127\.0\.0\.1:(\d+)")


def in_session(session: int) -> dict[int, str]:
    """Live (not zombie) processes of ``session``: pid -> command line."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # exited meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, pgrp, sid
        if fields[0] != "Z" and int(fields[3]) == session:
            found[int(entry.name)] = cmdline
    return found


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
            return True
    except OSError:
        return False


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def start_demo(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], Path]:
    """``bash deploy/demo.sh --dir TMP/demo EXTRA`` as a user starts it (no ``--no-wait``), in
    a session of its own; its output goes to the returned file."""
    out = tmp_path / "demo.out"
    env = {**os.environ, "BARNPLAN_VENV": sys.prefix, "PYTHONUNBUFFERED": "1"}
    with out.open("wb") as sink:
        script = subprocess.Popen(
            ["bash", str(REPO / "deploy" / "demo.sh"), *extra, "--dir", str(tmp_path / "demo")],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return script, out


@pytest.mark.slow
@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_stopping_the_demo_stops_its_nodes(tmp_path: Path, sig: signal.Signals) -> None:
    script, out = start_demo(tmp_path)
    try:

        def ready() -> bool:
            assert script.poll() is None, out.read_text(errors="replace")[-3000:]
            return READY in out.read_text(errors="replace")

        wait_until(ready, timeout=600, what="the demo waits with its nodes running", interval=0.2)
        ports = [int(p) for p in SERVING.findall(out.read_text(errors="replace"))]
        assert len(ports) == 4 and all(answers(p) for p in ports)
        nodes = {pid: cmd for pid, cmd in in_session(script.pid).items() if " node serve " in cmd}
        assert len(nodes) == 4, nodes

        os.kill(script.pid, sig)  # the script's process only: not its process group

        script.wait(timeout=60)
        wait_until(
            lambda: not set(nodes) & set(in_session(script.pid)),
            timeout=30,
            what="nodes exit",
            interval=0.2,
        )
        wait_until(
            lambda: not any(port_open(p) for p in ports),
            timeout=30,
            what="every port closed",
            interval=0.2,
        )
        assert in_session(script.pid) == {}  # nothing the demo started is left
    finally:
        if script.poll() is None:
            script.kill()
        for pid in in_session(script.pid):
            os.kill(pid, signal.SIGKILL)
