"""A verified sign-in becomes a user of the node (SQLite and PostgreSQL): recorded from the
provider's role claim, or the pre-registered user; refused sign-ins write nothing; identity
numbers are stored only as a keyed hash."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from node.oidc.identity import HASHED_PREFIX, ClaimRules, IdentityRefused, stored_subject
from node.services import users
from node.services.provider_sign_in import sign_in
from node.store import records
from protocol.clock import ManualClock

ISSUER = "https://idp.kommun.test"
KEY = b"s" * 32
RULES = ClaimRules(
    subject_claim="hsa_id",
    role_claim="groups",
    roles={"lead": "barnplan-lead", "professional": "barnplan-staff"},
)


@pytest.fixture
async def engine(migrated_engine: AsyncEngine) -> AsyncEngine:
    return migrated_engine


async def user_count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM app_user"))).scalar_one())


async def test_a_person_with_a_role_claim_is_recorded_and_follows_the_claim(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    claims = {
        "sub": "x",
        "hsa_id": "SE2321000016-T1",
        "name": "Anna Testsson",
        "groups": ["barnplan-staff"],
    }
    user = await sign_in(engine, RULES, KEY, ISSUER, claims, clock.now())
    assert (user.role, user.display_name, user.role_from_claims) == (
        "professional",
        "Anna Testsson",
        True,
    )
    assert user.user_id.startswith("sso-") and user.oidc_subject == "SE2321000016-T1"
    again = await sign_in(
        engine, RULES, KEY, ISSUER, {**claims, "groups": ["barnplan-lead"]}, clock.now()
    )
    assert again.user_id == user.user_id and again.role == "lead"
    assert await user_count(engine) == 1
    with pytest.raises(IdentityRefused) as gone:
        await sign_in(engine, RULES, KEY, ISSUER, {**claims, "groups": []}, clock.now())
    assert gone.value.code == "no_role"
    stored = await records.user_by_id(engine, user.user_id)
    assert stored is not None and stored.role == "lead"  # a refusal changes nothing


async def test_refused_sign_ins_write_nothing(engine: AsyncEngine, clock: ManualClock) -> None:
    for claims, code in [
        ({"sub": "x", "groups": ["barnplan-lead"]}, "no_subject"),
        ({"hsa_id": "SE1", "groups": ["kitchen"]}, "no_role"),
    ]:
        with pytest.raises(IdentityRefused) as refused:
            await sign_in(engine, RULES, KEY, ISSUER, claims, clock.now())
        assert refused.value.code == code
    registered_only = ClaimRules(subject_claim="hsa_id")
    with pytest.raises(IdentityRefused) as unknown:
        await sign_in(engine, registered_only, KEY, ISSUER, {"hsa_id": "SE1"}, clock.now())
    assert unknown.value.code == "unknown_user"
    assert await user_count(engine) == 0


async def test_a_pre_registered_user_keeps_their_role_and_can_be_disabled(
    engine: AsyncEngine, clock: ManualClock
) -> None:
    subject = stored_subject("19900101-1234", KEY)
    assert subject.startswith(HASHED_PREFIX)
    await users.add_user(engine, "bo", "Bo Test", "operator", clock.now(), (ISSUER, subject))
    rules = ClaimRules()  # subject from "sub", no role claim: pre-registered users only
    user = await sign_in(engine, rules, KEY, ISSUER, {"sub": "199001011234"}, clock.now())
    assert (user.user_id, user.role, user.role_from_claims) == ("bo", "operator", False)
    # the same person at another provider is someone else
    with pytest.raises(IdentityRefused):
        await sign_in(
            engine, rules, KEY, "https://other.test", {"sub": "199001011234"}, clock.now()
        )
    await users.disable_user(engine, "bo", clock.now())
    with pytest.raises(IdentityRefused) as disabled:
        await sign_in(engine, rules, KEY, ISSUER, {"sub": "19900101-1234"}, clock.now())
    assert disabled.value.code == "disabled"
    async with engine.connect() as conn:
        dump = str((await conn.execute(text("SELECT * FROM app_user"))).all())
    assert "19900101" not in dump and "900101" not in dump


async def test_one_subject_is_one_user(engine: AsyncEngine, clock: ManualClock) -> None:
    await users.add_user(engine, "bo", "Bo Test", "lead", clock.now(), (ISSUER, "SE1"))
    with pytest.raises(users.Conflict) as twice:
        await users.add_user(engine, "bo2", "Bo Test", "lead", clock.now(), (ISSUER, "SE1"))
    assert "--subject" in str(twice.value)
