"""``barnplan serve`` starts on only what it needs; ``barnplan --help`` still shows everything.

A returning node answers nothing until its process has imported and opened its store, so the
serve path must not import the other commands' modules (the demo, FHIR export, rich tables ...)
nor alembic for a store that is already migrated. These tests guard that without timing anything.
"""

from __future__ import annotations

import json
import subprocess
import sys

import click
from click.testing import CliRunner

from node.cli.main import LAZY_COMMANDS, main
from node.services.passwords import _DUMMY_HASH, _HASHER

# modules the serve path has no use for; each cost start-up time when it was imported eagerly
NOT_FOR_SERVE = (
    "alembic",
    "node.cli.demo",
    "node.cli.federation",
    "node.cli.keys",
    "node.cli.log",
    "node.cli.peers",
    "node.cli.plan_show",
    "node.cli.records",
    "node.cli.shared_view",
    "node.services.fhir",
)


def test_help_lists_every_command_with_its_short_help() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    ctx = click.Context(main)
    names = main.list_commands(ctx)
    assert {"init", "serve", "migrate", *LAZY_COMMANDS} == set(names)
    lines = result.output.split("Commands:", 1)[1].splitlines()
    for name in names:
        command = main.get_command(ctx, name)
        assert command is not None and command.name == name
        words = command.get_short_help_str(limit=200).split()[:3]
        assert any(line.split()[:4] == [name, *words] for line in lines), name


def test_every_lazy_command_runs_its_own_help() -> None:
    for name in LAZY_COMMANDS:
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert f"Usage: main {name}" in result.output


def test_an_unknown_command_is_still_refused() -> None:
    result = CliRunner().invoke(main, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command" in result.output


def test_the_serve_path_imports_no_other_command_and_no_alembic() -> None:
    probe = (
        "import json, sys, click\n"
        "from node.cli.main import main\n"
        "assert main.get_command(click.Context(main), 'serve') is not None\n"
        "import node.config, node.server\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    loaded = set(json.loads(out))
    assert "node.server" in loaded
    assert not [m for m in loaded if m.split(".")[0] in NOT_FOR_SERVE or m in NOT_FOR_SERVE]


def test_the_written_dummy_hash_costs_what_a_real_one_costs() -> None:
    """The unknown-user hash is a literal (not hashed at import): it must carry the hasher's
    parameters, or a wrong user id would answer faster than a wrong password."""
    assert not _HASHER.check_needs_rehash(_DUMMY_HASH)
    assert _HASHER.verify(_DUMMY_HASH, "barnplan-no-such-user")
