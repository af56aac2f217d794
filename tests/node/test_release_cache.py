"""The holder's release cache saves signing and parsing, and never changes what a peer receives.

A cached fragment object must be exactly what a fresh signature would give (apart from
``signed_at``), verify against the origin's keys, and be re-signed whenever version, consent or
key changes. A parsed consent is reused only for the same stored content.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from node.domain.records import FragmentRecord
from node.services.release_cache import ReleaseCache
from protocol.clock import format_time
from protocol.documents import verify_fragment
from protocol.keys import SigningKey

NODE = "skola.test.se"
T = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
PLAN = "11111111-1111-4111-8111-111111111111"
CONSENT = "33333333-3333-4333-8333-333333333333"
OTHER_CONSENT = "44444444-4444-4444-8444-444444444444"


def record(version: int = 1, summary: str = "Läser med stöd") -> FragmentRecord:
    return FragmentRecord(
        fragment_id="55555555-5555-4555-8555-555555555555",
        plan_id=PLAN,
        version=version,
        category="education",
        indicators=("achieving",),
        content={"summary": summary},
        authored_at=T,
    )


def statement(consent_id: str = CONSENT, purpose: str = "sip") -> dict[str, Any]:
    return {
        "v": 1,
        "type": "consent",
        "consent_id": consent_id,
        "plan_id": PLAN,
        "lead": NODE,
        "purpose": purpose,
        "required": [{"ref": "vh1", "role": "guardian"}],
        "given_by": [{"ref": "vh1", "role": "guardian"}],
        "grants": [{"from": NODE, "to": ["ifo.test.se"], "categories": ["education"]}],
        "valid_from": format_time(T),
        "valid_until": format_time(T + timedelta(days=365)),
        "evidence_ref": "Samtyckesblankett",
        "recorded_by": f"{NODE}/u/lead",
        "issued_at": format_time(T),
        "sig": {"alg": "Ed25519", "key": f"{NODE}#0123456789abcdef", "value": "A" * 86},
    }


def test_a_version_released_again_under_the_same_consent_is_not_signed_again() -> None:
    key = SigningKey.generate(NODE, T)
    cache = ReleaseCache()
    first = cache.signed(record(), CONSENT, key, format_time(T))
    later = cache.signed(record(), CONSENT, key, format_time(T + timedelta(hours=1)))
    assert later is first  # the object signed at the first release, signed_at and all
    assert first["signed_at"] == format_time(T)
    fragment, key_id = verify_fragment(first, [key.public()])
    assert key_id == key.key_id and fragment.consent_id == CONSENT and fragment.version == 1


def test_a_new_version_consent_or_key_is_signed_afresh() -> None:
    key = SigningKey.generate(NODE, T)
    cache = ReleaseCache()
    first = cache.signed(record(), CONSENT, key, format_time(T))
    later = format_time(T + timedelta(hours=1))

    edited = cache.signed(record(2, "Läser utan stöd"), CONSENT, key, later)
    assert edited["version"] == 2 and edited["content"] == {"summary": "Läser utan stöd"}
    assert edited["sig"] != first["sig"] and edited["signed_at"] == later

    other = cache.signed(record(), OTHER_CONSENT, key, later)
    assert other["consent_id"] == OTHER_CONSENT and other["sig"] != first["sig"]

    rotated = SigningKey.generate(NODE, T + timedelta(minutes=30))
    resigned = cache.signed(record(), CONSENT, rotated, later)
    assert resigned["sig"]["key"] == rotated.key_id != first["sig"]["key"]
    verify_fragment(resigned, [rotated.public()])


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    key = SigningKey.generate(NODE, T)
    cache = ReleaseCache(size=2)
    a = cache.signed(record(1), CONSENT, key, format_time(T))
    cache.signed(record(2), CONSENT, key, format_time(T))
    assert cache.signed(record(1), CONSENT, key, format_time(T)) is a  # 1 is now the newest
    cache.signed(record(3), CONSENT, key, format_time(T))  # evicts 2
    assert cache.signed(record(1), CONSENT, key, format_time(T)) is a
    again = cache.signed(record(2), CONSENT, key, format_time(T + timedelta(hours=1)))
    assert again["signed_at"] == format_time(T + timedelta(hours=1))  # signed afresh


def test_a_consent_is_parsed_once_per_content() -> None:
    cache = ReleaseCache()
    raw = statement()
    model = cache.consent(raw)
    assert model.consent_id == CONSENT
    assert cache.consent(statement()) is model  # equal content: the same model
    changed = statement(purpose="child_plan")
    other = cache.consent(changed)
    assert other is not model and other.purpose.value == "child_plan"
    assert cache.consent(statement(OTHER_CONSENT)).consent_id == OTHER_CONSENT


def test_fragment_records_are_immutable_so_a_cache_key_cannot_go_stale() -> None:
    try:
        record().content = {}  # type: ignore[misc]
    except dataclasses.FrozenInstanceError:
        return
    raise AssertionError("FragmentRecord must stay frozen: the cache keys on its version")


def test_a_consent_stored_as_text_is_parsed_once_per_text() -> None:
    cache = ReleaseCache()
    text = json.dumps(statement())
    model = cache.consent(text)
    assert model.consent_id == CONSENT and cache.consent(text) is model
    other = cache.consent(json.dumps(statement(purpose="child_plan")))
    assert other is not model and other.purpose.value == "child_plan"
