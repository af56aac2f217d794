"""Replacing a user's token and disabling a user, in the service and the store (SQLite and
PostgreSQL): one check (``users.active``) decides for the API token, the password login and the
web session alike."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from node.errors import NotFound
from node.services import users
from node.services.passwords import login, set_password
from node.store import records
from protocol.clock import ManualClock

PASSWORD = "ett-långt-lösenord-1"


@pytest.fixture
async def engine(migrated_engine: AsyncEngine) -> AsyncEngine:
    return migrated_engine


async def test_a_replaced_token_is_refused_and_the_new_one_accepted(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    _, old = await users.add_user(engine, "anna", "Anna Test", "lead", clock.now())
    other_user, other = await users.add_user(engine, "bo", "Bo Test", "professional", clock.now())
    user, new = await users.replace_token(engine, "anna")
    assert user.user_id == "anna" and new != old and new.startswith("bp_")
    assert await users.authenticate(engine, old) is None
    authenticated = await users.authenticate(engine, new)
    assert authenticated is not None and authenticated.user_id == "anna"
    assert await users.authenticate(engine, other) == other_user
    stored = await records.user_by_id(engine, "anna")
    assert stored is not None and stored.token_hash == users.hash_token(new)  # never the token


async def test_a_disabled_user_is_refused_by_token_password_and_session_until_enabled(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    _, token = await users.add_user(engine, "anna", "Anna Test", "lead", clock.now())
    await set_password(engine, "anna", PASSWORD)

    disabled = await users.disable_user(engine, "anna", clock.now())
    assert disabled.disabled_at == clock.now()
    assert await users.authenticate(engine, token) is None
    assert await login(engine, "anna", PASSWORD) is None
    assert await users.active_user(engine, "anna") is None
    assert await records.user_by_id(engine, "anna") == disabled  # kept, not deleted

    clock.advance(2 * 3600)
    again = await users.disable_user(engine, "anna", clock.now())
    assert again.disabled_at == disabled.disabled_at  # the first time is the one that counts

    enabled = await users.enable_user(engine, "anna")
    assert enabled.disabled_at is None
    assert await users.authenticate(engine, token) == enabled
    assert await login(engine, "anna", PASSWORD) == enabled
    assert await users.active_user(engine, "anna") == enabled


async def test_an_unknown_user_cannot_get_a_token_nor_be_disabled_or_enabled(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    with pytest.raises(NotFound, match="no user 'nobody'"):
        await users.replace_token(engine, "nobody")
    with pytest.raises(NotFound, match="no user 'nobody'"):
        await users.disable_user(engine, "nobody", clock.now())
    with pytest.raises(NotFound, match="no user 'nobody'"):
        await users.enable_user(engine, "nobody")
    assert await records.list_users(engine) == []
