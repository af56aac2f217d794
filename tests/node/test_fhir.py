"""The FHIR export of real assembled plans, checked by two independent FHIR validators.

1. ``fhir.resources`` (8.x) ships R4B (4.3) and R5 models but no plain R4 package; R4B's
   CarePlan, Goal, Consent, Provenance, Patient, Organization, List and Bundle are the R4
   resources with the same elements, so the R4B models are what the bundle is parsed with. The
   library checks required elements, unknown elements and value formats but not code values or
   reference targets, so ``validate`` walks the parsed model and checks those too, from the
   library's own metadata (``enum_values``, ``enum_reference_types``).
2. ``tests/fhir_validator/validate.js`` under Node.js: the npm ``fhir`` package's validator,
   the FHIR JSON rules (no empty arrays, objects or strings) and every R4 invariant of every
   resource and data type, evaluated with the npm ``fhirpath`` package (ele-1, ext-1, txt-1/2,
   per-1, dom-6 ... - warnings count too). These tests skip only when ``node`` is missing; a
   missing install of the validator fails them (``.ci/run`` installs it).

Every bundle a test exports goes through ``check``: both validators, no empty value in any
resource, and every extension and system URL of ours published under ``schemas/fhir/``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import BaseModel

from node.config import AgencySection, ConfigError, load_config
from node.services.fhir import (
    ACT_CODE,
    BASE,
    CATEGORY_SYSTEM,
    CONSENT_SCOPE,
    FRAGMENT_SYSTEM,
    HSA_SYSTEM,
    INDICATOR_SYSTEM,
    LOINC,
    NODE_SYSTEM,
    ORG_NUMBER_SYSTEM,
    PARTICIPANT_STATUS_SYSTEM,
    PARTICIPANT_TYPE,
    PARTICIPATION_TYPE,
    PERSONNUMMER_SYSTEM,
    PURPOSE_SYSTEM,
    REVOKED_EXTENSION,
    SIGNATURE_EXTENSION,
    prune,
    shared_plan_to_fhir,
)
from protocol.clock import ManualClock
from tests.support.federation import (
    BUP,
    POLICE,
    SCHOOL,
    SOCIAL,
    RunningNode,
    sqlite_federation,
)
from tests.support.plans import (
    CHILD_NAME,
    CHILD_PNR_DIGITS,
    add_child,
    add_fragment,
    consent_body,
    create_linked_plan,
    record_consent,
    rich_fragment,
    shared_plan_world,
)

pytestmark = pytest.mark.slow  # most tests run the second FHIR validator (Node.js) per export

fhir = pytest.importorskip("fhir.resources.R4B.bundle", reason="fhir.resources (dev extra)")
Bundle = fhir.Bundle

REPO = Path(__file__).resolve().parents[2]
VALIDATOR = REPO / "tests" / "fhir_validator"
DEFINITIONS = REPO / "schemas" / "fhir"
# established systems the export may write (not ours, so not published here)
EXTERNAL_SYSTEMS = {
    PERSONNUMMER_SYSTEM,
    ORG_NUMBER_SYSTEM,
    HSA_SYSTEM,
    PARTICIPANT_TYPE,
    PARTICIPATION_TYPE,
    ACT_CODE,
    CONSENT_SCOPE,
    LOINC,
}
NOT_IN_VALUE_SET = re.compile(r'^Code "([^"]+)" \(([^)]+)\) not found in value set$')


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
async def trio(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with sqlite_federation(tmp_path, [SCHOOL, SOCIAL, BUP], clock) as nodes:
        yield nodes


@pytest.fixture
async def four(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with sqlite_federation(tmp_path, [SCHOOL, SOCIAL, BUP, POLICE], clock) as nodes:
        yield nodes


# --- the checks -----------------------------------------------------------------------------


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


def second_validator(resource: dict[str, Any]) -> dict[str, Any]:
    """tests/fhir_validator/validate.js's report on ``resource``."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is not installed: the second FHIR validator needs it")
    if not (VALIDATOR / "node_modules" / "fhirpath").is_dir():
        pytest.fail(
            "the second FHIR validator is not installed: run "
            "'npm ci --prefix tests/fhir_validator' (.ci/run does)"
        )
    result = subprocess.run(
        [node, str(VALIDATOR / "validate.js"), "-"],
        input=json.dumps(resource),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stdout + result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def tolerated(warning: dict[str, Any]) -> bool:
    """The one kind of warning a correct export gets: a code of ours (published and checked in
    ``check_published``) or v3-ActCode OPTIN (the R4 Consent examples' policy rule) where the
    binding is only example or extensible, so FHIR's own value set does not list it."""
    match = NOT_IN_VALUE_SET.match(warning["message"])
    if warning["source"] != "fhir" or match is None:
        return False
    code, system = match.groups()
    return system.startswith(BASE) or (system, code) == (ACT_CODE, "OPTIN")


def empties(value: Any, where: str = "") -> list[str]:
    """Where ``value`` holds null, an empty array, object or (blank) string."""
    if value in (None, [], {}) or (isinstance(value, str) and not value.strip()):
        return [where or "(root)"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in empties(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in empties(v, f"{where}[{i}]")]
    return []


@cache
def published() -> dict[str, dict[str, Any]]:
    """The conformance resources in schemas/fhir/, by canonical URL (a NamingSystem by its
    unique id)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(DEFINITIONS.glob("*.json")):
        resource = json.loads(path.read_text(encoding="utf-8"))
        if resource["resourceType"] == "NamingSystem":
            for unique in resource["uniqueId"]:
                found[unique["value"]] = resource
        else:
            found[resource["url"]] = resource
    return found


def walk(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)


def check_published(bundle: dict[str, Any]) -> set[str]:
    """Every extension, code system and identifier system of ours the bundle writes has its
    definition in schemas/fhir/ under that URL, with each code (and its display) and each
    sub-extension; other systems are the established ones listed above. Returns our URLs."""
    ours: set[str] = set()
    for item in walk(bundle):
        for ext in item.get("extension", []):
            if "://" not in ext["url"]:
                continue  # a sub-extension: checked with its parent below
            definition = published().get(ext["url"])
            assert definition and definition["resourceType"] == "StructureDefinition", ext["url"]
            slices = {
                e["sliceName"] for e in definition["differential"]["element"] if e.get("sliceName")
            }
            assert {sub["url"] for sub in ext.get("extension", [])} <= slices, ext["url"]
            ours.add(ext["url"])
        system = item.get("system")
        if not isinstance(system, str) or ("code" not in item and "value" not in item):
            continue
        if not system.startswith(BASE):
            assert system in EXTERNAL_SYSTEMS, f"unknown system {system}"
            continue
        definition = published().get(system)
        assert definition is not None, f"{system} is not published in schemas/fhir/"
        ours.add(system)
        if "code" in item:
            assert definition["resourceType"] == "CodeSystem", system
            concepts = {c["code"]: c["display"] for c in definition["concept"]}
            assert item["code"] in concepts, f"{system}: no code {item['code']}"
            assert item.get("display", concepts[item["code"]]) == concepts[item["code"]]
        else:
            assert definition["resourceType"] == "NamingSystem", system
    return ours


def check(bundle: dict[str, Any]) -> Any:
    """Both validators, the pruning rule on every resource, the published definitions."""
    model = validate(bundle)
    report = second_validator(bundle)
    assert report["errors"] == [], json.dumps(report["errors"], indent=1)
    assert report["unevaluated"] == [], report["unevaluated"]
    assert [w for w in report["warnings"] if not tolerated(w)] == []
    assert report["invariants"] > 1000  # every resource's invariants were evaluated
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert empties(resource) == [], f"{resource['resourceType']}: {empties(resource)}"
        assert resource["text"]["status"] == "generated"
    check_published(bundle)
    return model


def resources(bundle: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def by_id(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["fullUrl"]: e["resource"] for e in bundle["entry"]}


def org_names(bundle: dict[str, Any]) -> dict[str, str]:
    """Node id -> Organization name."""
    return {
        next(i["value"] for i in o["identifier"] if i["system"] == NODE_SYSTEM): o["name"]
        for o in resources(bundle, "Organization")
    }


async def export(
    lead: RunningNode, plan_id: str, consent_id: str | None = None, **options: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The shared plan as the lead assembles it now, and its FHIR export."""
    query = f"?consent_id={consent_id}" if consent_id else ""
    status, shared = await lead.api("GET", f"/plans/{plan_id}/shared{query}", "lead")
    assert status == 200, shared
    return shared, shared_plan_to_fhir(shared, **options)


# --- the export -----------------------------------------------------------------------------


async def test_assembled_plan_exports_as_valid_fhir(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, consent_id = await shared_plan_world(school, social, bup)
    shared, bundle = await export(school, plan_id)
    check(bundle)
    assert bundle["type"] == "collection"
    assert bundle["timestamp"] == shared["assembled_at"]

    (careplan,) = resources(bundle, "CarePlan")
    (patient,) = resources(bundle, "Patient")
    (consent,) = resources(bundle, "Consent")
    refs = by_id(bundle)
    assert careplan["status"] == "active" and careplan["intent"] == "plan"
    assert careplan["subject"]["reference"] == f"urn:uuid:{patient['id']}"
    assert [i["value"] for i in careplan["identifier"]] == [f"{plan_id}/{consent_id}"]
    assert patient["name"] == [{"use": "usual", "text": CHILD_NAME}]
    assert patient["identifier"] == [
        {"use": "official", "system": PERSONNUMMER_SYSTEM, "value": CHILD_PNR_DIGITS}
    ]

    # agencies by the names in their node documents; the responsible one is the author
    assert org_names(bundle) == {
        school.node_id: SCHOOL[1],
        social.node_id: SOCIAL[1],
        bup.node_id: BUP[1],
    }
    assert refs[careplan["author"]["reference"]]["name"] == SCHOOL[1]
    assert "extension" not in careplan
    assert {refs[c["reference"]]["name"] for c in careplan["contributor"]} == {
        SCHOOL[1],
        SOCIAL[1],
        BUP[1],
    }

    # activities: one per action, status mapped, period and performer kept
    assert len(careplan["activity"]) == len(shared["actions"]) == 12
    by_text = {a["detail"]["description"]: a["detail"] for a in careplan["activity"]}
    planned = by_text["Insats planerad SOC-M"]
    assert planned["status"] == "scheduled"
    assert planned["scheduledPeriod"] == {"start": "2026-12-01", "end": "2027-03-01"}
    assert planned["performer"][0] == {"display": "Kurator SOC-M"}
    assert refs[planned["performer"][1]["reference"]]["name"] == SOCIAL[1]
    assert by_text["Insats pågår SOC-M"]["status"] == "in-progress"
    assert by_text["Insats pågår SOC-M"]["scheduledPeriod"] == {"start": "2026-11-01"}
    assert by_text["Insats klar SOC-M"]["status"] == "completed"
    assert "scheduledPeriod" not in by_text["Insats klar SOC-M"]
    assert by_text["Insats avbruten SOC-M"]["status"] == "cancelled"
    # notes are authored by the agency they came from
    summary = next(n for n in careplan["note"] if n["text"] == "Sammanfattning SOC-M")
    assert refs[summary["authorReference"]["reference"]]["name"] == SOCIAL[1]

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
    assert consent["dateTime"] == shared["consent"]["issued_at"]
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
        author, assembler = prov["agent"]
        assert (
            refs[author["who"]["reference"]]["name"]
            == shared["agencies"][fragment["origin"]]["name"]
        )
        assert assembler["who"]["identifier"]["value"] == shared["lead_professional"]
        assert refs[assembler["onBehalfOf"]["reference"]]["name"] == SCHOOL[1]
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
    _, again = await export(school, plan_id)
    assert {e["fullUrl"] for e in again["entry"]} == {e["fullUrl"] for e in bundle["entry"]}


async def test_consent_states_its_grants_date_and_revocation(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    child = await add_child(school)
    await add_child(social)
    await add_child(bup)
    plan_id = await create_linked_plan(school, child, [social, bup])
    await add_fragment(social, plan_id, rich_fragment("social", "SOC"))
    await add_fragment(bup, plan_id, rich_fragment("mental_health", "BUP", "healthy"))
    grants = [
        {"from": social.node_id, "to": [school.node_id], "categories": ["social", "family"]},
        {"from": bup.node_id, "to": [school.node_id, social.node_id], "categories": ["health"]},
        {"from": social.node_id, "to": [bup.node_id], "categories": ["family"]},
    ]
    body = consent_body(grants, school.node.clock.now())
    status, recorded = await school.api("POST", f"/plans/{plan_id}/consents", "lead", body)
    assert status == 201, recorded

    shared, bundle = await export(school, plan_id)
    (consent,) = resources(bundle, "Consent")
    refs = by_id(bundle)
    assert consent["dateTime"] == recorded["statement"]["issued_at"]
    assert consent["policyRule"]["coding"][0]["code"] == "OPTIN"
    root = consent["provision"]
    assert "type" not in root  # R4: not permitted in the root rule

    def summary(provision: dict[str, Any]) -> tuple[str, str, str, list[str], list[str]]:
        (custodian, recipient) = provision["actor"]
        assert custodian["role"]["coding"][0] == {
            "system": PARTICIPATION_TYPE,
            "code": "CST",
            "display": "custodian",
        }
        assert recipient["role"]["coding"][0]["code"] == "IRCP"
        assert [p["code"] for p in provision["purpose"]] == ["sip"]
        assert all(p["system"] == PURPOSE_SYSTEM for p in provision["purpose"])
        assert all(c["coding"][0]["system"] == CATEGORY_SYSTEM for c in provision["code"])
        return (
            provision["type"],
            refs[custodian["reference"]["reference"]]["name"],
            refs[recipient["reference"]["reference"]]["name"],
            [c["coding"][0]["code"] for c in provision["code"]],
            [c["text"] for c in provision["code"]],
        )

    # what each agency may release to the lead; social's grant to BUP is the basis of nothing
    # in this bundle
    social_labels = ["Socialtjänst", "Familj och hem"]
    assert [summary(p) for p in root["provision"]] == [
        ("permit", SOCIAL[1], SCHOOL[1], ["social", "family"], social_labels),
        ("permit", BUP[1], SCHOOL[1], ["health"], ["Hälsa och sjukvård"]),
    ]
    assert "extension" not in consent

    status, _ = await school.api("POST", f"/consents/{recorded['consent_id']}/revoke", "lead")
    assert status == 201
    shared, revoked = await export(school, plan_id)
    (consent,) = resources(revoked, "Consent")
    assert consent["status"] == "inactive"
    assert consent["extension"] == [
        {"url": REVOKED_EXTENSION, "valueDateTime": shared["revoked_at"]}
    ]
    assert len(consent["provision"]["provision"]) == 2  # what was consented stays on record
    check(bundle)
    check(revoked)


async def test_personnummer_can_be_left_out(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, _ = await shared_plan_world(school, social, bup)
    _, bundle = await export(school, plan_id, include_personnummer=False)
    (patient,) = resources(bundle, "Patient")
    assert "identifier" not in patient
    assert CHILD_PNR_DIGITS not in json.dumps(bundle)  # nor in the narrative
    check(bundle)


async def export_ended(
    trio: list[RunningNode], ending: Callable[[str, str], str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The lead's export after the lead posted to ``ending(plan_id, consent_id)``."""
    school, social, bup = trio
    plan_id, consent_id = await shared_plan_world(school, social, bup)
    status, body = await school.api("POST", ending(plan_id, consent_id), "lead")
    assert status == 201, body
    return await export(school, plan_id)


async def test_revoked_plan_exports_as_revoked(trio: list[RunningNode]) -> None:
    shared, bundle = await export_ended(trio, lambda _, consent: f"/consents/{consent}/revoke")
    assert shared["status"] == "revoked"
    (careplan,) = resources(bundle, "CarePlan")
    (consent,) = resources(bundle, "Consent")
    assert careplan["status"] == "revoked"
    assert consent["status"] == "inactive"
    assert "contributor" not in careplan
    assert "activity" not in careplan and resources(bundle, "Provenance") == []
    check(bundle)  # no contributor: [] (nobody's content is included) or any other empty value


async def test_closed_plan_exports_as_completed(trio: list[RunningNode]) -> None:
    """A closed plan (SPEC §7.11) asks no one: its CarePlan is completed, and says so."""
    shared, bundle = await export_ended(trio, lambda plan, _: f"/plans/{plan}/close")
    assert shared["status"] == "closed"
    (careplan,) = resources(bundle, "CarePlan")
    assert careplan["status"] == "completed"
    assert "(planen är avslutad)" in careplan["text"]["div"]
    # no one is asked: the lead's own records are the only contribution
    lead = trio[0].node_id
    assert [c["display"] for c in careplan["contributor"]] == [org_names(bundle)[lead]]
    check(bundle)


async def test_a_revoked_careplan_never_becomes_active_again(trio: list[RunningNode]) -> None:
    """A new consent after a revocation is a new CarePlan; the revoked one stays revoked."""
    school, social, bup = trio
    plan_id, first = await shared_plan_world(school, social, bup)
    _, before = await export(school, plan_id)
    status, _ = await school.api("POST", f"/consents/{first}/revoke", "lead")
    assert status == 201
    _, revoked = await export(school, plan_id)
    grants = {social.node_id: ["social"]}
    second = await record_consent(school, plan_id, grants, school.node.clock.now())
    _, renewed = await export(school, plan_id)
    _, old_again = await export(school, plan_id, first)

    def careplan(bundle: dict[str, Any]) -> tuple[str, str, list[str]]:
        (plan,) = resources(bundle, "CarePlan")
        return plan["id"], plan["status"], [i["value"] for i in plan["identifier"]]

    first_id, status, identifiers = careplan(before)
    assert status == "active" and identifiers == [f"{plan_id}/{first}"]
    assert careplan(revoked) == (first_id, "revoked", identifiers)
    assert careplan(old_again) == (first_id, "revoked", identifiers)
    renewed_id, status, renewed_identifiers = careplan(renewed)
    assert status == "active" and renewed_id != first_id
    assert renewed_identifiers == [f"{plan_id}/{second}"]
    # nothing that follows the consent's state shares an id across the two consents
    consent_bound = {"CarePlan", "Goal", "Consent", "Provenance", "List"}

    def ids(bundle: dict[str, Any]) -> set[str]:
        return {
            e["fullUrl"] for e in bundle["entry"] if e["resource"]["resourceType"] in consent_bound
        }

    assert ids(before).isdisjoint(ids(renewed))
    for bundle in (revoked, renewed, old_again):
        check(bundle)


async def test_an_expired_consent_exports_as_revoked(
    trio: list[RunningNode], clock: ManualClock
) -> None:
    school, social, bup = trio
    plan_id, _ = await shared_plan_world(school, social, bup)
    clock.advance(366 * 24 * 3600)  # consent_body: valid for a year
    shared, bundle = await export(school, plan_id)
    assert shared["consent"]["expired"] is True
    (careplan,) = resources(bundle, "CarePlan")
    (consent,) = resources(bundle, "Consent")
    assert (careplan["status"], consent["status"]) == ("revoked", "inactive")
    assert {g["lifecycleStatus"] for g in resources(bundle, "Goal")} == {"cancelled"}
    check(bundle)


async def test_an_agency_left_out_by_the_consent_is_named_nowhere(
    four: list[RunningNode],
) -> None:
    """The police take part in the plan, but the family consented to no police information:
    the bundle must not tell a receiving record that the police are involved with the child."""
    school, social, bup, police = four
    child = await add_child(school)
    for node in (social, bup, police):
        await add_child(node)
    plan_id = await create_linked_plan(school, child, [social, bup, police])
    await add_fragment(school, plan_id, rich_fragment("education", "SKO"))
    await add_fragment(social, plan_id, rich_fragment("social", "SOC", "nurtured"))
    await add_fragment(police, plan_id, rich_fragment("police", "POLIS-MARK", "safe"))
    grants = {social.node_id: ["social"], bup.node_id: ["mental_health"]}
    await record_consent(school, plan_id, grants, school.node.clock.now())

    shared, bundle = await export(school, plan_id)
    statuses = {p["node_id"]: p["status"] for p in shared["participants"]}
    assert statuses[police.node_id] == "not_requested"  # it is a participant of the plan
    text = json.dumps(bundle, ensure_ascii=False)
    assert police.node_id not in text and POLICE[1] not in text and "POLIS-MARK" not in text
    assert set(org_names(bundle)) == {school.node_id, social.node_id, bup.node_id}
    # every Organization in the bundle is referenced from it
    referenced = {i["reference"] for i in walk(bundle) if isinstance(i.get("reference"), str)}
    for org in resources(bundle, "Organization"):
        assert f"urn:uuid:{org['id']}" in referenced
    check(bundle)


async def test_an_agency_that_did_not_answer_makes_the_plan_incomplete(
    trio: list[RunningNode],
) -> None:
    school, social, bup = trio
    plan_id, _ = await shared_plan_world(school, social, bup)
    await bup.stop()
    shared, bundle = await export(school, plan_id)
    assert {p["node_id"]: p["status"] for p in shared["participants"]}[bup.node_id] == (
        "unreachable"
    )
    (careplan,) = resources(bundle, "CarePlan")
    assert careplan["status"] == "unknown"  # not "active": the plan's content is not complete
    first = careplan["note"][0]["text"]
    assert first.startswith("Planen är ofullständig") and BUP[1] in first
    assert BUP[1] in careplan["text"]["div"]
    (participants,) = resources(bundle, "List")
    refs = by_id(bundle)
    flags = {
        refs[e["item"]["reference"]]["name"]: e["flag"]["coding"][0]["code"]
        for e in participants["entry"]
    }
    assert flags == {SCHOOL[1]: "included", SOCIAL[1]: "included", BUP[1]: "unreachable"}
    assert participants["entry"][0]["flag"]["coding"][0]["system"] == PARTICIPANT_STATUS_SYSTEM
    check(bundle)

    await bup.start()
    _, complete = await export(school, plan_id)
    check(complete)
    (careplan,) = resources(complete, "CarePlan")
    assert careplan["status"] == "active" and "ofullständig" not in json.dumps(careplan)


async def test_organizations_carry_the_agency_name_and_official_identifiers(
    trio: list[RunningNode],
) -> None:
    school, social, bup = trio
    config = school.node.config
    school.node.config = config.model_copy(
        update={
            "agency": AgencySection(org_number="232100-0131", hsa_id="SE2321000131-E000000000001")
        }
    )
    plan_id, _ = await shared_plan_world(school, social, bup)
    shared, bundle = await export(school, plan_id)
    assert shared["agencies"][school.node_id] == {
        "name": SCHOOL[1],
        "kind": "school",
        "org_number": "2321000131",
        "hsa_id": "SE2321000131-E000000000001",
    }
    orgs = {o["name"]: o for o in resources(bundle, "Organization")}
    assert orgs[SCHOOL[1]]["identifier"] == [
        {"use": "official", "system": ORG_NUMBER_SYSTEM, "value": "2321000131"},
        {"use": "official", "system": HSA_SYSTEM, "value": "SE2321000131-E000000000001"},
        {"use": "usual", "system": NODE_SYSTEM, "value": school.node_id},
    ]
    assert orgs[SCHOOL[1]]["type"][0]["coding"][0]["code"] == "school"
    # a peer's official numbers are not known here: its node id identifies it
    assert orgs[SOCIAL[1]]["identifier"] == [
        {"use": "usual", "system": NODE_SYSTEM, "value": social.node_id}
    ]
    assert orgs[BUP[1]]["type"][0]["coding"][0]["display"] == "Barn- och ungdomspsykiatri (BUP)"
    check(bundle)


def test_agency_identifiers_are_checked_when_the_config_is_read(tmp_path: Path) -> None:
    def config_with(agency: str) -> Path:
        directory = tmp_path / str(len(list(tmp_path.iterdir())))
        directory.mkdir()
        (directory / "barnplan.toml").write_text(
            '[node]\nid = "skola.test.se"\nagency_name = "Testskolan"\nagency_kind = "school"\n'
            f'base_url = "http://127.0.0.1:8400"\n\n[agency]\n{agency}\n',
            encoding="utf-8",
        )
        return directory

    config = load_config(config_with('org_number = "232100-0131"\nhsa_id = "SE2321000131-E1"'))
    assert (config.agency.org_number, config.agency.hsa_id) == ("2321000131", "SE2321000131-E1")
    for bad in (
        'org_number = "232100-0132"',  # check digit
        'org_number = "201503152389"',  # a personnummer, not an organisation number
        'org_number = "200315-2386"',  # a person's ten digits (group below 2), valid Luhn
        'hsa_id = "2321000131-E1"',
        'hsa_id = "SE2321000131-' + "E" * 20 + '"',  # longer than 31 characters
    ):
        with pytest.raises(ConfigError, match="setting agency"):
            load_config(config_with(bad))


async def test_narratives_escape_what_fragments_say(trio: list[RunningNode]) -> None:
    school, social, _ = trio
    child = await add_child(school)
    await add_child(social)
    plan_id = await create_linked_plan(school, child, [social])
    fragment = rich_fragment("social", "SOC", "nurtured")
    markup = '<script>alert("x")</script><b onclick="y">&amp;'
    fragment["content"]["goals"] = [{"what": f"Mål {markup}", "by": "2027-06-01"}]
    await add_fragment(social, plan_id, fragment)
    await record_consent(school, plan_id, {social.node_id: ["social"]}, school.node.clock.now())
    _, bundle = await export(school, plan_id)
    (goal,) = resources(bundle, "Goal")
    assert goal["description"]["text"] == f"Mål {markup}"  # the data itself is kept as written
    div = goal["text"]["div"]
    assert "<script" not in div and "<b " not in div and "&amp;amp;" in div
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in div
    for entry in bundle["entry"]:
        assert "<script" not in entry["resource"]["text"]["div"]
    check(bundle)  # txt-1: only plain XHTML formatting in every narrative


async def test_blank_texts_leave_no_empty_values(trio: list[RunningNode]) -> None:
    """A fragment may leave texts empty; the export then leaves the elements out (or, where
    FHIR requires one, says what the item is) rather than writing an empty value."""
    school, social, _ = trio
    child = await add_child(school)
    await add_child(social)
    plan_id = await create_linked_plan(school, child, [social])
    await add_fragment(
        social,
        plan_id,
        {
            "category": "social",
            "indicators": ["nurtured"],
            "content": {
                "summary": "  ",
                "needs": [{"what": ""}],
                "goals": [{"what": " "}],
                "actions": [{"what": "", "who": "", "status": "planned"}],
            },
        },
    )
    await record_consent(school, plan_id, {social.node_id: ["social"]}, school.node.clock.now())
    _, bundle = await export(school, plan_id)
    (goal,) = resources(bundle, "Goal")
    assert goal["description"]["text"] == "Mål (Omvårdad)"
    (careplan,) = resources(bundle, "CarePlan")
    (activity,) = careplan["activity"]
    assert "description" not in activity["detail"]
    assert [p["display"] for p in activity["detail"]["performer"]] == [SOCIAL[1]]
    check(bundle)


def test_the_pruning_rule() -> None:
    assert prune(
        {
            "a": [],
            "b": {},
            "c": "",
            "d": " \n",
            "e": None,
            "f": [{"g": [{}], "h": None}, {"i": False}, 0, "x"],
            "j": {"k": {"l": [""]}},
        }
    ) == {"f": [{"i": False}, 0, "x"]}


async def test_fhir_endpoint(trio: list[RunningNode]) -> None:
    school, social, bup = trio
    plan_id, _ = await shared_plan_world(school, social, bup)
    headers = {"Authorization": f"Bearer {school.tokens['lead']}"}
    url = f"{school.url}/api/v1/plans/{plan_id}/shared.fhir"
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/fhir+json"
        bundle = await resp.json(content_type=None)
    check(bundle)
    assert len(resources(bundle, "Provenance")) == 3
    status, _ = await school.api("GET", f"/plans/{plan_id}/shared.fhir", "prof")
    assert status == 403
    status, problem = await school.api(
        "GET", "/plans/00000000-0000-4000-8000-000000000000/shared.fhir", "lead"
    )
    assert status == 404 and problem["status"] == 404


# --- the published definitions and the validators themselves ---------------------------------


async def test_every_extension_and_system_the_export_writes_is_published(
    trio: list[RunningNode],
) -> None:
    school, social, bup = trio
    plan_id, consent_id = await shared_plan_world(school, social, bup)
    await bup.stop()
    _, incomplete = await export(school, plan_id)
    await school.api("POST", f"/consents/{consent_id}/revoke", "lead")
    _, revoked = await export(school, plan_id)
    written = check_published(incomplete) | check_published(revoked)
    # the whole vocabulary of ours is in use, and published under the URL the export writes
    assert written == set(published())


def test_published_definitions_are_current_and_valid_fhir() -> None:
    result = subprocess.run(
        [sys.executable, str(DEFINITIONS / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    definitions = [json.loads(p.read_text("utf-8")) for p in sorted(DEFINITIONS.glob("*.json"))]
    assert {d["resourceType"] for d in definitions} == {
        "StructureDefinition",
        "CodeSystem",
        "NamingSystem",
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": d.get("url", f"{BASE}/NamingSystem/{d['id']}"), "resource": d}
            for d in definitions
        ],
    }
    Bundle.model_validate(bundle)
    report = second_validator(bundle)
    assert report["errors"] == [] and report["warnings"] == [], report
    # fhirpath.js compiles FHIR regular expressions as JavaScript ones; these three of
    # ElementDefinition's (on element ids, slice names and paths) are not valid JavaScript
    assert {u["key"] for u in report["unevaluated"]} <= {"eld-16", "eld-19", "eld-20"}


def test_the_second_validator_finds_what_the_export_must_not_do() -> None:
    """So that a clean report means something: each fault gets its own finding."""
    report = second_validator(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                    "resource": {
                        "resourceType": "CarePlan",
                        "text": {
                            "status": "generated",
                            "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>x'
                            "</script></div>",
                        },
                        "status": "bogus",
                        "intent": "plan",
                        "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000002"},
                        "contributor": [],
                        "period": {"start": "2027-01-01", "end": "2026-01-01"},
                        "extension": [{"url": f"{BASE}/StructureDefinition/x"}],
                    },
                },
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
                    "resource": {"resourceType": "Patient", "name": [{}], "gender": ""},
                },
            ],
        }
    )
    found = {(e["source"], e.get("key"), e["message"]) for e in report["errors"]}
    keys = {key for _, key, _ in found}
    assert {"txt-1", "ext-1", "per-1", "ele-1"} <= keys
    messages = {m for _, _, m in found}
    assert "empty array" in messages and "empty object" in messages
    assert "empty or blank string" in messages
    assert any(s == "fhir" and "bogus" in m for s, _, m in found)
    assert [w["key"] for w in report["warnings"]] == ["dom-6"]  # the Patient has no narrative
    assert report["valid"] is False
