"""Assembly under faults: the plan still arrives, in time, with each participant's status right.

The lead (school) has two real participants - social services (answers) and BUP (stopped) -
and misbehaving fakes with real keys and documents that linked the plan and hold the consent:
three answer only after the deadline (three, so that asking them one after another could not
fit in the time bound), one with a corrupted envelope signature, one with a corrupted fragment
signature, one with a body that is not JSON. The lead's deadline is 1 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from sqlalchemy import select

from node.store.tables import ExchangeLogEntry
from protocol.clock import ManualClock
from tests.conftest import StoreFactory
from tests.support.fakepeer import FakePeer
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode, start_federation, stop_all
from tests.support.plans import (
    add_child,
    add_fragment,
    create_plan,
    link_invitation,
    record_consent,
    rich_fragment,
)

DEADLINE_S = 1.0
MARGIN_S = 1.5  # a functional bound: event-loop and log-commit overhead on a busy CI machine
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "shared_plan.json"

# name -> (node id, misbehaviour, the category the consent grants from it)
FAKES = {
    "slow": ("slow.test.se", "slow", "family"),
    "slow2": ("slow2.test.se", "slow", "family"),
    "slow3": ("slow3.test.se", "slow", "leisure"),
    "bad_envelope_signature": ("envsig.test.se", "bad_envelope_signature", "health"),
    "bad_fragment_signature": ("fragsig.test.se", "bad_fragment_signature", "leisure"),
    "not_json": ("garbage.test.se", "not_json", "police"),
}


@pytest.fixture
async def world(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[tuple[list[RunningNode], dict[str, FakePeer]]]:
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL, BUP], store_factory, clock)
    fakes = {
        name: FakePeer(node_id, mode, clock, delay_s=DEADLINE_S + 1)
        for name, (node_id, mode, _) in FAKES.items()
    }
    try:
        for fake in fakes.values():
            await fake.start()
            await fake.trusted_by(nodes[0])
        yield nodes, fakes
    finally:
        for fake in fakes.values():
            await fake.stop()
        await stop_all(nodes)


async def test_plan_arrives_in_time_with_every_fault_named(
    world: tuple[list[RunningNode], dict[str, FakePeer]],
) -> None:
    (school, social, bup), fakes = world
    child = await add_child(school)
    await add_child(social)
    await add_child(bup)
    participants = [social.node_id, bup.node_id, *(f.node_id for f in fakes.values())]
    plan_id = await create_plan(school, child, participants)
    for node in (social, bup):
        await link_invitation(node, plan_id)
    for fake in fakes.values():
        await fake.link(school, plan_id)
    status, view = await school.api("GET", f"/plans/{plan_id}", "lead")
    assert status == 200
    assert {p["node_id"]: p["status"] for p in view["participants"]} == {
        school.node_id: "lead",
        **{n: "linked" for n in participants},
    }
    await add_fragment(school, plan_id, rich_fragment("education", "SKO-OK"))
    await add_fragment(social, plan_id, rich_fragment("social", "SOC-OK"))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", "BUP-DOWN"))
    grants = {
        social.node_id: ["social"],
        bup.node_id: ["mental_health"],
        **{node_id: [category] for node_id, _, category in FAKES.values()},
    }
    await record_consent(school, plan_id, grants, school.node.clock.now())
    assert all("consent.statement" in f.received for f in fakes.values())

    await bup.stop()  # down after it got the consent: connection refused
    school.node.config.assembly.deadline_s = DEADLINE_S
    started = time.monotonic()
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    elapsed = time.monotonic() - started

    assert status == 200, shared
    assert elapsed < DEADLINE_S + MARGIN_S, f"assembly took {elapsed:.2f} s"
    assert all("fragments.request" in f.received for f in fakes.values())
    by_node = {p["node_id"]: p for p in shared["participants"]}
    assert by_node[school.node_id]["status"] == "included"
    assert by_node[social.node_id]["status"] == "included"
    assert by_node[social.node_id]["categories"] == ["social"]
    assert by_node[bup.node_id]["status"] == "unreachable"
    assert by_node[bup.node_id]["reason"]  # the connection error's name
    assert by_node[bup.node_id]["requested"] == ["mental_health"]
    expected = {
        "slow": ("timed_out", "timeout"),
        "slow2": ("timed_out", "timeout"),
        "slow3": ("timed_out", "timeout"),
        "bad_envelope_signature": ("invalid", "bad_signature"),
        "bad_fragment_signature": ("invalid", "bad_signature"),
        "not_json": ("invalid", "malformed"),
    }
    for name, (status_, reason) in expected.items():
        entry = by_node[fakes[name].node_id]
        assert (entry["status"], entry["reason"]) == (status_, reason), (name, entry)

    # only verified fragments from answering participants are in the plan
    origins = {(f["origin"], f["category"]) for f in shared["fragments"]}
    assert origins == {(school.node_id, "education"), (social.node_id, "social")}
    text = json.dumps(shared, ensure_ascii=False)
    assert "SKO-OK" in text and "SOC-OK" in text
    assert "BUP-DOWN" not in text
    for fake in fakes.values():
        assert fake.marker not in text
    Draft202012Validator(json.loads(SCHEMA_PATH.read_text("utf-8"))).validate(shared)

    # the lead's exchange log names each outcome (and nothing of the content)
    async with school.node.engine.connect() as conn:
        rows = (
            (
                await conn.execute(
                    select(ExchangeLogEntry.__table__).where(  # type: ignore[attr-defined]
                        ExchangeLogEntry.__table__.c.message_type == "fragments.request"  # type: ignore[attr-defined]
                    )
                )
            )
            .mappings()
            .all()
        )
    outcomes: dict[str, Any] = {r["peer"]: (r["outcome"], r["reason"]) for r in rows}
    assert outcomes[fakes["slow"].node_id] == ("timeout", "timeout")
    assert outcomes[fakes["bad_envelope_signature"].node_id] == ("bad_reply", "bad_signature")
    assert outcomes[fakes["not_json"].node_id] == ("bad_reply", "malformed")
    assert outcomes[bup.node_id][0] == "unreachable"
    assert outcomes[social.node_id] == ("ok", None)
