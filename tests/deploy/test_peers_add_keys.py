"""``peers add`` after a rotation says which listed key is current and which are retired, so
the operator compares the right fingerprint; ``keys list`` is how the other side shows it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.nodes import barnplan, init_node

pytestmark = pytest.mark.slow  # barnplan serve processes and CLI subprocesses


def test_peers_add_marks_the_current_key_and_the_retired_one(tmp_path: Path) -> None:
    a = init_node(tmp_path, "skola.test.se", "school", "Testskolan")
    b = init_node(tmp_path, "ifo.test.se", "social_services", "Testkommun IFO")
    barnplan("keys", "rotate", "--dir", str(a.directory))
    own = json.loads(barnplan("keys", "list", "--json", "--dir", str(a.directory)).stdout)
    current = next(k for k in own if k["current"])
    retired = next(k for k in own if not k["current"])
    a.start()
    try:
        out = barnplan("peers", "add", a.url, "--yes", "--dir", str(b.directory)).stdout
    finally:
        a.stop()
    shown = dict(re.findall(r"^key (\S+) \(([^)]*)\): SHA-256 [0-9a-f]{64}$", out, re.M))
    assert shown[current["key_id"]] == "current"
    assert shown[retired["key_id"]].startswith("retired, valid until ")
    assert f"({shown[current['key_id']]}): SHA-256 {current['fingerprint']}" in out
