"""The example Prometheus alert rules (deploy/prometheus) are valid and fire when they should:
``promtool check rules`` and ``promtool test rules`` over series that mimic each failure."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (.ci/install-promtool installs it)"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run(
        [PROMTOOL, *args], cwd=RULES, capture_output=True, text=True, check=False, timeout=60
    )


@needs_promtool
def test_the_rules_file_is_valid() -> None:
    checked = promtool("check", "rules", "barnplan-alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


@needs_promtool
def test_each_alert_fires_on_its_failure_and_not_before() -> None:
    tested = promtool("test", "rules", "barnplan-alerts.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_promtool_test() -> None:
    import yaml

    rules = yaml.safe_load((RULES / "barnplan-alerts.yml").read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"]}
    tests = yaml.safe_load((RULES / "barnplan-alerts.test.yml").read_text())
    tested = {c["alertname"] for t in tests["tests"] for c in t.get("alert_rule_test", [])}
    assert alerts == tested
