"""Export of an assembled shared plan as a FHIR R4 Bundle (CarePlan, Goal, Consent, Provenance).

Why FHIR: regions' health records and municipal case systems can import a FHIR CarePlan, so the
lead professional can hand the shared plan to such a system without anyone re-typing it. The
export is a pure function of the dict ``assembly.assemble`` returns: it adds nothing the shared
plan does not hold, and it is built for one request and never stored (DESIGN.md invariant 1).

Mapping (resources are ``urn:uuid`` entries of a ``collection`` Bundle; ids are UUIDv5 of the
plan id, so a re-export names the same resources):

* **Patient** - the child as the lead node knows it (name). Identity stays with the lead: the
  personnummer is included only because this bundle is served to the lead professional alone
  (``GET /api/v1/plans/{id}/shared.fhir``, role lead) and a receiving record system needs it to
  find its patient. It uses the official Swedish system ``urn:oid:1.2.752.129.2.1.3.1`` (12
  digits). Pass ``include_personnummer=False`` for anything family-facing or leaving the
  professional setting: then the Patient carries the name only.
* **Organization** - one per participating node (node id as identifier and name).
* **CarePlan** - status ``active``, or ``revoked`` when the consent was withdrawn; intent
  ``plan``; activities from the plan's actions (planned->scheduled, ongoing->in-progress,
  done->completed, cancelled->cancelled; scheduledPeriod from start/end; performer display =
  who, plus the origin agency); goals linked via ``CarePlan.goal``; summaries, needs, the
  child's and family's views, the chronology and the next review as notes, each naming its
  origin node.
* **Goal** - description, ``target.dueDate``, the SHANARRI indicator as category.
* **Consent** - ``active`` unless revoked or expired (then ``inactive``); scope
  patient-privacy; LOINC 59284-0; provision period = valid_from..valid_until.
* **Provenance** - one per fragment: target the CarePlan (and the Goals from that fragment),
  recorded = assembled_at, agent = the origin Organization (author) and the lead (assembler),
  entity = the fragment id and version. FHIR ``Provenance.signature`` is deliberately not used:
  the shared plan does not carry the Ed25519 signature bytes or their signing time, and
  inventing either would be dishonest. What the lead did verify (algorithm, key id, verified)
  goes into the ``fragment-signature`` extension instead.
"""

from __future__ import annotations

import uuid
from typing import Any

from protocol.codes import LABELS

PERSONNUMMER_SYSTEM = "urn:oid:1.2.752.129.2.1.3.1"
BASE = "https://barnplan.se/fhir"
NODE_SYSTEM = f"{BASE}/NamingSystem/node-id"
PLAN_SYSTEM = f"{BASE}/NamingSystem/plan-id"
CONSENT_SYSTEM = f"{BASE}/NamingSystem/consent-id"
FRAGMENT_SYSTEM = f"{BASE}/NamingSystem/fragment-id"
PROFESSIONAL_SYSTEM = f"{BASE}/NamingSystem/professional"
CONSENTER_SYSTEM = f"{BASE}/NamingSystem/consenter"
INDICATOR_SYSTEM = f"{BASE}/CodeSystem/indicator"
PURPOSE_SYSTEM = f"{BASE}/CodeSystem/purpose"
SIGNATURE_EXTENSION = f"{BASE}/StructureDefinition/fragment-signature"
RESPONSIBLE_EXTENSION = f"{BASE}/StructureDefinition/responsible-organization"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"

ACTIVITY_STATUS = {
    "planned": "scheduled",
    "ongoing": "in-progress",
    "done": "completed",
    "cancelled": "cancelled",
}
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)


def _id(plan_id: str, *parts: str) -> str:
    """A stable resource id: the same plan and item give the same id on every export."""
    return str(uuid.uuid5(_NAMESPACE, "/".join((plan_id, *parts))))


def _ref(resource_id: str, display: str | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"reference": f"urn:uuid:{resource_id}"}
    if display:
        ref["display"] = display
    return ref


def _indicator_label(slot: str) -> str:
    return LABELS["indicator"].get(slot, ("Utan indikator", "Unassigned"))[0]


def _indicator_concept(slot: str) -> dict[str, Any]:
    if slot not in LABELS["indicator"]:
        return {"text": _indicator_label(slot)}
    return {
        "coding": [{"system": INDICATOR_SYSTEM, "code": slot, "display": _indicator_label(slot)}],
        "text": _indicator_label(slot),
    }


def _period(start: str | None, end: str | None) -> dict[str, str] | None:
    period = {k: v for k, v in (("start", start), ("end", end)) if v}
    return period or None


def _note(text: str, origin: str | None = None, time: str | None = None) -> dict[str, Any]:
    note: dict[str, Any] = {"text": text}
    if origin:
        note["authorString"] = origin
    if time:
        note["time"] = time
    return note


