"""A real OpenID provider per test (tests/support/oidc.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.oidc import Provider, started_provider


@pytest.fixture
def oidc_provider(tmp_path: Path) -> Iterator[Provider]:
    provider = started_provider(tmp_path)
    try:
        yield provider
    finally:
        provider.stop()
