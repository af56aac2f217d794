"""schemas/shared_plan.json against real assemblies, validated by the third-party ``jsonschema``.

The schema is hand-written (the shared plan is the lead's answer to its own professionals, not
a protocol message), so nothing generates it from code: these tests are what keeps it true.
They assemble plans that exercise every shape a participant entry can take here - included,
withheld (a guardian missing; the consent revoked), not_requested, not_linked - plus an
active and a revoked plan; the fault shapes (unreachable, timed_out, invalid) are validated in
tests/integration/test_assembly_faults.py. The schema's code lists must match protocol/codes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from protocol.clock import ManualClock
from protocol.codes import ActionStatus, AgencyKind, Category, Indicator, Purpose
from protocol.errors import Reason
from tests.support.federation import (
    BUP,
    POLICE,
    SCHOOL,
    SOCIAL,
    RunningNode,
    sqlite_federation,
)
from tests.support.plans import (
    add_child,
    add_fragment,
    consent_body,
    create_plan,
    link_invitation,
    rich_fragment,
)

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "shared_plan.json"


@functools.cache
def load_schema() -> dict[str, Any]:
    """Read when a test runs, so a missing file fails the tests rather than their collection."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text("utf-8"))
    return schema


def validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture
async def four(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with sqlite_federation(tmp_path, [SCHOOL, SOCIAL, BUP, POLICE], clock) as nodes:
        yield nodes


def test_the_schema_is_a_valid_2020_12_schema_marked_hand_written() -> None:
    schema = load_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == "https://barnplan.se/schemas/v1/shared_plan.json"
    assert "hand-written" in schema["$comment"].lower()
    readme = (SCHEMA_PATH.parent / "README.md").read_text("utf-8")
    assert "`shared_plan.json`" in readme


def test_the_typed_shape_has_the_schemas_members() -> None:
    """node/domain/shared_plan_shape (what mypy checks the code against) names exactly the
    members the published schema has, required where the schema requires them."""
    from node.domain import shared_plan_shape as shape

    schema = load_schema()
    defs = schema["$defs"]
    pairs: list[tuple[type, dict[str, Any]]] = [
        (shape.SharedPlan, schema),
        (shape.Participant, defs["Participant"]),
        (shape.Provenance, defs["Provenance"]),
        (shape.View, defs["View"]),
        (shape.Action, defs["Action"]),
        (shape.IndicatorContent, defs["IndicatorContent"]),
        (shape.Withheld, defs["Withheld"]),
        (shape.ConsentPart, schema["properties"]["consent"]),
        (shape.Viewer, schema["properties"]["viewer"]),
        (shape.NotShown, schema["properties"]["not_shown"]["items"]),
    ]
    for typed, part in pairs:
        members = typed.__required_keys__ | typed.__optional_keys__
        assert members == set(part["properties"]), typed.__name__
        assert typed.__required_keys__ == set(part.get("required", [])), typed.__name__


def test_code_lists_match_protocol_codes() -> None:
    schema = load_schema()
    defs = schema["$defs"]
    assert defs["Indicator"]["enum"] == [i.value for i in Indicator]
    assert defs["Slot"]["enum"] == [i.value for i in Indicator] + ["unassigned"]
    assert defs["Category"]["enum"] == [c.value for c in Category]
    assert defs["AgencyKind"]["enum"] == [k.value for k in AgencyKind]
    assert defs["ActionStatus"]["enum"] == [s.value for s in ActionStatus]
    assert defs["Reason"]["enum"] == [r.value for r in Reason]
    assert schema["properties"]["purpose"]["enum"] == [p.value for p in Purpose]


async def test_real_assemblies_validate(four: list[RunningNode]) -> None:
    school, social, bup, police = four
    now = school.node.clock.now()
    child = await add_child(school)
    await add_child(social)
    await add_child(bup)
    plan_id = await create_plan(school, child, [social.node_id, bup.node_id, police.node_id])
    for node in (social, bup):  # police has no record of the child: its invitation waits
        await link_invitation(node, plan_id)
    await add_fragment(school, plan_id, rich_fragment("education", "SKO"))
    await add_fragment(social, plan_id, rich_fragment("social", "SOC", "nurtured"))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", "BUP", "healthy"))
    only_social = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]

    consents = {}
    for name, given in (("both", ("vh1", "vh2")), ("one", ("vh1",))):
        body = consent_body(only_social, now, given=given)
        status, consent = await school.api("POST", f"/plans/{plan_id}/consents", "lead", body)
        assert status == 201, consent
        consents[name] = consent["consent_id"]

    seen: set[tuple[str, str | None]] = set()

    async def assemble(consent_id: str) -> dict[str, Any]:
        status, shared = await school.api(
            "GET", f"/plans/{plan_id}/shared?consent_id={consent_id}", "lead"
        )
        assert status == 200, shared
        errors = sorted(validator().iter_errors(shared), key=lambda e: list(e.path))
        assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)
        seen.update((p["status"], p.get("reason")) for p in shared["participants"])
        return shared

    active = await assemble(consents["both"])
    assert active["status"] == "active" and active["revoked_at"] is None
    assert active["indicators"] and active["actions"] and active["chronology"]
    assert active["next_review"] is not None
    by_node = {p["node_id"]: p for p in active["participants"]}
    assert by_node[social.node_id]["status"] == "included"
    assert by_node[bup.node_id]["status"] == "not_requested"
    assert (by_node[police.node_id]["status"], by_node[police.node_id]["reason"]) == (
        "not_linked",
        "pending",
    )

    one_guardian = await assemble(consents["one"])
    entry = {p["node_id"]: p for p in one_guardian["participants"]}[social.node_id]
    assert entry["status"] == "withheld" and entry["withheld"][0]["reason"] == "consenter_missing"

    status, _ = await school.api("POST", f"/consents/{consents['one']}/revoke", "lead")
    assert status == 201
    revoked = await assemble(consents["one"])
    assert revoked["status"] == "revoked" and revoked["revoked_at"] is not None
    assert revoked["fragments"] == [] and revoked["indicators"] == {}

    assert {s for s, _ in seen} >= {"included", "withheld", "not_requested", "not_linked"}