def _patient(plan: dict[str, Any], patient_id: str, include_personnummer: bool) -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": patient_id}
    child = plan.get("child")
    if child:
        pnr = "".join(ch for ch in str(child.get("personnummer") or "") if ch.isdigit())
        if include_personnummer and len(pnr) == 12:
            patient["identifier"] = [
                {"use": "official", "system": PERSONNUMMER_SYSTEM, "value": pnr}
            ]
        if child.get("name"):
            patient["name"] = [{"use": "usual", "text": child["name"]}]
    return patient


def _goals(
    plan: dict[str, Any], patient_id: str
) -> tuple[list[dict[str, Any]], dict[tuple[str, str], list[str]]]:
    """Goals per indicator; also (fragment id, indicator) -> goal ids, to link activities."""
    plan_id = plan["plan_id"]
    goals: list[dict[str, Any]] = []
    index: dict[tuple[str, str], list[str]] = {}
    lifecycle = "cancelled" if plan["status"] == "revoked" else "active"
    for slot, content in plan["indicators"].items():
        for goal in content["goals"]:
            prov = goal["provenance"]
            key = (prov["fragment_id"], slot)
            n = len(index.get(key, []))  # position within its fragment: stable across exports
            goal_id = _id(plan_id, "goal", prov["fragment_id"], slot, str(n))
            resource: dict[str, Any] = {
                "resourceType": "Goal",
                "id": goal_id,
                "lifecycleStatus": lifecycle,
                "category": [_indicator_concept(slot)],
                "description": {"text": goal["what"]},
                "subject": _ref(patient_id),
                "note": [_note(f"Källa: {prov['origin']}", prov["origin"])],
            }
            if goal.get("by"):
                resource["target"] = [{"dueDate": goal["by"]}]
            goals.append(resource)
            index.setdefault(key, []).append(goal_id)
    return goals, index


def _activities(
    plan: dict[str, Any], orgs: dict[str, str], goal_index: dict[tuple[str, str], list[str]]
) -> list[dict[str, Any]]:
    activities = []
    for action in plan["actions"]:
        prov, slot = action["provenance"], action["indicator"]
        performers = [{"display": action["who"]}]
        if prov["origin"] in orgs:
            performers.append(_ref(orgs[prov["origin"]], prov["origin"]))
        detail: dict[str, Any] = {
            "status": ACTIVITY_STATUS[action["status"]],
            "description": action["what"],
            "performer": performers,
            "reasonCode": [_indicator_concept(slot)],
        }
        period = _period(action.get("start"), action.get("end"))
        if period:
            detail["scheduledPeriod"] = period
        linked = goal_index.get((prov["fragment_id"], slot), [])
        if linked:
            detail["goal"] = [_ref(g) for g in linked]
        activities.append({"detail": detail})
    return activities


def _notes(plan: dict[str, Any]) -> list[dict[str, Any]]:
    notes = [_note(s["text"], s["provenance"]["origin"]) for s in plan["summaries"]]
    for slot, content in plan["indicators"].items():
        for need in content["needs"]:
            text = f"Behov ({_indicator_label(slot)}): {need['what']}"
            notes.append(_note(text, need["provenance"]["origin"]))
    for key, label in (("child", "Barnets syn"), ("family", "Familjens syn")):
        for view in plan["views"][key]:
            notes.append(_note(f"{label}: {view['text']}", view["provenance"]["origin"]))
    for event in plan["chronology"]:
        origin = event["provenance"]["origin"]
        notes.append(_note(f"Händelse: {event['what']}", origin, event["on"]))
    review = plan.get("next_review")
    if review:
        text = f"Nästa uppföljning: {review['date']}"
        notes.append(_note(text, review["provenance"]["origin"]))
    return notes


def _careplan(
    plan: dict[str, Any],
    careplan_id: str,
    patient_id: str,
    orgs: dict[str, str],
    goals: list[dict[str, Any]],
    goal_index: dict[tuple[str, str], list[str]],
) -> dict[str, Any]:
    purpose = plan["purpose"]
    label = LABELS["purpose"].get(purpose, (purpose, purpose))[0]
    careplan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": careplan_id,
        "identifier": [{"system": PLAN_SYSTEM, "value": plan["plan_id"]}],
        "status": "revoked" if plan["status"] == "revoked" else "active",
        "intent": "plan",
        "category": [{"coding": [{"system": PURPOSE_SYSTEM, "code": purpose, "display": label}]}],
        "title": label,
        "subject": _ref(patient_id),
        "author": {
            "type": "Practitioner",
            "identifier": {"system": PROFESSIONAL_SYSTEM, "value": plan["lead_professional"]},
            "display": plan["lead_professional"],
        },
        "contributor": [
            _ref(orgs[p["node_id"]], p["node_id"])
            for p in plan["participants"]
            if p["status"] == "included" and p["node_id"] in orgs
        ],
    }
    if plan.get("reason"):
        careplan["description"] = plan["reason"]
    responsible = plan.get("responsible_node")
    if responsible in orgs:
        careplan["extension"] = [
            {
                "url": RESPONSIBLE_EXTENSION,
                "valueReference": _ref(orgs[responsible], responsible),
            }
        ]
    if goals:
        careplan["goal"] = [_ref(g["id"]) for g in goals]
    activities = _activities(plan, orgs, goal_index)
    if activities:
        careplan["activity"] = activities
    notes = _notes(plan)
    if notes:
        careplan["note"] = notes
    return careplan


