"""Who a resident's sign-in is: the identity number's keyed hash (one per person whatever the
number's form), the birth date for the age rule, and a refusal for anything that is not a valid
identity number. Pure: no store, no provider."""

from __future__ import annotations

from datetime import date

import pytest

from node.oidc.resident import (
    Resident,
    ResidentRefused,
    age_on,
    born_on,
    identity_hash,
    resident_from,
    resident_user_id,
)
from node.services.resident_sign_in import admitted
from node.store.tables import ConsentPerson

KEY = b"k" * 32
TODAY = date(2026, 12, 4)
CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
GUARDIAN = "198506122384"  # synthetic (valid check digit)


def test_every_form_of_one_number_hashes_alike_and_the_hash_holds_no_digits_of_it() -> None:
    forms = ["198506122384", "19850612-2384", "850612-2384", "8506122384"]
    hashes = {identity_hash(f, KEY, TODAY) for f in forms}
    assert len(hashes) == 1
    [hashed] = hashes
    assert hashed.startswith("hmac:") and "850612" not in hashed
    assert identity_hash(GUARDIAN, b"another key" * 3, TODAY) != hashed


@pytest.mark.parametrize(
    "claims",
    [{}, {CLAIM: 198506122384}, {CLAIM: "198506122385"}, {CLAIM: "20991301-0000"}, {CLAIM: ""}],
)
def test_a_missing_or_invalid_identity_number_is_refused(claims: dict[str, object]) -> None:
    with pytest.raises(ResidentRefused) as refused:
        resident_from(claims, CLAIM, KEY, TODAY)
    assert refused.value.code == "no_identity_number"


def test_a_resident_carries_the_hash_and_birth_date_only() -> None:
    resident = resident_from({CLAIM: GUARDIAN, "name": "Maria"}, CLAIM, KEY, TODAY)
    assert resident == Resident(identity_hash(GUARDIAN, KEY, TODAY), date(1985, 6, 12))
    assert resident_user_id(resident.identity_hash).startswith("res-")
    assert "2384" not in resident_user_id(resident.identity_hash)


def test_age_counts_whole_years_and_a_samordningsnummer_gives_its_real_day() -> None:
    assert age_on(date(2013, 12, 5), TODAY) == 12
    assert age_on(date(2013, 12, 4), TODAY) == 13
    assert age_on(date(2012, 2, 29), date(2025, 2, 28)) == 12
    assert age_on(date(2012, 2, 29), date(2025, 3, 1)) == 13
    assert born_on("198506722381", TODAY) == date(1985, 6, 12)  # day + 60


def person(role: str, plan: str = "plan-1") -> ConsentPerson:
    return ConsentPerson(
        plan_id=plan, ref="p1", name="N", role=role, required=True, answer="consents",
        updated_at=TODAY,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_child_is_admitted_from_the_agencys_age_and_a_guardian_always() -> None:
    twelve = Resident("hmac:x", date(2014, 6, 1))
    thirteen = Resident("hmac:x", date(2013, 6, 1))
    with pytest.raises(ResidentRefused) as young:
        admitted([person("child")], twelve, 13, TODAY)
    assert young.value.code == "too_young"
    assert admitted([person("child")], thirteen, 13, TODAY) == [person("child")]
    assert admitted([person("guardian")], twelve, 13, TODAY) == [person("guardian")]
    with pytest.raises(ResidentRefused) as nowhere:
        admitted([], thirteen, 13, TODAY)
    assert nowhere.value.code == "no_plan"
