"""Who a verified sign-in is: subject claim, keyed hash of identity numbers, role mapping."""

from __future__ import annotations

import pytest

from node.oidc.identity import (
    HASHED_PREFIX,
    ClaimRules,
    IdentityRefused,
    person_from,
    role_for,
    stored_subject,
    user_id_for,
)

KEY = b"k" * 32
ISSUER = "https://idp.example.test"
RULES = ClaimRules(
    subject_claim="hsa_id",
    role_claim="groups",
    roles={"lead": "barnplan-lead", "professional": "barnplan-staff"},
)


def test_identity_numbers_are_kept_only_as_a_keyed_hash() -> None:
    for number in ("199001011234", "19900101-1234", "900101-1234", "9001011234"):
        stored = stored_subject(number, KEY)
        assert stored.startswith(HASHED_PREFIX)
        assert number.replace("-", "") not in stored
    # one person, one hash, whatever the form; another key, another hash
    assert stored_subject("19900101-1234", KEY) == stored_subject("199001011234", KEY)
    assert stored_subject("199001011234", KEY) != stored_subject("199001011234", b"x" * 32)
    # other subjects are kept as they are, unless every subject is hashed
    assert stored_subject("SE2321000016-T1", KEY) == "SE2321000016-T1"
    assert stored_subject("SE2321000016-T1", KEY, always_hash=True).startswith(HASHED_PREFIX)


def test_person_from_claims() -> None:
    claims = {
        "sub": "x",
        "hsa_id": "SE2321000016-T1",
        "name": " Anna Testsson ",
        "groups": ["other", "barnplan-staff"],
    }
    person = person_from(ISSUER, claims, RULES, KEY)
    assert person.subject == "SE2321000016-T1"
    assert person.display_name == "Anna Testsson"
    assert person.claim_role == "professional"
    # the first mapped role the claim carries wins, in [oidc.roles] order
    both = {**claims, "groups": "barnplan-staff barnplan-lead"}
    assert person_from(ISSUER, both, RULES, KEY).claim_role == "lead"


@pytest.mark.parametrize("subject", [None, "", "   ", 12, ["a"], "x" * 256])
def test_a_missing_or_odd_subject_is_refused(subject: object) -> None:
    claims = {"sub": "x", "hsa_id": subject}
    with pytest.raises(IdentityRefused) as refused:
        person_from(ISSUER, claims, RULES, KEY)
    assert refused.value.code == "no_subject"


def test_role_registered_claimed_none_or_disabled() -> None:
    person = person_from(ISSUER, {"hsa_id": "SE1", "groups": ["barnplan-staff"]}, RULES, KEY)
    assert role_for(person, None, False, RULES) == "professional"
    assert role_for(person, "operator", False, RULES) == "operator"  # pre-registration wins
    with pytest.raises(IdentityRefused) as disabled:
        role_for(person, "lead", True, RULES)
    assert disabled.value.code == "disabled"
    nobody = person_from(ISSUER, {"hsa_id": "SE2", "groups": ["cafeteria"]}, RULES, KEY)
    with pytest.raises(IdentityRefused) as no_role:
        role_for(nobody, None, False, RULES)
    assert no_role.value.code == "no_role"
    registered_only = ClaimRules(subject_claim="hsa_id")
    stranger = person_from(
        ISSUER, {"hsa_id": "SE3", "groups": ["barnplan-lead"]}, registered_only, KEY
    )
    assert stranger.claim_role is None  # no role claim configured: groups mean nothing
    with pytest.raises(IdentityRefused) as unknown:
        role_for(stranger, None, False, registered_only)
    assert unknown.value.code == "unknown_user"


def test_user_ids_are_stable_and_say_nothing() -> None:
    a = user_id_for(ISSUER, "SE2321000016-T1")
    assert a == user_id_for(ISSUER, "SE2321000016-T1")
    assert a != user_id_for("https://other.example.test", "SE2321000016-T1")
    assert a.startswith("sso-") and "SE23" not in a and len(a) <= 64
