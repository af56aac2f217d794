"""The relying party's side of OpenID Connect: discovery, the authorization request (state,
nonce, PKCE S256), the code exchange and ID token validation against the provider's JWKS.

Why each check: ``state`` ties the answer to the browser that asked (no login CSRF), ``nonce``
ties the ID token to that request (no replay of another sign-in's token), PKCE ties the code to
the verifier only this node knows (a stolen code is useless), ``iss``/``aud``/``azp`` make sure
the token was made by our provider for us, ``exp``/``nbf``/``iat`` bound it in time against the
node's clock (passed in, so tests move it). Any failure is an ``OidcError`` with a stable code;
nothing is created until every check passed.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from protocol.clock import Clock

from ..errors import NodeError

DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_MAX_AGE_S = 3600.0  # how long provider metadata is trusted before it is read again
JWKS_MIN_REFETCH_S = 10.0  # unknown key ids fetch the JWKS again at most this often
ALGORITHMS = ("RS256", "PS256", "ES256", "EdDSA")  # asymmetric only: never "none" or HS*
PENDING_MAX_AGE_S = 600  # a sign-in not finished within this is refused (stale state)
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TOKEN_MAX_AGE_S = 300  # a back-channel logout token older than this is refused


class OidcError(NodeError):
    """A sign-in that cannot go on. ``code`` says why, for the page and the process log:
    provider_unreachable, provider_invalid, state_missing, state_mismatch, sign_in_expired,
    provider_error, token_refused, id_token_invalid, logout_token_invalid; ``why`` is the
    detail (a JOSE error's name, the provider's error code), never token contents."""

    def __init__(self, code: str, why: str = "") -> None:
        super().__init__(f"{code}: {why}" if why else code, code=code)
        self.why = why


@dataclass(frozen=True)
class OidcSettings:
    """What the node needs of ``[oidc]`` in barnplan.toml to speak to the provider."""

    issuer: str
    client_id: str
    client_secret: str
    scopes: tuple[str, ...] = ("openid", "profile")
    leeway_s: int = 60


@dataclass(frozen=True)
class ProviderInfo:
    """The provider's metadata this node uses, from its discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


@dataclass(frozen=True)
class PendingSignIn:
    """What the node keeps (in the browser's signed session) between sending the browser to
    the provider and its return: never sent to the provider except as hashes or echoes."""

    state: str
    nonce: str
    code_verifier: str
    started_at: int  # seconds since the epoch, the node's clock
    next: str = ""


@dataclass(frozen=True)
class SignedIn:
    """A verified sign-in: the provider's issuer, the subject and the ID token's claims."""

    issuer: str
    subject: str
    claims: Mapping[str, Any]
    id_token: str = field(repr=False)


def code_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url(SHA-256(verifier)) without padding."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _same_issuer(a: str, b: str) -> bool:
    """Issuers compare exactly (OpenID Connect Discovery §4.3), except a trailing slash that
    configuration files often carry and providers often do not."""
    return a.rstrip("/") == b.rstrip("/")


