"""A real OpenID provider for tests: panva/oidc-provider under Node.js (tests/oidc_provider),
started on loopback with a fresh signing key, and a walk through its own login pages.

``.ci/run`` installs it (npm ci); without Node.js or the installed package the tests that need
it are skipped with the reason, never run against a stand-in.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import aiohttp
import pytest
import tomli_w
from joserfc.jwk import RSAKey

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc_provider"
FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def provider_available() -> str | None:
    """None if the provider can run here, else why not (for ``pytest.skip``)."""
    if shutil.which("node") is None:
        return "Node.js is not installed (the OpenID provider runs under it)"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return "tests/oidc_provider is not installed: run npm ci --prefix tests/oidc_provider"
    return None


def new_signing_key(kid: str) -> dict[str, Any]:
    """A fresh RSA private JWK for the provider to sign ID tokens with."""
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
    return key.as_dict(private=True)


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str] = field(default_factory=list)

    def registration(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
        }


@dataclass
class Provider:
    """A running provider process; ``restart`` takes a new configuration (a rotated key)."""

    directory: Path
    clients: list[Client]
    accounts: dict[str, dict[str, Any]]
    keys: list[dict[str, Any]]
    port: int = 0
    id_token_ttl: int = 3600
    issuer: str = ""
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        config = {
            "port": self.port,
            "jwks": {"keys": self.keys},
            "clients": [c.registration() for c in self.clients],
            "accounts": self.accounts,
            "id_token_ttl": self.id_token_ttl,
        }
        path = self.directory / "provider.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        self.process = subprocess.Popen(
            ["node", str(PROVIDER_DIR / "provider.js"), str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # printed once listening
        if not line:
            raise RuntimeError("the OpenID provider did not start")
        started = json.loads(line)
        self.port, self.issuer = int(started["port"]), str(started["issuer"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        """Same port and issuer, current ``keys`` and ``clients`` (sessions are lost)."""
        self.stop()
        self.start()


def started_provider(directory: Path) -> Provider:
    """A running provider with one client registered for ``http://127.0.0.1/cb`` (tests add
    clients, accounts or keys and ``restart``); skips the test if it cannot run here."""
    why = provider_available()
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
    """Point the node in ``directory`` at ``provider`` as ``client`` (its secret in a file,
    as an operator sets it up); ``oidc`` adds or overrides ``[oidc]`` settings, and an
    ``auth`` dict sets ``[auth]``."""
    path = directory / "barnplan.toml"
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    secret = directory / "oidc-client.secret"
    secret.write_text(client.client_secret + "\n", encoding="utf-8")
    secret.chmod(0o600)
    auth = oidc.pop("auth", None)
    config["oidc"] = {
        **config.get("oidc", {}),
        "issuer": provider.issuer,
        "client_id": client.client_id,
        "client_secret_file": secret.name,
        "display_name": "Testkommunens inloggning",
        **oidc,
    }
    if auth is not None:
        config["auth"] = {**config.get("auth", {}), **auth}
    path.write_text(tomli_w.dumps(config), encoding="utf-8")
