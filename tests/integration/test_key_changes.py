"""Key changes reach every peer (SPEC.md §4.6, §7.10), and a withdrawn key stops at once.

Real nodes on loopback, each with its own store, sharing one injected clock: ``keys rotate`` and
``keys withdraw`` (``node.services.keys``) change a node's key as the CLI does; the announcement
goes through the outbox; attackers send real signed envelopes over HTTP.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from node.config import load_config
from node.services.keys import KeyRotationError, rotate_key, withdraw_key
from node.services.peers import fetch_peer, trust_peer
from node.store import peers as peer_store
from node.store import records
from node.store.revocations import outbox_rows
from node.store.tables import ExchangeLogEntry, OutboxItem
from protocol.clock import ManualClock, format_time
from protocol.documents import (
    build_node_document,
    sign_checkpoint,
    sign_fragment,
    verify_checkpoint,
    verify_consent,
    verify_fragment,
)
from protocol.envelope import sign_envelope
from protocol.errors import Reason, VerificationError
from protocol.keys import PublicKey, SigningKey, load_private_key
from protocol.signing import sign_object
from tests.integration.test_revocation import plan_with_consent
from tests.support.fakepeer import FakePeer
from tests.support.federation import SCHOOL, RunningNode
from tests.support.waiting import wait_until_async

ENDPOINT = "/federation/v1/messages"


@pytest.fixture
def trio(trio: list[RunningNode], clock: ManualClock) -> list[RunningNode]:
    """The shared ``trio``, an hour on."""
    clock.advance(3600)  # a key change needs the current key valid for a second before it
    return trio


def key_file_of(node: RunningNode) -> SigningKey:
    """The node's current private key as its key file holds it (what a thief would copy)."""
    config = load_config(node.node.config.directory)
    return load_private_key(config.key_path, node.node_id, node.node.identity.key.valid_from)


async def settle(node: RunningNode, within: float = 20.0) -> None:
    """Deliver ``node``'s due outbox items and wait until no due item is left undelivered
    (the node's own scheduler may be delivering some at the same moment)."""
    due: list[OutboxItem] = []

    async def delivered() -> bool:
        await node.node.outbox.drain()
        await node.node.outbox.close()  # a drain the scheduler started
        async with node.node.engine.connect() as conn:
            rows = await outbox_rows(conn)
        now = node.node.clock.now()
        due[:] = [r for r in rows if r.next_attempt_at <= now]
        return not due

    await wait_until_async(
        delivered, timeout=within, what=lambda: f"no due outbox item left: {due}", interval=0.05
    )


async def post(node: RunningNode, envelope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(node.url + ENDPOINT, json=envelope) as resp,
    ):
        return resp.status, await resp.json()


def hello(sender: str, to: str, key: SigningKey, at: datetime) -> dict[str, Any]:
    return sign_envelope(
        type="hello",
        body={"started_at": format_time(at)},
        sender=sender,
        to=to,
        key=key,
        clock=ManualClock(at),
    )


def announcement(
    sender: str, to: str, key: SigningKey, at: datetime, document: dict[str, Any]
) -> dict[str, Any]:
    return sign_envelope(
        type="keys.update",
        body={"document": document},
        sender=sender,
        to=to,
        key=key,
        clock=ManualClock(at),
    )


async def held_document(holder: RunningNode, peer: RunningNode) -> str:
    row = await peer_store.get_peer(holder.node.engine, peer.node_id)
    assert row is not None
    return row.document


def held_key_ids(holder: RunningNode, peer: RunningNode) -> list[str]:
    return [k.key_id for k in holder.node.keyring.keys_for(peer.node_id) or []]


async def log_entries(node: RunningNode, message_type: str) -> list[Any]:
    table = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
    async with node.node.engine.connect() as conn:
        rows = await conn.execute(select(table).where(table.c.message_type == message_type))
        return list(rows.mappings())


async def document_fetches(node: RunningNode) -> dict[str, float]:
    """``barnplan_peer_document_fetches_total`` by outcome, as Prometheus scrapes it."""
    async with aiohttp.ClientSession() as session, session.get(node.url + "/metrics") as resp:
        text = await resp.text()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("barnplan_peer_document_fetches_total{"):
            labels, value = line.rsplit(" ", 1)
            counts[labels.split('outcome="')[1].split('"')[0]] = float(value)
    return counts