def test_the_schema_rejects_what_assemble_never_returns() -> None:
    """A few deliberate breaks, so a too-loose schema does not pass silently."""
    minimal: dict[str, Any] = {
        "plan_id": "6f1c2d3e-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
        "assembled_at": "2026-11-23T09:00:00Z",
        "status": "active",
        "revoked_at": None,
        "purpose": "sip",
        "reason": "",
        "child": None,
        "lead_node": "skola.test.se",
        "viewer": {"node_id": "skola.test.se", "role": "lead"},
        "lead_professional": "skola.test.se/u/lead",
        "responsible_node": "skola.test.se",
        "consent": {
            "consent_id": "0b6f2c1e-8c1a-4f7e-9a3d-2f1e7c9b5a40",
            "issued_at": "2026-11-01T00:00:00Z",
            "valid_from": "2026-11-01T00:00:00Z",
            "valid_until": "2027-11-01T00:00:00Z",
            "expired": False,
            "given_by": [],
            "grants": [{"from": "ifo.test.se", "to": ["skola.test.se"], "categories": ["social"]}],
        },
        "agencies": {"skola.test.se": {"name": "Testskolan", "kind": "school"}},
        "participants": [
            {
                "node_id": "skola.test.se",
                "status": "included",
                "fragments": 0,
                "categories": [],
                "role": "lead",
                "viewer": True,
            }
        ],
        "not_shown": [],
        "not_granted": [],
        "summaries": [],
        "indicators": {},
        "actions": [],
        "views": {"child": [], "family": []},
        "chronology": [],
        "next_review": None,
        "fragments": [],
    }
    check = validator()
    assert check.is_valid(minimal)
    broken = [
        {**minimal, "status": "revoked"},  # revoked without revoked_at
        {**minimal, "extra": 1},
        {**minimal, "agencies": {"skola.test.se": {"name": "Testskolan", "kind": "bank"}}},
        {**minimal, "indicators": {"happy": {"needs": [], "goals": [], "actions": []}}},
        {**minimal, "participants": [{"node_id": "ifo.test.se", "status": "invalid"}]},
        {**minimal, "participants": [{"node_id": "ifo.test.se", "status": "lost"}]},
        {
            **minimal,
            "participants": [
                {"node_id": "ifo.test.se", "status": "not_linked", "reason": "bad_signature"}
            ],
        },
    ]
    for doc in broken:
        assert not check.is_valid(doc), doc
