"""The rule by which a peer takes a changed node document (SPEC.md §4.6), case by case.

The vectors (key-update/) pin the refusals another implementation must reproduce; these tests
cover the rest of the rule: what changes nothing (superseded, current), the time checks, and
the ways a holder of an ended key might try to get round it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from protocol.clock import format_time
from protocol.documents import build_node_document, verify_node_document
from protocol.errors import MalformedError, ProtocolError, Reason
from protocol.key_updates import (
    DocumentUpdate,
    UpdateStatus,
    check_document_update,
    sign_key_change,
)
from protocol.keys import PublicKey, SigningKey
from protocol.signing import sign_object

NODE = "skola.test.se"
NAMES = {
    "node_id": NODE,
    "agency_name": "Testskolan",
    "agency_kind": "school",
    "base_url": "https://skola.test.se",
}
K1_FROM = datetime(2026, 6, 1, tzinfo=UTC)
HELD_AT = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
CHANGE = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
NOW = CHANGE + timedelta(seconds=5)
K1 = SigningKey.from_seed(NODE, bytes(range(32)), K1_FROM)
K2 = SigningKey.from_seed(NODE, bytes(range(32, 64)), CHANGE)
THIEF = SigningKey.from_seed(NODE, bytes(range(64, 96)), K1_FROM)


def held_document() -> dict[str, Any]:
    return build_node_document(**NAMES, key=K1, issued_at=HELD_AT)


def rotation() -> dict[str, Any]:
    return sign_key_change(**NAMES, new_key=K2, outgoing=K1, older_keys=[], at=CHANGE)


def judge(candidate: dict[str, Any], held: dict[str, Any], now: datetime = NOW) -> DocumentUpdate:
    document, keys = verify_node_document(held)
    return check_document_update(candidate, document, keys, now=now, skew_s=30)


def reason_of(candidate: dict[str, Any], held: dict[str, Any]) -> Reason:
    with pytest.raises(ProtocolError) as refused:
        judge(candidate, held)
    return refused.value.reason


def test_a_rotation_is_signed_by_the_outgoing_key_in_its_last_second() -> None:
    document, keys = verify_node_document(rotation(), NODE)
    assert document.sig.key == K1.key_id
    assert document.issued_at == format_time(CHANGE - timedelta(seconds=1))
    assert [(k.key_id, k.valid_from, k.valid_until) for k in keys] == [
        (K2.key_id, CHANGE, None),
        (K1.key_id, K1_FROM, CHANGE),
    ]
    assert judge(rotation(), held_document()).status is UpdateStatus.APPLIED


def test_a_key_change_needs_the_outgoing_key_valid_a_second_before() -> None:
    with pytest.raises(MalformedError):
        sign_key_change(**NAMES, new_key=K2, outgoing=K1, older_keys=[], at=K1_FROM)


def test_the_same_document_again_is_current_and_an_older_one_superseded() -> None:
    held = rotation()
    assert judge(rotation(), held).status is UpdateStatus.CURRENT
    resigned = build_node_document(
        **NAMES, key=K2, old_keys=[K1.public(CHANGE)], issued_at=NOW
    )  # the same content, signed again later by the new key
    assert judge(resigned, held).status is UpdateStatus.CURRENT
    # a document of the new key's that changed the base URL ...
    moved = build_node_document(
        **{**NAMES, "base_url": "https://ny.skola.test.se"},
        key=K2,
        old_keys=[K1.public(CHANGE)],
        issued_at=NOW + timedelta(seconds=1),
    )
    assert judge(moved, held).status is UpdateStatus.APPLIED
    # ... makes a later replay of the one before it stale, not a way back to the old URL
    assert judge(resigned, moved).status is UpdateStatus.SUPERSEDED
    # and the rotation delivered late, after the node's next change, changes nothing either
    assert judge(rotation(), moved).status is UpdateStatus.SUPERSEDED


def test_a_key_change_older_than_a_document_the_old_key_signed_still_applies() -> None:
    """A peer that fetched a fresh document of the old key in the second of the change holds
    a document newer than the announcement; the announcement must still take."""
    fresh = build_node_document(**NAMES, key=K1, issued_at=CHANGE)
    assert judge(rotation(), fresh).status is UpdateStatus.APPLIED


def test_a_document_for_another_node_or_from_the_future_is_refused() -> None:
    other = build_node_document(**{**NAMES, "node_id": "bup.test.se"}, key=K2, issued_at=NOW)
    assert reason_of(other, held_document()) is Reason.UNKNOWN_SENDER
    future = build_node_document(**NAMES, key=K1, issued_at=NOW + timedelta(seconds=31))
    assert reason_of(future, held_document()) is Reason.NOT_YET_VALID
    # within the skew it is judged (the same content as held: nothing to change)
    in_skew = judge(future, held_document(), now=NOW + timedelta(seconds=1))
    assert in_skew.status is UpdateStatus.CURRENT


def test_a_thief_with_the_ended_key_cannot_add_a_key_at_any_time_it_writes() -> None:
    held = rotation()  # the verifier took the withdrawal: K1 ended at CHANGE
    keep = PublicKey(K1.key_id, K1.public_raw, K1_FROM)  # K1 listed as current again
    for issued_at in (
        format_time(CHANGE),  # at the end
        format_time(CHANGE - timedelta(seconds=1)),  # the last whole valid second
        "2026-11-23T09:59:59.500000Z",  # a fraction of a second later than the held one
    ):
        forged = sign_object(
            {
                **build_node_document(**NAMES, key=THIEF, old_keys=[keep], issued_at=CHANGE),
                "issued_at": issued_at,
            },
            K1,
        )
        assert reason_of(forged, held) is Reason.KEY_NOT_VALID, issued_at
    # backdated before the held document it is stale: superseded, nothing changes
    old = sign_object(
        {
            **build_node_document(**NAMES, key=THIEF, old_keys=[keep], issued_at=CHANGE),
            "issued_at": format_time(CHANGE - timedelta(seconds=2)),
        },
        K1,
    )
    assert judge(old, held).status is UpdateStatus.SUPERSEDED


def test_the_current_key_cannot_move_a_key_window_outwards() -> None:
    held = rotation()
    earlier = PublicKey(K1.key_id, K1.public_raw, K1_FROM - timedelta(days=1), CHANGE)
    later = PublicKey(K1.key_id, K1.public_raw, K1_FROM, CHANGE + timedelta(days=1))
    for widened in (earlier, later):
        document = build_node_document(**NAMES, key=K2, old_keys=[widened], issued_at=NOW)
        assert reason_of(document, held) is Reason.MALFORMED
    # narrowing is a change it may make (a retired key's window ends earlier)
    narrowed = PublicKey(K1.key_id, K1.public_raw, K1_FROM, CHANGE - timedelta(hours=1))
    document = build_node_document(**NAMES, key=K2, old_keys=[narrowed], issued_at=NOW)
    assert judge(document, held).status is UpdateStatus.APPLIED
