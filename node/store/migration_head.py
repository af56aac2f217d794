"""Is a store already at the newest migration? Answered without importing alembic.

Why: importing alembic (its script machinery, every dialect's DDL module, mako and pygments)
cost about a tenth of ``barnplan serve``'s start-up, and a restarting node nearly always finds
its store already migrated. A returning node spends its start-up before it can refuse a consent
that was revoked while it was down, so ``serve`` asks this first and runs alembic only when the
answer is no. Any doubt (no version table, several heads, a script this reader cannot parse)
is a no, so alembic still decides everything it decided before.
"""

from __future__ import annotations

import ast
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

VERSIONS = Path(__file__).parent / "migrations" / "versions"
# alembic's default version table, which migrations/env.py keeps
VERSION_TABLE = "alembic_version"


def _assigned(tree: ast.Module, name: str) -> tuple[bool, object]:
    """(found, value) of a module-level ``name = <literal>`` (annotated or not)."""
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            try:
                return True, ast.literal_eval(value)
            except ValueError:
                return False, None
    return False, None


def script_heads(versions: Path = VERSIONS) -> frozenset[str]:
    """The head revisions of the migration scripts, read from each script's ``revision`` and
    ``down_revision`` literals (parsed, not imported); empty if any script is unreadable."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in sorted(versions.glob("*.py")):
        if script.name.startswith((".#", "__init__")):  # the files alembic skips too
            continue
        try:
            tree = ast.parse(script.read_bytes(), filename=str(script))
        except (OSError, SyntaxError, ValueError):
            return frozenset()
        has_revision, revision = _assigned(tree, "revision")
        has_down, down = _assigned(tree, "down_revision")
        if not (has_revision and has_down and isinstance(revision, str)):
            return frozenset()
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):
            parents.update(d for d in down if isinstance(d, str))
        elif down is not None:
            return frozenset()
    return frozenset(revisions - parents)


def expected_revision(versions: Path = VERSIONS) -> str:
    """The migration head this code expects its store at, as ``barnplan --version``,
    ``/healthz`` and ``/metrics`` show it (``?`` if the scripts cannot be read)."""
    heads = script_heads(versions)
    return ", ".join(sorted(heads)) if heads else "?"


async def at_head(engine: AsyncEngine, versions: Path = VERSIONS) -> bool:
    """True if the store's version table names exactly the one head of the scripts, so
    ``migrate`` to head would change nothing; False when in any doubt."""
    heads = script_heads(versions)
    if len(heads) != 1:
        return False
    try:
        async with engine.connect() as conn:
            result = await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))
            stamped = set(result.scalars().all())
    except DBAPIError:  # no version table yet (a new store), or the store cannot be read
        return False
    return stamped == set(heads)