def _consent(plan: dict[str, Any], patient_id: str, orgs: dict[str, str]) -> dict[str, Any] | None:
    consent = plan.get("consent")
    if not consent:
        return None
    active = plan["status"] == "active" and not consent.get("expired", False)
    performers = []
    for person in consent.get("given_by", []):
        if person["role"] == "guardian":
            performers.append(
                {
                    "type": "RelatedPerson",
                    "identifier": {"system": CONSENTER_SYSTEM, "value": person["ref"]},
                    "display": f"{person['ref']} (vårdnadshavare)",
                }
            )
        else:  # the child or young person consented themself
            performers.append(_ref(patient_id, person["ref"]))
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": _id(plan["plan_id"], "consent", consent["consent_id"]),
        "identifier": [{"system": CONSENT_SYSTEM, "value": consent["consent_id"]}],
        "status": "active" if active else "inactive",
        "scope": {
            "coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}],
            "text": "Informationsdelning (samtycke)",
        },
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": _ref(patient_id),
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": _period(consent["valid_from"], consent["valid_until"]),
            "purpose": [{"system": PURPOSE_SYSTEM, "code": plan["purpose"]}],
        },
    }
    if performers:
        resource["performer"] = performers
    if plan["lead_node"] in orgs:
        resource["organization"] = [_ref(orgs[plan["lead_node"]], plan["lead_node"])]
    return resource


def _provenances(
    plan: dict[str, Any],
    careplan_id: str,
    orgs: dict[str, str],
    goal_index: dict[tuple[str, str], list[str]],
) -> list[dict[str, Any]]:
    plan_id, lead = plan["plan_id"], plan["lead_node"]
    result = []
    for prov in plan["fragments"]:
        origin, fragment_id = prov["origin"], prov["fragment_id"]
        targets = [_ref(careplan_id)]
        targets += [
            _ref(goal_id)
            for (goal_fragment, _slot), ids in goal_index.items()
            if goal_fragment == fragment_id
            for goal_id in ids
        ]
        agents = [
            {
                "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author"}]},
                "who": _ref(orgs[origin], origin) if origin in orgs else {"display": origin},
            }
        ]
        if lead in orgs:
            agents.append(
                {
                    "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "assembler"}]},
                    "who": _ref(orgs[lead], lead),
                }
            )
        result.append(
            {
                "resourceType": "Provenance",
                "id": _id(plan_id, "provenance", fragment_id, str(prov["version"])),
                "target": targets,
                "recorded": plan["assembled_at"],
                "agent": agents,
                "entity": [
                    {
                        "role": "source",
                        "what": {
                            "identifier": {"system": FRAGMENT_SYSTEM, "value": fragment_id},
                            "display": (
                                f"planfragment {fragment_id} v{prov['version']} "
                                f"({prov['category']}) från {origin}"
                            ),
                        },
                    }
                ],
                "extension": [
                    {
                        "url": SIGNATURE_EXTENSION,
                        "extension": [
                            {"url": "algorithm", "valueCode": "Ed25519"},
                            {"url": "keyId", "valueString": prov["key_id"]},
                            {"url": "verified", "valueBoolean": bool(prov["signature_verified"])},
                            {"url": "verifiedBy", "valueString": lead},
                        ],
                    }
                ],
            }
        )
    return result


def shared_plan_to_fhir(
    plan: dict[str, Any], *, include_personnummer: bool = True
) -> dict[str, Any]:
    """Map an assembled shared plan to a FHIR R4 ``collection`` Bundle (JSON, as a dict)."""
    plan_id = plan["plan_id"]
    patient_id = _id(plan_id, "patient")
    careplan_id = _id(plan_id, "careplan")
    node_ids = list(
        dict.fromkeys([plan["lead_node"], *(p["node_id"] for p in plan["participants"])])
    )
    orgs = {n: _id(plan_id, "organization", n) for n in node_ids}
    organizations = [
        {
            "resourceType": "Organization",
            "id": org_id,
            "identifier": [{"system": NODE_SYSTEM, "value": node_id}],
            "name": node_id,
        }
        for node_id, org_id in orgs.items()
    ]
    goals, goal_index = _goals(plan, patient_id)
    resources: list[dict[str, Any]] = [
        _careplan(plan, careplan_id, patient_id, orgs, goals, goal_index),
        _patient(plan, patient_id, include_personnummer),
        *organizations,
        *goals,
    ]
    consent = _consent(plan, patient_id, orgs)
    if consent is not None:
        resources.append(consent)
    resources += _provenances(plan, careplan_id, orgs, goal_index)
    return {
        "resourceType": "Bundle",
        "id": _id(plan_id, "bundle", plan["assembled_at"]),
        "type": "collection",
        "timestamp": plan["assembled_at"],
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