class OidcClient:
    """One provider, one client registration. Holds the provider's metadata and key set in
    memory (re-read when stale or when a token names a key not yet seen: key rollover)."""

    def __init__(self, settings: OidcSettings, http: aiohttp.ClientSession, clock: Clock) -> None:
        self._settings = settings
        self._http = http
        self._clock = clock
        self._info: ProviderInfo | None = None
        self._info_read_at = 0.0
        self._keys: KeySet | None = None
        self._keys_refetched_at = -JWKS_MIN_REFETCH_S

    def known_endpoints(self) -> tuple[str, ...]:
        """The browser-facing endpoints (authorization, logout) from the discovery document
        already read, if any: pages' form-action must allow a form post to end there."""
        info = self._info
        if info is None:
            return ()
        return tuple(
            u for u in (info.authorization_endpoint, info.end_session_endpoint) if u is not None
        )

    async def _get_json(self, url: str, what: str) -> dict[str, Any]:
        try:
            async with self._http.get(url, headers={"Accept": "application/json"}) as response:
                if response.status != 200:
                    raise OidcError("provider_invalid", f"{what}: HTTP {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OidcError("provider_unreachable", f"{what}: {type(exc).__name__}") from None
        except ValueError:
            raise OidcError("provider_invalid", f"{what}: not JSON") from None
        if not isinstance(body, dict):
            raise OidcError("provider_invalid", f"{what}: not a JSON object")
        return body

    async def provider(self) -> ProviderInfo:
        """The provider's metadata (discovery), read again once an hour."""
        if self._info is not None and time.monotonic() - self._info_read_at < DISCOVERY_MAX_AGE_S:
            return self._info
        url = self._settings.issuer.rstrip("/") + DISCOVERY_PATH
        doc = await self._get_json(url, "discovery")
        issuer = doc.get("issuer")
        if not isinstance(issuer, str) or not _same_issuer(issuer, self._settings.issuer):
            raise OidcError("provider_invalid", "discovery names another issuer")
        try:
            info = ProviderInfo(
                issuer=issuer,
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                end_session_endpoint=(
                    str(doc["end_session_endpoint"]) if doc.get("end_session_endpoint") else None
                ),
            )
        except KeyError as exc:
            raise OidcError("provider_invalid", f"discovery lacks {exc.args[0]}") from None
        self._info, self._info_read_at = info, time.monotonic()
        return info

    async def _key_set(self, kid: str | None) -> KeySet:
        """The provider's public keys; fetched again when a token names a key id not in the
        held set (the provider rotated), at most every ``JWKS_MIN_REFETCH_S``."""
        held = self._keys
        if held is not None and (kid is None or _has_kid(held, kid)):
            return held
        if held is not None:
            # a key id not held: fetch again, unless that was done just now for the same reason
            # (a stream of tokens naming made-up key ids must not become a stream of fetches)
            if time.monotonic() - self._keys_refetched_at < JWKS_MIN_REFETCH_S:
                return held
            self._keys_refetched_at = time.monotonic()
        info = await self.provider()
        doc = await self._get_json(info.jwks_uri, "jwks")
        try:
            keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
        except (JoseError, ValueError, TypeError, KeyError):
            raise OidcError("provider_invalid", "jwks: not a key set") from None
        self._keys = keys
        return keys

    async def begin(self, redirect_uri: str, next_path: str = "") -> tuple[str, PendingSignIn]:
        """The provider URL to send the browser to, and what to keep until it returns."""
        info = await self.provider()
        pending = PendingSignIn(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),
            started_at=int(self._clock.now().timestamp()),
            next=next_path,
        )
        query = {
            "response_type": "code",
            "client_id": self._settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._settings.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": code_challenge(pending.code_verifier),
            "code_challenge_method": "S256",
        }
        return f"{info.authorization_endpoint}?{urlencode(query)}", pending

    async def complete(
        self, query: Mapping[str, str], pending: PendingSignIn | None, redirect_uri: str
    ) -> SignedIn:
        """Check the provider's answer against ``pending``, exchange the code, validate the
        ID token. Raises ``OidcError``; returns only a fully verified sign-in."""
        if pending is None:
            raise OidcError("state_missing", "no sign-in was started in this browser")
        state = query.get("state")
        if not state or not secrets.compare_digest(state, pending.state):
            raise OidcError("state_mismatch", "the answer belongs to another sign-in")
        now = int(self._clock.now().timestamp())
        if now - pending.started_at > PENDING_MAX_AGE_S:
            raise OidcError("sign_in_expired", "the sign-in took too long")
        if "error" in query:
            raise OidcError("provider_error", query.get("error", "")[:64])
        code = query.get("code")
        if not code:
            raise OidcError("provider_error", "no code")
        info = await self.provider()
        tokens = await self._exchange(info, code, pending.code_verifier, redirect_uri)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError("token_refused", "no id_token in the token response")
        claims = await self.validate_id_token(id_token, pending.nonce)
        return SignedIn(
            issuer=info.issuer, subject=str(claims["sub"]), claims=claims, id_token=id_token
        )

    async def _exchange(
        self, info: ProviderInfo, code: str, verifier: str, redirect_uri: str
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        # client_secret_basic: id and secret form-encoded first (RFC 6749 §2.3.1)
        auth = aiohttp.encode_basic_auth(
            quote(self._settings.client_id, safe=""), quote(self._settings.client_secret, safe="")
        )
        headers = {"Authorization": auth, "Accept": "application/json"}
        try:
            async with self._http.post(info.token_endpoint, data=form, headers=headers) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise OidcError("provider_unreachable", f"token: {type(exc).__name__}") from None
        except ValueError:
            raise OidcError("provider_invalid", "token: not JSON") from None
        if status != 200 or not isinstance(body, dict):
            error = body.get("error", "") if isinstance(body, dict) else ""
            raise OidcError("token_refused", str(error)[:64] or f"HTTP {status}")
        return body

    async def validate_id_token(self, id_token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims if it is signed by the provider's key (asymmetric algorithms
        only), issued by the configured issuer for this client, in its time window by the
        node's clock, and carries ``nonce``; ``OidcError('id_token_invalid')`` otherwise."""
        info = await self.provider()
        try:
            header = extract_compact(id_token.encode("ascii")).headers()
        except (JoseError, ValueError, UnicodeEncodeError):
            raise OidcError("id_token_invalid", "not a signed JWT") from None
        kid = header.get("kid")
        keys = await self._key_set(kid if isinstance(kid, str) else None)
        try:
            token = jwt.decode(id_token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise OidcError("id_token_invalid", type(exc).__name__) from None
        now = int(self._clock.now().timestamp())
        registry = jwt.JWTClaimsRegistry(
            now=now,
            leeway=self._settings.leeway_s,
            iss={"essential": True, "value": info.issuer},
            aud={"essential": True, "value": self._settings.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise OidcError("id_token_invalid", type(exc).__name__) from None
        claims = dict(token.claims)
        iat = claims.get("iat")
        if isinstance(iat, int) and iat > now + self._settings.leeway_s:
            raise OidcError("id_token_invalid", "issued in the future")
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self._settings.client_id:
            raise OidcError("id_token_invalid", "azp is not this client")
        return claims

    async def validate_logout_token(self, logout_token: str) -> tuple[str | None, str | None]:
        """(sub, sid) of a back-channel logout token (OpenID Connect Back-Channel Logout 1.0
        §2.6): signed by the provider, for this client, recent, with the logout event, a sid
        or sub, and no nonce. ``OidcError('logout_token_invalid')`` otherwise."""
        info = await self.provider()
        try:
            header = extract_compact(logout_token.encode("ascii")).headers()
            kid = header.get("kid")
            keys = await self._key_set(kid if isinstance(kid, str) else None)
            token = jwt.decode(logout_token, keys, algorithms=list(ALGORITHMS))
            now = int(self._clock.now().timestamp())
            jwt.JWTClaimsRegistry(
                now=now,
                leeway=self._settings.leeway_s,
                iss={"essential": True, "value": info.issuer},
                aud={"essential": True, "value": self._settings.client_id},
                iat={"essential": True},
                jti={"essential": True},
            ).validate(token.claims)
        except (JoseError, ValueError, UnicodeEncodeError) as exc:
            raise OidcError("logout_token_invalid", type(exc).__name__) from None
        claims = token.claims
        events = claims.get("events")
        if not isinstance(events, dict) or BACKCHANNEL_LOGOUT_EVENT not in events:
            raise OidcError("logout_token_invalid", "no logout event")
        if "nonce" in claims:
            raise OidcError("logout_token_invalid", "a logout token has no nonce")
        iat = claims.get("iat")
        if isinstance(iat, int) and abs(now - iat) > LOGOUT_TOKEN_MAX_AGE_S:
            raise OidcError("logout_token_invalid", "not recent")
        sub, sid = claims.get("sub"), claims.get("sid")
        sub = sub if isinstance(sub, str) and sub else None
        sid = sid if isinstance(sid, str) and sid else None
        if sub is None and sid is None:
            raise OidcError("logout_token_invalid", "neither sub nor sid")
        return sub, sid

    async def logout_url(self, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
        """The provider's RP-initiated logout URL, or None if it has none (or is down)."""
        try:
            info = await self.provider()
        except OidcError:
            return None
        if info.end_session_endpoint is None:
            return None
        query = {
            "client_id": self._settings.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
        }
        if id_token:
            query["id_token_hint"] = id_token
        return f"{info.end_session_endpoint}?{urlencode(query)}"


def _has_kid(keys: KeySet, kid: str) -> bool:
    try:
        keys.get_by_kid(kid)
    except (JoseError, ValueError, KeyError):
        return False
    return True
