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
from urllib.parse import parse_qsl, urljoin, urlsplit

import aiohttp
import pytest

from node.cli.dev_provider import (
    Client,
    DevProvider,
    new_signing_key,
    point_node_at,
    provider_unavailable,
)

FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
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


async def sign_in_at_provider(
    http: aiohttp.ClientSession, authorization_url: str, login: str, redirect_prefix: str
) -> dict[str, str]:
    """Walk the provider's own login and consent pages as a browser would (GET the
    authorization URL, submit the login form, confirm consent), and return the query the
    provider sends back to ``redirect_prefix`` (code and state, or an error)."""
    url = authorization_url
    for _ in range(12):
        async with http.get(url, allow_redirects=False) as response:
            if response.status in (302, 303):
                url = urljoin(url, response.headers["Location"])
                if url.startswith(redirect_prefix):
                    return dict(parse_qsl(urlsplit(url).query))
                continue
            page = await response.text()
        action = FORM_ACTION.search(page)
        if action is None:
            raise AssertionError(f"provider page without a form at {url}: {page[:300]}")
        target = urljoin(url, unescape(action.group(1)))
        form = (
            {"prompt": "login", "login": login, "password": "any"}
            if 'name="login"' in page
            else {"prompt": "consent"}
        )
        async with http.post(target, data=form, allow_redirects=False) as response:
            url = urljoin(target, response.headers["Location"])
            if url.startswith(redirect_prefix):
                return dict(parse_qsl(urlsplit(url).query))
    raise AssertionError("the provider never redirected back")


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
