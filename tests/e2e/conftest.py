"""Fixtures of the tests that run real node processes (``barnplan serve``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.federation import BUP, SCHOOL, SOCIAL
from tests.support.procfed import ProcNode, make_nodes, run, trust_all


@pytest.fixture
def trio(tmp_path: Path) -> Iterator[list[ProcNode]]:
    """A school, social services and BUP as node processes, each trusting the others;
    stopped at the end."""
    nodes = make_nodes(tmp_path, [SCHOOL, SOCIAL, BUP])
    for n in nodes:
        n.start()
    try:
        run(trust_all(nodes))
        yield nodes
    finally:
        for n in nodes:
            n.stop()