async def announcements(node: RunningNode) -> list[OutboxItem]:
    async with node.node.engine.connect() as conn:
        return [
            r
            for r in await outbox_rows(conn, include_delivered=True)
            if r.message_type == "keys.update"
        ]


# --- rotation -----------------------------------------------------------------------------------


async def test_a_rotation_reaches_every_peer_without_a_fetch(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, bup = trio
    rotation = await rotate_key(load_config(school.node.config.directory), clock)
    assert sorted(rotation.notified) == sorted([social.node_id, bup.node_id])
    assert await school.node.refresh_identity()  # a running node takes the new key up
    assert school.node.identity.key.key_id == rotation.new_key_id
    await settle(school)

    for peer in (social, bup):
        assert held_key_ids(peer, school)[0] == rotation.new_key_id
        held = json.loads(await held_document(peer, school))
        assert held["sig"]["key"] == rotation.old_key_id  # the outgoing key vouched for it
        assert held["keys"][0]["kid"] == rotation.new_key_id
        # learned from the announcement alone: the peer never fetched the document
        assert await document_fetches(peer) == {}
        assert not [e for e in await log_entries(peer, "node.document") if e["direction"] == "out"]
        result = await school.node.peers.send(
            peer.node_id, "hello", {"started_at": format_time(clock.now())}
        )
        assert result.ok, result
    assert all(a.delivered_at is not None for a in await announcements(school))


async def test_a_peer_down_during_the_announcement_gets_it_on_retry(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, bup = trio
    before = await held_document(bup, school)
    await bup.stop()
    rotation = await rotate_key(load_config(school.node.config.directory), clock)
    await school.node.refresh_identity()
    await settle(school)
    [to_bup] = [a for a in await announcements(school) if a.peer == bup.node_id]
    assert to_bup.delivered_at is None and to_bup.attempts >= 1
    assert (to_bup.last_error or "").startswith("unreachable")
    assert held_key_ids(social, school)[0] == rotation.new_key_id
    assert await held_document(bup, school) == before

    await bup.start()
    clock.advance(120)  # past the backoff: the retry is due
    await settle(school)
    [to_bup] = [a for a in await announcements(school) if a.peer == bup.node_id]
    assert to_bup.delivered_at is not None and to_bup.attempts >= 2
    # (delivered at least once: the clock jumped past the delivery lease meanwhile)
    assert {(e["peer"], e["outcome"]) for e in await log_entries(bup, "keys.update")} == {
        (school.node_id, "ok")
    }
    assert held_key_ids(bup, school)[0] == rotation.new_key_id
    assert json.loads(await held_document(bup, school))["keys"][0]["kid"] == rotation.new_key_id


# --- withdrawal ---------------------------------------------------------------------------------


async def test_a_withdrawn_key_is_refused_by_every_peer_at_once_and_old_signatures_verify(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, bup = trio
    plan_id, consent_id = await plan_with_consent(trio)
    # a fragment the school released (signed) before the withdrawal
    result = await social.node.peers.send(
        school.node_id,
        "fragments.request",
        {
            "plan_id": plan_id,
            "consent_id": consent_id,
            "categories": ["education"],
            "purpose": "sip",
            "professional": f"{social.node_id}/u/prof",
        },
    )
    assert result.ok and result.reply is not None
    [released] = result.reply.body.fragments  # type: ignore[attr-defined]
    leaked = key_file_of(school)
    clock.advance(60)
    checkpoint_before = sign_checkpoint(
        node_id=school.node_id, seq=1, head="a" * 64, at=clock.now(), key=leaked
    )

    clock.advance(60)
    withdrawal = await withdraw_key(load_config(school.node.config.directory), clock, leaked.key_id)
    at = withdrawal.at
    await school.node.refresh_identity()
    await settle(school)

    for peer in (social, bup):
        status, reply = await post(peer, hello(school.node_id, peer.node_id, leaked, at))
        assert status == 401 and reply["body"]["reason"] == "key_not_valid", reply
        status, reply = await post(
            peer, hello(school.node_id, peer.node_id, leaked, at + timedelta(seconds=5))
        )
        assert status == 401 and reply["body"]["reason"] == "key_not_valid", reply
        keys = list(peer.node.keyring.keys_for(school.node_id) or [])
        # the fragment and the consent statement signed before the withdrawal still verify ...
        verify_fragment(released, keys)
        async with peer.node.engine.connect() as conn:
            statement = await records.consent_statement(conn, consent_id)
        assert statement is not None and statement["sig"]["key"] == leaked.key_id
        verify_consent(statement, keys)
        # ... one signed with the withdrawn key at the withdrawal does not
        late = sign_fragment({**_unsigned(released), "signed_at": format_time(at)}, leaked)
        with pytest.raises(VerificationError) as refused:
            verify_fragment(late, keys)
        assert refused.value.reason is Reason.KEY_NOT_VALID

    # the withdrawing node itself: it publishes and checks its own objects by the same windows
    own = school.node.identity.public_keys()
    assert school.node.identity.key.key_id == withdrawal.new_key_id
    assert {k.key_id: k.valid_until for k in own}[leaked.key_id] == at
    verify_checkpoint(checkpoint_before, own)
    late_checkpoint = sign_checkpoint(
        node_id=school.node_id, seq=2, head="b" * 64, at=at, key=leaked
    )
    with pytest.raises(VerificationError) as refused:
        verify_checkpoint(late_checkpoint, own)
    assert refused.value.reason is Reason.KEY_NOT_VALID
    # and the new key works with every peer
    for peer in (social, bup):
        ok = await school.node.peers.send(peer.node_id, "hello", {"started_at": format_time(at)})
        assert ok.ok, ok


def _unsigned(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("sig", "v", "type")}


async def test_only_the_current_key_can_be_withdrawn(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school = trio[0]
    directory = school.node.config.directory
    first = await rotate_key(load_config(directory), clock)
    clock.advance(60)
    for key_id, why in ((first.old_key_id, "already ended"), ("x.test#00", "not a key")):
        with pytest.raises(KeyRotationError) as refused:
            await withdraw_key(load_config(directory), clock, key_id)
        assert why in str(refused.value)
    assert len(await announcements(school)) == 2  # the rotation's, nothing more


# --- forged announcements -----------------------------------------------------------------------


async def test_an_announcement_signed_by_a_key_the_peer_does_not_hold_changes_nothing(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, _ = trio
    before = await held_document(social, school)
    ring_before = held_key_ids(social, school)
    thief = SigningKey.generate(school.node_id, clock.now() - timedelta(days=1))
    forged = build_node_document(
        node_id=school.node_id,
        agency_name=SCHOOL[1],
        agency_kind=SCHOOL[2],
        base_url=school.url,
        key=thief,
        issued_at=clock.now(),
    )
    status, reply = await post(
        social, announcement(school.node_id, social.node_id, thief, clock.now(), forged)
    )
    assert status == 401 and reply["body"]["reason"] == "unknown_key", reply
    assert await held_document(social, school) == before
    assert held_key_ids(social, school) == ring_before

    # a trusted member cannot announce keys for another node either
    bup = trio[2]
    status, reply = await post(
        social, announcement(bup.node_id, social.node_id, key_file_of(bup), clock.now(), forged)
    )
    assert status == 400 and reply["body"]["reason"] == "unknown_sender", reply
    assert await held_document(social, school) == before


async def test_a_withdrawn_key_cannot_add_a_key_after_the_withdrawal(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, _ = trio
    leaked = key_file_of(school)
    withdrawal = await withdraw_key(load_config(school.node.config.directory), clock, leaked.key_id)
    at = withdrawal.at
    await school.node.refresh_identity()
    await settle(school)
    held = await held_document(social, school)
    ring = held_key_ids(social, school)
    thief = SigningKey.generate(school.node_id, at - timedelta(days=1))
    kept = [PublicKey(leaked.key_id, leaked.public_raw, leaked.valid_from)]

    def forged_document(issued_at: datetime) -> dict[str, Any]:
        document = build_node_document(
            node_id=school.node_id,
            agency_name=SCHOOL[1],
            agency_kind=SCHOOL[2],
            base_url=school.url,
            key=thief,
            old_keys=kept,
            issued_at=issued_at,
        )
        return sign_object(document, leaked)  # the leaked key vouching for the thief's key

    # after the withdrawal, signed then: the envelope and the document both fail
    later = at + timedelta(seconds=1)
    status, reply = await post(
        social,
        announcement(school.node_id, social.node_id, leaked, later, forged_document(later)),
    )
    assert status == 401 and reply["body"]["reason"] == "key_not_valid", reply
    # backdated into the leaked key's last valid second: the envelope verifies, the document
    # does not, as the peer holds that key as ended
    backdated = at - timedelta(seconds=1)
    status, reply = await post(
        social,
        announcement(school.node_id, social.node_id, leaked, backdated, forged_document(backdated)),
    )
    assert status == 400 and reply["body"]["reason"] == "key_not_valid", reply
    assert await held_document(social, school) == held
    assert held_key_ids(social, school) == ring
    assert thief.key_id not in held_key_ids(social, school)


# --- learning by a fetch ------------------------------------------------------------------------


async def rotated_behind_the_back_of(
    school: RunningNode, social: RunningNode, clock: ManualClock
) -> str:
    """Rotate ``school``'s key while it does not count ``social`` among its peers (so no
    announcement goes there), then trust ``social`` again; return the new key id."""
    await peer_store.delete_peer(school.node.engine, social.node_id)
    await school.node.reload_peers()
    rotation = await rotate_key(load_config(school.node.config.directory), clock)
    assert social.node_id not in rotation.notified
    await school.node.refresh_identity()
    await settle(school)
    async with aiohttp.ClientSession() as session:
        fetched = await fetch_peer(session, social.url)
    await trust_peer(school.node.engine, fetched, school.node_id, clock.now())
    await school.node.reload_peers()
    assert held_key_ids(social, school)[0] == rotation.old_key_id
    return rotation.new_key_id


async def test_an_unknown_key_makes_the_peer_fetch_once_and_the_message_then_verifies(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, _ = trio
    new_key_id = await rotated_behind_the_back_of(school, social, clock)
    result = await school.node.peers.send(
        social.node_id, "hello", {"started_at": format_time(clock.now())}
    )
    assert result.ok, result
    assert held_key_ids(social, school)[0] == new_key_id
    fetches = [e for e in await log_entries(social, "node.document") if e["direction"] == "out"]
    assert [(e["peer"], e["outcome"]) for e in fetches] == [(school.node_id, "ok")]
    assert await document_fetches(social) == {"applied": 1.0}
    again = await school.node.peers.send(
        social.node_id, "hello", {"started_at": format_time(clock.now())}
    )
    assert again.ok
    assert len(await log_entries(social, "node.document")) == 1


async def test_a_reply_with_an_unknown_key_makes_the_requester_fetch_once(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, _ = trio
    new_key_id = await rotated_behind_the_back_of(school, social, clock)
    result = await social.node.peers.send(
        school.node_id, "hello", {"started_at": format_time(clock.now())}
    )
    assert result.ok, result
    assert result.reply is not None and result.reply.key_id == new_key_id
    fetches = await log_entries(social, "node.document")
    assert [(e["direction"], e["outcome"]) for e in fetches] == [("out", "ok")]


async def test_fetches_after_unknown_keys_are_rate_limited_per_peer(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    """Messages that merely claim to come from a peer, signed with keys it never had, make the
    receiver fetch that peer's document at most once a minute per peer (counted at the peer)."""
    social = trio[1]
    peers = [FakePeer(f"peer{i}.test.se", "good", clock) for i in (1, 2)]
    for peer in peers:
        await peer.start()
        await peer.trusted_by(social)
    try:
        first, second = peers
        stranger = SigningKey.generate(first.node_id, clock.now() - timedelta(days=1))

        async def forged_hellos(n: int) -> None:
            for _ in range(n):
                message = hello(first.node_id, social.node_id, stranger, clock.now())
                status, reply = await post(social, message)
                assert status == 401 and reply["body"]["reason"] == "unknown_key"

        assert [p.document_requests for p in peers] == [1, 1]  # the operator's trust
        await forged_hellos(5)
        assert first.document_requests == 2
        clock.advance(30)
        await forged_hellos(3)
        assert first.document_requests == 2
        # the limit is per peer: another peer's document is fetched on its own account
        other = SigningKey.generate(second.node_id, clock.now() - timedelta(days=1))
        status, _ = await post(social, hello(second.node_id, social.node_id, other, clock.now()))
        assert status == 401 and second.document_requests == 2
        clock.advance(31)  # a minute after the first fetch
        await forged_hellos(2)
        assert first.document_requests == 3
        # nothing changed, so nothing but the refusals went into the exchange log
        assert await log_entries(social, "node.document") == []
        assert await document_fetches(social) == {"unchanged": 3.0}
    finally:
        for peer in peers:
            await peer.stop()
