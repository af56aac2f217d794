"""The FHIR export of a real assembled plan, checked by a third-party FHIR model library.

``fhir.resources`` (8.x) ships R4B (4.3) and R5 models but no plain R4 package; R4B's CarePlan,
Goal, Consent, Provenance, Patient, Organization and Bundle are the R4 resources with the same
elements, so the R4B models are what the bundle is validated with. The library checks
required elements, unknown elements and value formats but not code values or reference
targets, so this test walks the validated model and checks those too, from the library's own
metadata (``enum_values``, ``enum_reference_types``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel

from node.services.fhir import (
    FRAGMENT_SYSTEM,
    INDICATOR_SYSTEM,
    PERSONNUMMER_SYSTEM,
    SIGNATURE_EXTENSION,
    shared_plan_to_fhir,
)
from protocol.clock import ManualClock
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode, start_federation, stop_all
from tests.support.plans import CHILD_NAME, CHILD_PNR_DIGITS, shared_plan_world

fhir = pytest.importorskip("fhir.resources.R4B.bundle", reason="fhir.resources (dev extra)")
Bundle = fhir.Bundle


@pytest.fixture
async def trio(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    def sqlite(name: str) -> tuple[str, str]:
        return f"sqlite:///{tmp_path / (name + '.db')}", ""

    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL, BUP], sqlite, clock)
    try:
        yield nodes
    finally:
        await stop_all(nodes)


def check_codes_and_references(model: BaseModel, types: dict[str, str], path: str = "") -> None:
    """Every coded element holds a value the spec allows; every reference resolves within the
    bundle (or names a logical ``type``) to a resource type the element allows."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        extra: dict[str, Any] = (
            field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        )
        items = value if isinstance(value, list) else [value]
        allowed_codes = extra.get("enum_values")
        if allowed_codes:
            for item in items:
                assert item in allowed_codes, f"{path}.{name}: {item!r} not in {allowed_codes}"
        allowed_types = extra.get("enum_reference_types")
        if allowed_types and "Resource" not in allowed_types:
            for ref in items:
                if ref.reference is None and ref.type is None:
                    assert ref.display or ref.identifier, f"{path}.{name}: empty reference"
                    continue  # a display-only or identifier-only reference names no type
                target = types.get(ref.reference) if ref.reference else ref.type
                assert target, f"{path}.{name}: {ref.reference} is not in the bundle"
                assert target in allowed_types, f"{path}.{name}: {target} not in {allowed_types}"
        for item in items:
            if isinstance(item, BaseModel):
                check_codes_and_references(item, types, f"{path}.{name}")


def validate(bundle: dict[str, Any]) -> Any:
    """Parse with fhir.resources (raises on any schema error) and check codes and references."""
    model = Bundle.model_validate(bundle)
    types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle["entry"]}
    assert len(types) == len(bundle["entry"]), "fullUrls are unique"
    check_codes_and_references(model, types)
    return model


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


