"""Migrations are append-only once they are on main: each script is as it was first committed
to main (its first-parent history).

Why: 0008 was edited by a later commit than the one that added it, and a node migrated in
between said "revision 0008" while lacking a column the code used. Alembic runs a revision once
per store, so an edit to a landed script never reaches the stores that already ran it; a change
must be a new migration. 0008 is the one historical exception, repaired by 0009.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from node.store.migration_head import VERSIONS

ROOT = Path(__file__).resolve().parents[2]
# scripts edited after they landed, before this guard existed, and the migration that repairs it
EDITED_BEFORE_THE_GUARD = {"0008_user_disabled.py": "0009_repair_sessions_since.py"}


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True
    ).stdout


def history_available() -> bool:
    try:
        return git("rev-parse", "--is-shallow-repository").strip() == "false"
    except (OSError, subprocess.CalledProcessError):
        return False


def committed_scripts() -> list[Path]:
    tracked = git("ls-files", "--", str(VERSIONS.relative_to(ROOT))).split()
    return [ROOT / name for name in tracked if name.endswith(".py")]


@pytest.mark.skipif(not history_available(), reason="needs the repository's full git history")
@pytest.mark.parametrize("script", committed_scripts() if history_available() else [], ids=str)
def test_a_committed_migration_is_as_it_was_first_committed(script: Path) -> None:
    relative = str(script.relative_to(ROOT))
    # main's own history (first parents): a script a branch added and the merge then changed
    # (its down_revision re-chained after another branch's migration) lands as merged
    added = git(
        "log", "--first-parent", "--diff-filter=A", "--format=%H",
        "--", relative,
    ).split()  # fmt: skip
    if not added:
        return  # new in the working tree: its first commit will be its first form
    first = added[-1]
    first_form = git("show", f"{first}:{relative}")
    if script.name in EDITED_BEFORE_THE_GUARD:
        assert (VERSIONS / EDITED_BEFORE_THE_GUARD[script.name]).exists()
        return
    assert script.read_text(encoding="utf-8") == first_form, (
        f"{relative} differs from its first committed form ({first[:10]}): stores that ran it "
        "then will never run the edit; restore it and write a new migration instead"
    )


def test_the_repair_of_the_edited_0008_is_a_migration_of_its_own() -> None:
    for edited, repair in EDITED_BEFORE_THE_GUARD.items():
        assert (VERSIONS / edited).exists() and (VERSIONS / repair).exists()
