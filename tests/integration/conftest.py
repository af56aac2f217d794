"""Fixtures the integration tests share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from protocol.clock import ManualClock
from tests.conftest import StoreFactory
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode, federation


@pytest.fixture
async def trio(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[list[RunningNode]]:
    """A school, social services and BUP in this process, each trusting the others, on each
    store backend."""
    async with federation(tmp_path, [SCHOOL, SOCIAL, BUP], store_factory, clock) as nodes:
        yield nodes
