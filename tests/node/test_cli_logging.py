"""The CLI's own output is stdout and nothing else: the process log of the node code a command
runs goes to stderr (warnings and errors only), so ``barnplan ... --json | jq`` works. Before,
structlog's default wrote an ``[info] outbox.delivery`` line to stdout ahead of
``consent revoke --json``'s JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.nodes import barnplan

SCRIPT = """
import sys, click, structlog
from node.cli import main as cli

@cli.main.command("emit")
def emit() -> None:
    log = structlog.get_logger("test")
    log.info("an.info", n=1)
    log.warning("a.warning", n=2)
    click.echo(json.dumps({"ok": True}))

import json
sys.argv = ["barnplan", "emit"]
cli.run()
"""


def test_a_commands_output_is_stdout_and_its_process_log_stderr() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(ran.stdout) == {"ok": True}
    lines = [json.loads(line) for line in ran.stderr.splitlines() if line.strip()]
    assert [(e["event"], e["level"], e["n"]) for e in lines] == [("a.warning", "warning", 2)]


def test_python_dash_m_node_is_the_same_entry_point() -> None:
    ran = barnplan("--version")
    assert ran.returncode == 0 and ran.stdout.startswith("barnplan ") and ran.stderr == ""
