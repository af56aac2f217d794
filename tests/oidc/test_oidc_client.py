"""The relying party's checks against a real OpenID provider (deploy/dev-provider) on loopback:
every way a sign-in can be wrong is refused with its code, and a good one yields the claims."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey

from node.oidc.client import OidcClient, OidcError, OidcSettings, PendingSignIn
from protocol.clock import ManualClock
from tests.support.oidc import (
    Client,
    Provider,
    new_signing_key,
    sign_in_at_provider,
)

CALLBACK = "http://127.0.0.1/cb"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def settings_for(provider: Provider, client: Client | None = None) -> OidcSettings:
    client = client or provider.clients[0]
    return OidcSettings(
        issuer=provider.issuer, client_id=client.client_id, client_secret=client.client_secret
    )


async def signed_in_query(
    client: OidcClient, http: aiohttp.ClientSession, login: str
) -> tuple[dict[str, str], PendingSignIn]:
    url, pending = await client.begin(CALLBACK)
    answer = await sign_in_at_provider(http, url, login, CALLBACK)
    return answer, pending


def real_clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


async def test_sign_in_yields_the_providers_claims(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    oidc_provider.accounts["anna"] = {"name": "Anna Testsson", "hsa_id": "SE2321000016-T1"}
    oidc_provider.restart()
    client = OidcClient(settings_for(oidc_provider), http, real_clock())
    answer, pending = await signed_in_query(client, http, "anna")
    signed = await client.complete(answer, pending, CALLBACK)
    assert signed.subject == "anna"
    assert signed.issuer == oidc_provider.issuer
    assert signed.claims["name"] == "Anna Testsson"
    assert signed.claims["hsa_id"] == "SE2321000016-T1"
    assert signed.claims["nonce"] == pending.nonce


async def test_state_missing_tampered_or_stale_is_refused(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    clock = real_clock()
    client = OidcClient(settings_for(oidc_provider), http, clock)
    answer, pending = await signed_in_query(client, http, "anna")
    with pytest.raises(OidcError) as missing:
        await client.complete(answer, None, CALLBACK)
    assert missing.value.code == "state_missing"
    last = answer["state"][-1]
    flipped = answer["state"][:-1] + ("A" if last != "A" else "B")
    for state in ("", flipped, "x"):
        with pytest.raises(OidcError) as tampered:
            await client.complete({**answer, "state": state}, pending, CALLBACK)
        assert tampered.value.code == "state_mismatch"
    without = {k: v for k, v in answer.items() if k != "state"}
    with pytest.raises(OidcError) as absent:
        await client.complete(without, pending, CALLBACK)
    assert absent.value.code == "state_mismatch"
    clock.advance(11 * 60)
    with pytest.raises(OidcError) as stale:
        await client.complete(answer, pending, CALLBACK)
    assert stale.value.code == "sign_in_expired"


async def test_nonce_mismatch_is_refused(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    client = OidcClient(settings_for(oidc_provider), http, real_clock())
    answer, pending = await signed_in_query(client, http, "anna")
    other = PendingSignIn(pending.state, "another-nonce", pending.code_verifier, pending.started_at)
    with pytest.raises(OidcError) as refused:
        await client.complete(answer, other, CALLBACK)
    assert refused.value.code == "id_token_invalid"


async def test_a_code_is_used_once_and_only_with_its_verifier(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    client = OidcClient(settings_for(oidc_provider), http, real_clock())
    answer, pending = await signed_in_query(client, http, "anna")
    wrong_verifier = PendingSignIn(pending.state, pending.nonce, "x" * 64, pending.started_at)
    with pytest.raises(OidcError) as pkce:
        await client.complete(answer, wrong_verifier, CALLBACK)
    assert pkce.value.code == "token_refused"
    answer, pending = await signed_in_query(client, http, "anna")
    await client.complete(answer, pending, CALLBACK)
    with pytest.raises(OidcError) as replayed:
        await client.complete(answer, pending, CALLBACK)
    assert replayed.value.code == "token_refused"
    assert replayed.value.why == "invalid_grant"


async def test_token_for_another_client_is_refused(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    other = Client("another-service", "another-secret", [CALLBACK])
    oidc_provider.clients.append(other)
    oidc_provider.restart()
    theirs = OidcClient(settings_for(oidc_provider, other), http, real_clock())
    answer, pending = await signed_in_query(theirs, http, "anna")
    their_sign_in = await theirs.complete(answer, pending, CALLBACK)
    ours = OidcClient(settings_for(oidc_provider), http, real_clock())
    with pytest.raises(OidcError) as refused:
        await ours.validate_id_token(their_sign_in.id_token, pending.nonce)
    assert refused.value.code == "id_token_invalid"
    assert refused.value.why == "InvalidClaimError"  # aud


async def test_wrong_issuer_is_refused(
    oidc_provider: Provider, http: aiohttp.ClientSession, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # the same server under another name: its discovery document names another issuer
    alias = OidcSettings(
        issuer=oidc_provider.issuer.replace("127.0.0.1", "localhost"),
        client_id="barnplan-node",
        client_secret="test-client-secret",
    )
    with pytest.raises(OidcError) as discovery:
        await OidcClient(alias, http, real_clock()).begin(CALLBACK)
    assert discovery.value.code == "provider_invalid"
    # a token from another provider (same client id and secret, its own keys and issuer)
    second = Provider(
        directory=tmp_path_factory.mktemp("second"),
        clients=oidc_provider.clients,
        accounts={},
        keys=[new_signing_key("key-1")],  # even the same key id: its key is not ours
    )
    second.start()
    try:
        elsewhere = OidcClient(settings_for(second), http, real_clock())
        answer, pending = await signed_in_query(elsewhere, http, "anna")
        foreign = await elsewhere.complete(answer, pending, CALLBACK)
    finally:
        second.stop()
    ours = OidcClient(settings_for(oidc_provider), http, real_clock())
    with pytest.raises(OidcError) as refused:
        await ours.validate_id_token(foreign.id_token, pending.nonce)
    assert refused.value.code == "id_token_invalid"


async def test_expired_and_not_yet_valid_tokens_are_refused(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    clock = real_clock()
    client = OidcClient(settings_for(oidc_provider), http, clock)
    answer, pending = await signed_in_query(client, http, "anna")
    signed = await client.complete(answer, pending, CALLBACK)
    assert await client.validate_id_token(signed.id_token, pending.nonce)
    late = OidcClient(
        settings_for(oidc_provider), http, ManualClock(clock.now() + timedelta(hours=2))
    )
    with pytest.raises(OidcError) as expired:
        await late.validate_id_token(signed.id_token, pending.nonce)
    assert expired.value.why == "ExpiredTokenError"
    early = OidcClient(
        settings_for(oidc_provider), http, ManualClock(clock.now() - timedelta(hours=2))
    )
    with pytest.raises(OidcError) as early_refusal:
        await early.validate_id_token(signed.id_token, pending.nonce)
    assert early_refusal.value.code == "id_token_invalid"


async def test_bad_signature_and_symmetric_algorithms_are_refused(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    client = OidcClient(settings_for(oidc_provider), http, real_clock())
    answer, pending = await signed_in_query(client, http, "anna")
    signed = await client.complete(answer, pending, CALLBACK)
    head, body, signature = signed.id_token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    tampered = f"{head}.{body}.{signature[:5]}{flipped}{signature[6:]}"
    with pytest.raises(OidcError) as bad:
        await client.validate_id_token(tampered, pending.nonce)
    assert bad.value.code == "id_token_invalid"
    # the same claims signed with the client secret (HS256): anyone holding the secret could
    secret_key = OctKey.import_key(b"test-client-secret")
    forged = jwt.encode({"alg": "HS256", "kid": "key-1"}, dict(signed.claims), secret_key)
    with pytest.raises(OidcError) as symmetric:
        await client.validate_id_token(forged, pending.nonce)
    assert symmetric.value.code == "id_token_invalid"


async def test_the_provider_rotating_its_key_is_followed(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    client = OidcClient(settings_for(oidc_provider), http, real_clock())
    answer, pending = await signed_in_query(client, http, "anna")
    first = await client.complete(answer, pending, CALLBACK)
    oidc_provider.keys.insert(0, new_signing_key("key-2"))  # the new key signs from now on
    oidc_provider.restart()
    http.cookie_jar.clear()
    answer, pending = await signed_in_query(client, http, "anna")
    second = await client.complete(answer, pending, CALLBACK)
    assert second.subject == first.subject == "anna"
    assert first.id_token.split(".")[0] != second.id_token.split(".")[0]  # another kid


async def test_provider_down_is_a_clear_error(
    oidc_provider: Provider, http: aiohttp.ClientSession
) -> None:
    settings = settings_for(oidc_provider)
    oidc_provider.stop()
    with pytest.raises(OidcError) as down:
        await OidcClient(settings, http, real_clock()).begin(CALLBACK)
    assert down.value.code == "provider_unreachable"
