"""The pages' link to the agency's OpenID provider: one ``OidcClient`` per app, with its own
HTTP client (the system's CAs: the provider is not a federation peer, so the node's mutual-TLS
settings for peers do not apply), made on first use and closed with the app."""

from __future__ import annotations

from dataclasses import dataclass
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
RESIDENT_CALLBACK_PATH = "/familj/login/callback"
PROVIDER_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class ProviderSettings:
    """One client registration at one provider, and where this node's pages take part."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...]
    display_name: str
    callback_path: str
    after_logout_path: str


def staff_provider(config: NodeConfig) -> ProviderSettings:
    """The agency's provider for its staff (``[oidc]``)."""
    return ProviderSettings(
        issuer=config.oidc.issuer,
        client_id=config.oidc.client_id,
        client_secret=config.oidc_client_secret(),  # read now: a missing file stops serve
        scopes=tuple(config.oidc.scopes),
        display_name=config.oidc.display_name,
        callback_path=CALLBACK_PATH,
        after_logout_path="/login?out=1",
    )


def resident_provider(config: NodeConfig) -> ProviderSettings:
    """The residents' e-identification provider (``[residents]``), for the family's pages."""
    return ProviderSettings(
        issuer=config.residents.issuer,
        client_id=config.residents.client_id,
        client_secret=config.residents_client_secret(),
        scopes=tuple(config.residents.scopes),
        display_name=config.residents.display_name,
        callback_path=RESIDENT_CALLBACK_PATH,
        after_logout_path="/familj?ut=1",
    )


class ProviderLink:
    """What the sign-in pages need of one provider."""

    def __init__(self, settings: ProviderSettings, config: NodeConfig, clock: Clock) -> None:
        self._settings = settings
        self._clock = clock
        self._http: aiohttp.ClientSession | None = None
        self._client: OidcClient | None = None
        self.rules: ClaimRules = claim_rules(config)
        self.subject_key = subject_key(config.directory)
        self.issuer = settings.issuer
        self.name = settings.display_name or urlsplit(settings.issuer).hostname or "OIDC"
        self._issuer_origin = _origin(settings.issuer)
        base = config.node.base_url.rstrip("/")
        self.redirect_uri = base + settings.callback_path
        self.after_logout_uri = base + settings.after_logout_path

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
                client_id=self._settings.client_id,
                client_secret=self._settings.client_secret,
                scopes=self._settings.scopes,
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
