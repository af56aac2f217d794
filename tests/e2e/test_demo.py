"""The README's main command: ``barnplan demo --no-wait`` from a fresh clone prints every
step's outcome and exits 0."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # node processes (barnplan serve)

REPO = Path(__file__).resolve().parents[2]
STEPS = [f"[{n}]" for n in range(1, 14)]


@pytest.mark.skipif(shutil.which("git") is None, reason="git is needed to clone the repository")
def test_demo_walks_through_every_step_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=120)
    env = {**os.environ, "PYTHONPATH": str(clone)}
    result = subprocess.run(
        [sys.executable, "-m", "node", "demo", "--no-wait", "--dir", str(tmp_path / "demo")],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    for step in STEPS:
        assert step in out, f"step {step} missing"
    assert out.count("linked to its own record; lead told: ok") == 3  # a professional each
    assert "bup.regionhalland.se is marked unreachable" in out
    # consent as people: incomplete (withheld) until one answer replaces it
    assert "incomplete — waiting for Johan Demosson" in out and "consenter_missing" in out
    assert "withholds consent_replaced under it" in out
    assert out.count("withheld: consent_revoked") == 3
    assert out.count("checkpoint(s)") == 4 and "FAILED" not in out
    assert "run the demo with --oidc to see it: Maria Demosson signs in at" in out
    assert "Demo complete" in out and "password" in out