async def test_assembled_plan_exports_as_valid_fhir(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, consent_id = await shared_plan_world(school, social, bup)
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200, shared
    bundle = shared_plan_to_fhir(shared)
    validate(bundle)
    assert bundle["type"] == "collection"
    assert bundle["timestamp"] == shared["assembled_at"]

    (careplan,) = resources(bundle, "CarePlan")
    (patient,) = resources(bundle, "Patient")
    (consent,) = resources(bundle, "Consent")
    assert careplan["status"] == "active" and careplan["intent"] == "plan"
    assert careplan["subject"]["reference"] == f"urn:uuid:{patient['id']}"
    assert careplan["identifier"] == [
        {"system": careplan["identifier"][0]["system"], "value": plan_id}
    ]
    assert patient["name"] == [{"use": "usual", "text": CHILD_NAME}]
    assert patient["identifier"] == [
        {"use": "official", "system": PERSONNUMMER_SYSTEM, "value": CHILD_PNR_DIGITS}
    ]

    # activities: one per action, status mapped, period and performer kept
    assert len(careplan["activity"]) == len(shared["actions"]) == 12
    by_text = {a["detail"]["description"]: a["detail"] for a in careplan["activity"]}
    planned = by_text["Insats planerad SOC-M"]
    assert planned["status"] == "scheduled"
    assert planned["scheduledPeriod"] == {"start": "2026-12-01", "end": "2027-03-01"}
    assert planned["performer"][0] == {"display": "Kurator SOC-M"}
    assert planned["performer"][1]["display"] == social.node_id
    assert by_text["Insats pågår SOC-M"]["status"] == "in-progress"
    assert by_text["Insats pågår SOC-M"]["scheduledPeriod"] == {"start": "2026-11-01"}
    assert by_text["Insats klar SOC-M"]["status"] == "completed"
    assert "scheduledPeriod" not in by_text["Insats klar SOC-M"]
    assert by_text["Insats avbruten SOC-M"]["status"] == "cancelled"

    # goals: linked from the CarePlan, with due date and indicator; activities link their goals
    goals = resources(bundle, "Goal")
    assert {g["description"]["text"] for g in goals} == {"Mål SKO-M", "Mål SOC-M", "Mål BUP-M"}
    assert {r["reference"] for r in careplan["goal"]} == {f"urn:uuid:{g['id']}" for g in goals}
    assert all(g["target"] == [{"dueDate": "2027-06-01"}] for g in goals)
    soc_goal = next(g for g in goals if g["description"]["text"] == "Mål SOC-M")
    assert soc_goal["category"][0]["coding"][0] == {
        "system": INDICATOR_SYSTEM,
        "code": "nurtured",
        "display": "Omvårdad",
    }
    assert planned["goal"] == [{"reference": f"urn:uuid:{soc_goal['id']}"}]

    # consent
    assert consent["status"] == "active"
    assert consent["identifier"][0]["value"] == consent_id
    assert consent["provision"]["period"] == {
        "start": shared["consent"]["valid_from"],
        "end": shared["consent"]["valid_until"],
    }
    assert consent["patient"]["reference"] == f"urn:uuid:{patient['id']}"

    # one Provenance per fragment, targeting the CarePlan, with what the lead verified
    provenances = resources(bundle, "Provenance")
    assert len(provenances) == len(shared["fragments"]) == 3
    for prov, fragment in zip(
        sorted(provenances, key=lambda p: p["entity"][0]["what"]["identifier"]["value"]),
        sorted(shared["fragments"], key=lambda f: f["fragment_id"]),
        strict=True,
    ):
        assert prov["recorded"] == shared["assembled_at"]
        assert prov["target"][0]["reference"] == f"urn:uuid:{careplan['id']}"
        assert prov["agent"][0]["who"]["display"] == fragment["origin"]
        assert prov["entity"][0]["what"]["identifier"] == {
            "system": FRAGMENT_SYSTEM,
            "value": fragment["fragment_id"],
        }
        (ext,) = prov["extension"]
        assert ext["url"] == SIGNATURE_EXTENSION
        values = {
            e["url"]: next(v for k, v in e.items() if k.startswith("value"))
            for e in ext["extension"]
        }
        assert values["keyId"] == fragment["key_id"]
        assert values["verified"] is True
        assert "signature" not in prov  # no signature bytes in the shared plan: none invented

    assert "Intern anteckning" not in str(bundle)

    # a second export of the same plan names the same resources
    _, again = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    ids = {e["fullUrl"] for e in bundle["entry"]}
    assert {e["fullUrl"] for e in shared_plan_to_fhir(again)["entry"]} == ids


async def test_personnummer_can_be_left_out(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, _ = await shared_plan_world(school, social, bup)
    _, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    bundle = shared_plan_to_fhir(shared, include_personnummer=False)
    validate(bundle)
    (patient,) = resources(bundle, "Patient")
    assert "identifier" not in patient
    assert CHILD_PNR_DIGITS not in str(bundle)


async def test_revoked_plan_exports_as_revoked(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, consent_id = await shared_plan_world(school, social, bup)
    status, body = await school.api("POST", f"/consents/{consent_id}/revoke", "lead")
    assert status == 201, body
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200 and shared["status"] == "revoked"
    bundle = shared_plan_to_fhir(shared)
    validate(bundle)
    (careplan,) = resources(bundle, "CarePlan")
    (consent,) = resources(bundle, "Consent")
    assert careplan["status"] == "revoked"
    assert consent["status"] == "inactive"
    assert "activity" not in careplan and resources(bundle, "Provenance") == []


async def test_fhir_endpoint(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, _ = await shared_plan_world(school, social, bup)
    headers = {"Authorization": f"Bearer {school.tokens['lead']}"}
    url = f"{school.url}/api/v1/plans/{plan_id}/shared.fhir"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/fhir+json"
        bundle = await resp.json(content_type=None)
    validate(bundle)
    assert len(resources(bundle, "Provenance")) == 3
    status, _ = await school.api("GET", f"/plans/{plan_id}/shared.fhir", "prof")
    assert status == 403
    status, problem = await school.api(
        "GET", "/plans/00000000-0000-4000-8000-000000000000/shared.fhir", "lead"
    )
    assert status == 404 and problem["status"] == 404


def test_the_checks_beyond_the_library_do_catch_bad_codes_and_targets() -> None:
    """fhir.resources accepts these; the walk above must not."""

    def bundle(status: str, subject: str) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                    "resource": {
                        "resourceType": "CarePlan",
                        "status": status,
                        "intent": "plan",
                        "subject": {"reference": subject},
                    },
                },
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
                    "resource": {"resourceType": "Organization", "name": "x"},
                },
            ],
        }

    organization = "urn:uuid:00000000-0000-4000-8000-000000000002"
    Bundle.model_validate(bundle("bogus", organization))  # the library lets both through
    with pytest.raises(AssertionError, match="bogus"):
        validate(bundle("bogus", organization))
    with pytest.raises(AssertionError, match="Organization not in"):
        validate(bundle("active", organization))
    with pytest.raises(AssertionError, match="not in the bundle"):
        validate(bundle("active", "urn:uuid:00000000-0000-4000-8000-00000000dead"))
