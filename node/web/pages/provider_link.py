"""The pages' link to the agency's OpenID provider: one ``OidcClient`` per app, with its own
HTTP client (the system's CAs: the provider is not a federation peer, so the node's mutual-TLS
settings for peers do not apply), made on first use and closed with the app."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from protocol.clock import Clock

from ...config import NodeConfig
from ...oidc.client import OidcClient, OidcSettings
from ...oidc.identity import ClaimRules
from ...services.provider_sign_in import claim_rules, subject_key

CALLBACK_PATH = "/login/oidc/callback"
BACKCHANNEL_LOGOUT_PATH = "/login/oidc/backchannel-logout"
PROVIDER_TIMEOUT_S = 10.0


class ProviderLink:
    """What the sign-in pages need of the provider, built from ``[oidc]``."""

    def __init__(self, config: NodeConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._http: aiohttp.ClientSession | None = None
        self._client: OidcClient | None = None
        self.rules: ClaimRules = claim_rules(config)
        self.subject_key = subject_key(config.directory)
        self.issuer = config.oidc.issuer
        issuer = urlsplit(config.oidc.issuer)
        self.name = config.oidc.display_name or issuer.hostname or "OIDC"
        self._issuer_origin = _origin(config.oidc.issuer)
        base = config.node.base_url.rstrip("/")
        self.redirect_uri = base + CALLBACK_PATH
        self.after_logout_uri = base + "/login?out=1"
        self._secret = config.oidc_client_secret()  # read now: a missing file stops serve

    def form_origins(self) -> tuple[str, ...]:
        """Where a form posted to this node may send the browser on: the provider's sign-in
        and logout endpoints. The issuer's origin always; the endpoints' own origins once the
        discovery document is read (a provider may serve its logout from another host)."""
        known = self._client.known_endpoints() if self._client is not None else ()
        return tuple(dict.fromkeys([self._issuer_origin, *(_origin(u) for u in known)]))

    def client(self) -> OidcClient:
        if self._client is None or self._http is None or self._http.closed:
            timeout = aiohttp.ClientTimeout(total=PROVIDER_TIMEOUT_S)
            self._http = aiohttp.ClientSession(timeout=timeout)
            settings = OidcSettings(
                issuer=self.issuer,
                client_id=self._config.oidc.client_id,
                client_secret=self._secret,
                scopes=tuple(self._config.oidc.scopes),
            )
            self._client = OidcClient(settings, self._http, self._clock)
        return self._client

    async def close(self, _app: web.Application | None = None) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
