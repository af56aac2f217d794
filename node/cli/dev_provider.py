"""A development OpenID provider for the demo and the tests: panva/oidc-provider (OpenID
Certified) under Node.js, from ``deploy/dev-provider`` (``npm ci`` there first), on loopback.

Its login page takes any login and password (the login is the subject), so it is for synthetic
demo and test users only, never for a node with real people on it.
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
import tomli_w
from joserfc.jwk import RSAKey

PROVIDER_DIR = Path(__file__).resolve().parents[2] / "deploy" / "dev-provider"
FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


def provider_unavailable() -> str | None:
    """None if the provider can run here, else why not (what to install)."""
    if shutil.which("node") is None:
        return "Node.js is not installed (the development OpenID provider runs under it)"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return (
            f"the development OpenID provider is not installed: run npm ci --prefix {PROVIDER_DIR}"
        )
    return None


def new_signing_key(kid: str) -> dict[str, Any]:
    """A fresh RSA private JWK for the provider to sign ID tokens with."""
    key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})
    return key.as_dict(private=True)


@dataclass
class Client:
    """A client registration at the provider (one per node)."""

    client_id: str
    client_secret: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str] = field(default_factory=list)
    backchannel_logout_uri: str = ""

    def registration(self) -> dict[str, Any]:
        registration: dict[str, Any] = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
        }
        if self.backchannel_logout_uri:
            registration["backchannel_logout_uri"] = self.backchannel_logout_uri
            registration["backchannel_logout_session_required"] = True
        return registration


@dataclass
class DevProvider:
    """A running provider process; ``restart`` takes changed clients, accounts or keys (a
    rotated key: prepend it) on the same port and issuer."""

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
        path = self.directory / "dev-provider.json"
        path.write_text(json.dumps(config), encoding="utf-8")
        path.chmod(0o600)
        with (self.directory / "dev-provider.log").open("ab") as log:
            self.process = subprocess.Popen(
                ["node", str(PROVIDER_DIR / "provider.js"), str(path)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # printed once listening
        if not line:
            raise RuntimeError("the development OpenID provider did not start")
        started = json.loads(line)
        self.port, self.issuer = int(started["port"]), str(started["issuer"])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def point_node_at(
    directory: Path,
    issuer: str,
    client: Client,
    display_name: str,
    section: str = "oidc",
    **settings: Any,
) -> None:
    """Set ``[oidc]`` (or ``[residents]``: ``section``) in the node's barnplan.toml for
    ``client`` at ``issuer`` (the secret in ``<section>-client.secret``, mode 0600, as an
    operator sets it up); ``settings`` add or override that section's settings, and an
    ``auth`` dict sets ``[auth]``."""
    path = directory / "barnplan.toml"
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    secret = directory / f"{section}-client.secret"
    secret.write_text(client.client_secret + "\n", encoding="utf-8")
    secret.chmod(0o600)
    auth = settings.pop("auth", None)
    config[section] = {
        **config.get(section, {}),
        "issuer": issuer,
        "client_id": client.client_id,
        "client_secret_file": secret.name,
        "display_name": display_name,
        **settings,
    }
    if auth is not None:
        config["auth"] = {**config.get("auth", {}), **auth}
    path.write_text(tomli_w.dumps(config), encoding="utf-8")


async def sign_in_at_provider(
    http: aiohttp.ClientSession, authorization_url: str, login: str, redirect_prefix: str
) -> dict[str, str]:
    """Walk the provider's own login and consent pages as a browser would (GET the
    authorization URL, submit the login form, confirm consent), and return the query the
    provider sends back to ``redirect_prefix`` (code and state, or an error). The demo signs
    its guardian in this way; the tests too."""
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
            raise RuntimeError(f"provider page without a form at {url}: {page[:300]}")
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
    raise RuntimeError("the provider never redirected back")
