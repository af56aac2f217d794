"""One ``serve`` per node directory: a second refuses and names the first; the lock goes with
the process however it ends; SIGTERM writes a ``node.stopping`` line."""

from __future__ import annotations

import json
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.nodes import barnplan, init_node

pytestmark = pytest.mark.slow  # barnplan serve processes


def test_a_second_serve_on_the_same_directory_refuses_and_names_the_first(
    tmp_path: Path,
) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    node.start()
    try:
        assert node.proc is not None
        second = barnplan("serve", "--dir", str(node.directory), "--port", "9", check=False)
        assert second.returncode == 1
        assert f"barnplan serve pid {node.proc.pid} since" in second.stderr
        assert "already serves this node" in second.stderr
        assert node.proc.poll() is None  # the first one is untouched
    finally:
        node.stop(signal.SIGKILL)
    node.start()  # a lock left by kill -9 is gone with the process
    node.stop()


def test_sigterm_writes_a_stopping_line(tmp_path: Path) -> None:
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    node.start()
    node.stop(signal.SIGTERM)
    lines = [
        json.loads(line)
        for line in (node.directory / "serve.log").read_text().splitlines()
        if line.startswith("{")
    ]
    stopping = [line for line in lines if line.get("event") == "node.stopping"]
    assert [(s["node"], s["signal"]) for s in stopping] == [("skola.test.se", "SIGTERM")]


def test_a_refused_message_is_a_warning_in_the_process_log(tmp_path: Path) -> None:
    """Levels that mean something: a refusal is ``warning`` (alerting filters on it), the
    start an ``info``."""
    node = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    node.start()
    try:
        request = urllib.request.Request(
            node.url + "/federation/v1/messages",
            data=b'{"v": 1, "type": "made.up"}',
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=5)
    finally:
        node.stop()
    lines = [
        json.loads(line)
        for line in (node.directory / "serve.log").read_text().splitlines()
        if line.startswith("{")
    ]
    levels = {line["event"]: line["level"] for line in lines}
    assert levels["node.started"] == "info"
    assert levels["federation.refused"] == "warning"
