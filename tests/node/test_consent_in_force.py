"""Which consent a plan is assembled under: the newest in force, never one a later statement of
the lead replaced (SPEC §7.3), even when both were issued in the same second."""

from __future__ import annotations

from datetime import UTC, datetime

from node.services.assembly import consent_in_force

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def statement(consent_id: str, issued_at: str = "2026-12-01T00:00:00Z") -> dict[str, str]:
    return {
        "consent_id": consent_id,
        "issued_at": issued_at,
        "valid_from": "2026-11-01T00:00:00Z",
        "valid_until": "2027-11-01T00:00:00Z",
    }


def test_a_replaced_consent_is_never_chosen_even_issued_in_the_same_second() -> None:
    first, second = statement("first"), statement("second")
    for order in ([first, second], [second, first]):
        chosen = consent_in_force(order, revoked=set(), replaced={"first"}, now=NOW)
        assert chosen is second


def test_a_revoked_replacement_is_shown_rather_than_the_consent_it_replaced() -> None:
    first, second = statement("first"), statement("second", "2026-12-02T00:00:00Z")
    chosen = consent_in_force([first, second], revoked={"second"}, replaced={"first"}, now=NOW)
    assert chosen is second  # the page says it is revoked; the replaced one never returns


def test_the_newest_in_force_wins_and_an_expired_newest_gives_way() -> None:
    old, new = statement("old"), statement("new", "2026-12-03T00:00:00Z")
    assert consent_in_force([old, new], set(), set(), NOW) is new
    expired = {**new, "valid_until": "2026-12-04T00:00:00Z"}
    assert consent_in_force([old, expired], set(), set(), NOW) is old
    assert consent_in_force([], set(), set(), NOW) is None
