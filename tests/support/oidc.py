"""A real OpenID provider for tests (``node.cli.dev_provider``: panva/oidc-provider under
Node.js, from deploy/dev-provider), started on loopback with a fresh signing key, and a walk
through its own login pages.

``.ci/run`` installs it (npm ci); without Node.js or the installed package the tests that need
it are skipped with the reason, never run against a stand-in.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest

from node.cli.dev_provider import (
    FORM_ACTION,
    Client,
    DevProvider,
    new_signing_key,
    point_node_at,
    provider_unavailable,
)
from node.cli.dev_provider import sign_in_at_provider as sign_in_at_provider

Provider = DevProvider


def started_provider(directory: Path) -> Provider:
    """A running provider with one client registered for ``http://127.0.0.1/cb`` (tests add
    clients, accounts or keys and ``restart``); skips the test if it cannot run here."""
    why = provider_unavailable()
    if why:
        pytest.skip(why)
    provider = Provider(
        directory=directory,
        clients=[Client("barnplan-node", "test-client-secret", ["http://127.0.0.1/cb"])],
        accounts={},
        keys=[new_signing_key("key-1")],
    )
    provider.start()
    return provider


def configure_provider(directory: Path, provider: Provider, client: Client, **oidc: Any) -> None:
    """Point the node in ``directory`` at ``provider`` as ``client`` (``point_node_at``)."""
    point_node_at(directory, provider.issuer, client, "Testkommunens inloggning", **oidc)


HIDDEN_INPUT = re.compile(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"')


async def sign_out_at_provider(http: aiohttp.ClientSession, logout_url: str) -> str:
    """Confirm the provider's logout page as a person would ("Yes, sign me out"); the URL the
    provider then sends the browser to."""
    async with http.get(logout_url, allow_redirects=False) as response:
        page = await response.text()
    action = FORM_ACTION.search(page)
    if action is None:
        raise AssertionError(f"no logout form at {logout_url}: {page[:300]}")
    form = {name: unescape(value) for name, value in HIDDEN_INPUT.findall(page)}
    target = urljoin(logout_url, unescape(action.group(1)))
    async with http.post(target, data={**form, "logout": "yes"}, allow_redirects=False) as done:
        return urljoin(target, done.headers["Location"])
