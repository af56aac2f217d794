"""What this node runs: the release version and the store schema revision it expects.

Why: an operator upgrading a node must be able to tell what runs before and after, and a
monitoring system must be able to alert on a node that runs another release than its peers.
``barnplan --version``, ``/healthz`` and ``/metrics`` all read it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from .store.migration_head import expected_revision


@dataclass(frozen=True)
class Build:
    version: str  # the release (pyproject.toml's version; docs/CHANGELOG.md lists them)
    schema: str  # the migration head the code expects its store at

    def __str__(self) -> str:
        return f"barnplan {self.version} (store schema {self.schema})"


def current_build() -> Build:
    try:
        release = version("barnplan")
    except PackageNotFoundError:  # run from a source tree that was never installed
        release = "unknown"
    return Build(version=release, schema=expected_revision())
