"""Export of an assembled shared plan as a FHIR R4 Bundle (CarePlan, Goal, Consent, Provenance).

Why FHIR: regions' health records and municipal case systems can import a FHIR CarePlan, so the
lead professional can hand the shared plan to such a system without anyone re-typing it. The
export is a pure function of the dict ``assembly.assemble`` returns: it adds nothing the shared
plan does not hold, and it is built for one request and never stored (DESIGN.md invariant 1).

Mapping (resources are ``urn:uuid`` entries of a ``collection`` Bundle; ids are UUIDv5 of the
plan id - and, for everything that depends on the consent, of the consent id - so a re-export
names the same resources):

* **Patient** - the child as the lead node knows it (name). Identity stays with the lead: the
  personnummer is included only because this bundle is served to the lead professional alone
  (``GET /api/v1/plans/{id}/shared.fhir``, role lead) and a receiving record system needs it to
  find its patient. It uses the official Swedish system ``urn:oid:1.2.752.129.2.1.3.1`` (12
  digits). Pass ``include_personnummer=False`` for anything family-facing or leaving the
  professional setting: then the Patient carries the name only.
* **Organization** - only the agencies the reader is entitled to know take part: the lead, the
  responsible agency, and every agency the consent lets release to the lead (whether it
  contributed, withheld or did not answer). A participant the consent leaves out - e.g. the
  police when the family did not consent to police information - is not named anywhere, since
  a receiving record would otherwise learn that agency is involved with the child. Name and kind
  come from the agency's node document (its configuration for the lead); the lead's
  organisationsnummer (``urn:oid:2.5.4.97``) and HSA-id (``urn:oid:1.2.752.29.4.19``) from its
  ``[agency]`` settings.
* **CarePlan** - one per plan *and consent*: a revoked or expired consent's CarePlan is
  ``revoked`` on every export and a later consent gets a CarePlan of its own, so no record
  sees a revoked plan come back to ``active``. Status ``unknown`` while an agency the consent
  asks did not answer (timed out, unreachable, refused, invalid reply): the plan is then
  incomplete, said in the first note and in the participants List. ``author`` is the
  responsible agency; ``contributor`` the agencies whose content is included. Activities from
  the plan's actions (planned->scheduled, ongoing->in-progress, done->completed,
  cancelled->cancelled); goals via ``CarePlan.goal``; summaries, needs, views, the chronology
  and the next review as notes authored by their origin agency.
* **Goal** - description, ``target.dueDate``, the SHANARRI indicator as category.
* **Consent** - ``active`` unless revoked or expired (then ``inactive``, with the revocation
  time in the ``consent-revoked`` extension); ``dateTime`` when the lead signed the statement;
  policy OPTIN; the root provision carries the validity period, and each grant that lets an
  agency release to the lead is a nested ``permit`` (custodian and recipient as actors, the
  categories as codes, the purpose). Grants between other agencies are not the basis of
  anything in the bundle and would name agencies it must not name, so they are left out.
* **Provenance** - one per fragment: target the CarePlan (and the Goals from that fragment),
  recorded = assembled_at, agents = the origin agency (author) and the lead professional on
  behalf of the lead agency (assembler), entity = the fragment id and version. FHIR
  ``Provenance.signature`` is deliberately not used: the shared plan does not carry the Ed25519
  signature bytes or their signing time, and inventing either would be dishonest. What the lead
  did verify goes into the ``fragment-signature`` extension instead.
* **List** - the participants named above with how each answered (code system
  ``participant-status``), so a reader sees which agencies' content is missing and why.

Every DomainResource has a generated XHTML narrative (all text escaped). One pruning rule runs
over the whole bundle last: FHIR JSON has no empty arrays, objects or strings, so none leave.
The extensions and code systems written here are published as conformance resources under
``schemas/fhir/`` (``schemas/fhir/generate.py`` writes them from this module).
"""

from __future__ import annotations

import html
import re
import uuid

from protocol.codes import LABELS

from ..domain.json_object import JsonObject
from ..domain.shared_plan_shape import Agency, ConsentPart, Participant, SharedPlan
from ..domain.statement_json import GrantJson

BASE = "https://barnplan.se/fhir"
# identifier systems of ours (NamingSystem resources in schemas/fhir/)
NODE_SYSTEM = f"{BASE}/NamingSystem/node-id"
CAREPLAN_SYSTEM = f"{BASE}/NamingSystem/plan-consent"
CONSENT_SYSTEM = f"{BASE}/NamingSystem/consent-id"
FRAGMENT_SYSTEM = f"{BASE}/NamingSystem/fragment-id"
PROFESSIONAL_SYSTEM = f"{BASE}/NamingSystem/professional"
CONSENTER_SYSTEM = f"{BASE}/NamingSystem/consenter"
# code systems of ours (CodeSystem resources in schemas/fhir/)
INDICATOR_SYSTEM = f"{BASE}/CodeSystem/indicator"
PURPOSE_SYSTEM = f"{BASE}/CodeSystem/purpose"
CATEGORY_SYSTEM = f"{BASE}/CodeSystem/category"
AGENCY_KIND_SYSTEM = f"{BASE}/CodeSystem/agency-kind"
PARTICIPANT_STATUS_SYSTEM = f"{BASE}/CodeSystem/participant-status"
LIST_SYSTEM = f"{BASE}/CodeSystem/list"
# extensions of ours (StructureDefinition resources in schemas/fhir/)
SIGNATURE_EXTENSION = f"{BASE}/StructureDefinition/fragment-signature"
REVOKED_EXTENSION = f"{BASE}/StructureDefinition/consent-revoked"
# established systems
PERSONNUMMER_SYSTEM = "urn:oid:1.2.752.129.2.1.3.1"
ORG_NUMBER_SYSTEM = "urn:oid:2.5.4.97"
HSA_SYSTEM = "urn:oid:1.2.752.29.4.19"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
LOINC = "http://loinc.org"
XHTML = "http://www.w3.org/1999/xhtml"

ACTIVITY_STATUS = {
    "planned": "scheduled",
    "ongoing": "in-progress",
    "done": "completed",
    "cancelled": "cancelled",
}
# how a participant answered this assembly (schemas/shared_plan.json, participants[].status)
PARTICIPANT_STATUS: dict[str, tuple[str, str]] = {
    "included": ("Med i planen", "Included"),
    "withheld": ("Lämnade inte ut", "Withheld"),
    "not_linked": ("Inte kopplad till planen", "Not linked to the plan"),
    "not_requested": ("Inte efterfrågad", "Not requested"),
    "timed_out": ("Svarade inte i tid", "Timed out"),
    "unreachable": ("Nås inte", "Unreachable"),
    "refused": ("Nekade", "Refused"),
    "invalid": ("Ogiltigt svar", "Invalid reply"),
}
# the CarePlan's status (_careplan_status) as its narrative says it
CAREPLAN_STATE = {
    "active": "aktiv",
    "revoked": "samtycket gäller inte",
    "completed": "planen är avslutad",
    "unknown": "ofullständig",
}
# the answers after which content the consent allows is missing from this assembly
NO_ANSWER = ("timed_out", "unreachable", "refused", "invalid")
LIST_KINDS: dict[str, tuple[str, str]] = {
    "participants": ("Deltagare och deras svar", "Participants and their answers"),
}
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, BASE)
# characters XML 1.0 does not allow, even escaped: kept out of the narrative
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _id(plan_id: str, *parts: str) -> str:
    """A stable resource id: the same plan and item give the same id on every export."""
    return str(uuid.uuid5(_NAMESPACE, "/".join((plan_id, *parts))))


def _ref(resource_id: str, display: str | None = None) -> JsonObject:
    return {"reference": f"urn:uuid:{resource_id}", "display": display}


def _label(code_list: str, code: str) -> str:
    return LABELS[code_list].get(code, (code, code))[0]


def _coding(system: str, code: str, display: str) -> JsonObject:
    return {"system": system, "code": code, "display": display}


def _concept(system: str, code: str, display: str) -> JsonObject:
    return {"coding": [_coding(system, code, display)], "text": display}


def _indicator_label(slot: str) -> str:
    return LABELS["indicator"].get(slot, ("Utan indikator", "Unassigned"))[0]


def _indicator_concept(slot: str) -> JsonObject:
    if slot not in LABELS["indicator"]:
        return {"text": _indicator_label(slot)}
    return _concept(INDICATOR_SYSTEM, slot, _indicator_label(slot))


def _period(start: str | None, end: str | None) -> JsonObject:
    return {"start": start, "end": end}


def _narrative(*lines: str) -> JsonObject:
    """A generated XHTML narrative: one paragraph per line, every character escaped, so text
    from a fragment can never become markup in a receiving record's display."""
    paragraphs = "".join(
        f"<p>{html.escape(_NOT_XML.sub('', line), quote=True)}</p>" for line in lines if line
    )
    return {"status": "generated", "div": f'<div xmlns="{XHTML}">{paragraphs}</div>'}


def _empty(value: object) -> bool:
    return (
        value is None
        or value == []
        or value == {}
        or (isinstance(value, str) and not value.strip())
    )


def prune(value: object) -> object:
    """FHIR JSON has no null, no empty array, object or string (a blank string is one):
    drop each, bottom up, so a parent left empty goes too. The builders below write every
    optional element unconditionally and leave deciding to this one rule."""
    if isinstance(value, dict):
        kept = {k: prune(v) for k, v in value.items()}
        return {k: v for k, v in kept.items() if not _empty(v)}
    if isinstance(value, list):
        return [v for v in (prune(item) for item in value) if not _empty(v)]
    return value


class _Agencies:
    """Which agencies the bundle names, with their Organization ids and display names."""

    def __init__(self, plan: SharedPlan) -> None:
        lead = plan["lead_node"]
        granted = {g["from"] for g in plan["consent"]["grants"] if lead in g["to"]}
        origins = {f["origin"] for f in plan["fragments"]}
        self.plan_id = plan["plan_id"]
        self.known: dict[str, Agency] = plan["agencies"]
        self.named = list(
            dict.fromkeys([lead, plan["responsible_node"], *sorted(granted | origins)])
        )

    def org_id(self, node_id: str) -> str:
        return _id(self.plan_id, "organization", node_id)

    def name(self, node_id: str) -> str:
        agency = self.known.get(node_id)
        return (agency["name"] if agency else "") or node_id

    def ref(self, node_id: str) -> JsonObject:
        assert node_id in self.named, "only agencies the bundle may name are referenced"
        return _ref(self.org_id(node_id), self.name(node_id))

    def organization(self, node_id: str) -> JsonObject:
        # a node this one no longer trusts is named by its id alone
        agency: Agency = self.known.get(node_id) or {"name": "", "kind": ""}
        kind = agency["kind"]
        identifiers: list[dict[str, str | None]] = [
            {"use": "official", "system": ORG_NUMBER_SYSTEM, "value": agency.get("org_number")},
            {"use": "official", "system": HSA_SYSTEM, "value": agency.get("hsa_id")},
            {"use": "usual", "system": NODE_SYSTEM, "value": node_id},
        ]
        kind_label = _label("agency_kind", kind) if kind else ""
        return {
            "resourceType": "Organization",
            "id": self.org_id(node_id),
            "text": _narrative(self.name(node_id), kind_label, f"barnplan-nod: {node_id}"),
            "identifier": [i for i in identifiers if i["value"]],
            "active": True,
            "type": [_concept(AGENCY_KIND_SYSTEM, kind, kind_label)] if kind else [],
            "name": self.name(node_id),
        }


def _careplan_status(plan: SharedPlan) -> str:
    """Follows the consent: revoked (or expired) is final for this consent's CarePlan; while an
    agency did not answer, the plan's state as a whole is not known. A closed plan (SPEC §7.11)
    is completed."""
    if plan["status"] == "revoked" or plan["consent"]["expired"]:
        return "revoked"
    if plan["status"] == "closed":
        return "completed"
    return "unknown" if _unanswered(plan) else "active"


def _unanswered(plan: SharedPlan) -> list[Participant]:
    return [p for p in plan["participants"] if p["status"] in NO_ANSWER]


def _patient(plan: SharedPlan, patient_id: str, include_personnummer: bool) -> JsonObject:
    child = plan["child"]
    name = child["name"].strip() if child else ""
    pnr = "".join(ch for ch in (child["personnummer"] if child else "") if ch.isdigit())
    pnr = pnr if include_personnummer and len(pnr) == 12 else ""
    return {
        "resourceType": "Patient",
        "id": patient_id,
        "text": _narrative("Barnet i planen", name, pnr),
        "identifier": (
            [{"use": "official", "system": PERSONNUMMER_SYSTEM, "value": pnr}] if pnr else []
        ),
        "name": [{"use": "usual", "text": name}] if name else [],
    }


def _goals(
    plan: SharedPlan, ids: _Ids, agencies: _Agencies
) -> tuple[list[JsonObject], dict[tuple[str, str], list[str]]]:
    """Goals per indicator; also (fragment id, indicator) -> goal ids, to link activities."""
    goals: list[JsonObject] = []
    index: dict[tuple[str, str], list[str]] = {}
    lifecycle = {"revoked": "cancelled", "completed": "completed"}.get(
        _careplan_status(plan), "active"
    )
    for slot, content in plan["indicators"].items():
        for goal in content["goals"]:
            prov = goal["provenance"]
            key = (prov["fragment_id"], slot)
            n = len(index.get(key, []))  # position within its fragment: stable across exports
            goal_id = ids.of("goal", prov["fragment_id"], slot, str(n))
            text = goal["what"].strip() or f"Mål ({_indicator_label(slot)})"
            goals.append(
                {
                    "resourceType": "Goal",
                    "id": goal_id,
                    "text": _narrative(text, f"Senast {goal['by']}" if goal.get("by") else ""),
                    "lifecycleStatus": lifecycle,
                    "category": [_indicator_concept(slot)],
                    "description": {"text": text},
                    "subject": _ref(ids.patient),
                    "target": [{"dueDate": goal.get("by")}],
                    "note": [
                        _note("Källa", agencies.name(prov["origin"]), prov["origin"], agencies)
                    ],
                }
            )
            index.setdefault(key, []).append(goal_id)
    return goals, index


def _note(
    label: str, text: str, origin: str, agencies: _Agencies, time: str | None = None
) -> JsonObject | None:
    """An Annotation "label: text" by the agency the item came from; None for a blank text
    (Annotation.text is required, so a blank item has no note rather than an empty one)."""
    if not text.strip():
        return None
    return {
        "authorReference": agencies.ref(origin),
        "time": time,
        "text": f"{label}: {text}" if label else text,
    }


def _activities(
    plan: SharedPlan, agencies: _Agencies, goal_index: dict[tuple[str, str], list[str]]
) -> list[JsonObject]:
    activities: list[JsonObject] = []
    for action in plan["actions"]:
        prov, slot = action["provenance"], action["indicator"]
        detail: JsonObject = {
            "status": ACTIVITY_STATUS[action["status"]],
            "description": action["what"],
            "performer": [{"display": action["who"]}, agencies.ref(prov["origin"])],
            "reasonCode": [_indicator_concept(slot)],
            "scheduledPeriod": _period(action.get("start"), action.get("end")),
            "goal": [_ref(g) for g in goal_index.get((prov["fragment_id"], slot), [])],
        }
        activities.append({"detail": detail})
    return activities


def _incomplete_note(plan: SharedPlan, agencies: _Agencies) -> str:
    missing = [
        f"{agencies.name(p['node_id'])} ({PARTICIPANT_STATUS[p['status']][0].lower()})"
        for p in _unanswered(plan)
    ]
    if not missing:
        return ""
    return (
        "Planen är ofullständig: " + ", ".join(missing) + " svarade inte när planen "
        "sammanställdes, så det som samtycket omfattar från dem saknas."
    )


def _notes(plan: SharedPlan, agencies: _Agencies) -> list[JsonObject | None]:
    incomplete = _incomplete_note(plan, agencies)
    notes = [_note("", incomplete, plan["lead_node"], agencies, plan["assembled_at"])]
    notes += [_note("", s["text"], s["provenance"]["origin"], agencies) for s in plan["summaries"]]
    for slot, content in plan["indicators"].items():
        label = f"Behov ({_indicator_label(slot)})"
        notes += [
            _note(label, n["what"], n["provenance"]["origin"], agencies) for n in content["needs"]
        ]
    views = plan["views"]
    for said, label in ((views["child"], "Barnets syn"), (views["family"], "Familjens syn")):
        notes += [_note(label, v["text"], v["provenance"]["origin"], agencies) for v in said]
    for event in plan["chronology"]:
        notes.append(
            _note("Händelse", event["what"], event["provenance"]["origin"], agencies, event["on"])
        )
    review = plan.get("next_review")
    if review:
        notes.append(
            _note("Nästa uppföljning", review["date"], review["provenance"]["origin"], agencies)
        )
    return notes


def _careplan(
    plan: SharedPlan,
    ids: _Ids,
    agencies: _Agencies,
    goals: list[JsonObject],
    goal_index: dict[tuple[str, str], list[str]],
) -> JsonObject:
    purpose = plan["purpose"]
    label = _label("purpose", purpose)
    status = _careplan_status(plan)
    included = [
        p["node_id"]
        for p in plan["participants"]
        if p["status"] == "included" and p.get("fragments")
    ]
    state = CAREPLAN_STATE[status]
    return {
        "resourceType": "CarePlan",
        "id": ids.careplan,
        "text": _narrative(
            f"{label} ({state})",
            plan.get("reason", ""),
            f"Huvudansvar: {agencies.name(plan['responsible_node'])}",
            _incomplete_note(plan, agencies),
        ),
        "identifier": [
            {
                "system": CAREPLAN_SYSTEM,
                "value": f"{plan['plan_id']}/{plan['consent']['consent_id']}",
            }
        ],
        "status": status,
        "intent": "plan",
        "category": [_concept(PURPOSE_SYSTEM, purpose, label)],
        "title": label,
        "description": plan.get("reason"),
        "subject": _ref(ids.patient),
        "author": agencies.ref(plan["responsible_node"]),
        "contributor": [agencies.ref(n) for n in included],
        "goal": [_ref(str(g["id"])) for g in goals],
        "activity": _activities(plan, agencies, goal_index),
        "note": _notes(plan, agencies),
    }


def _performers(consent: ConsentPart, patient_id: str) -> list[JsonObject]:
    performers: list[JsonObject] = []
    for person in consent["given_by"]:
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
    return performers


def _to_the_lead(plan: SharedPlan) -> list[GrantJson]:
    """The grants that let another agency release to the lead: what the bundle states."""
    lead = plan["lead_node"]
    return [g for g in plan["consent"]["grants"] if lead in g["to"] and g["from"] != lead]


def _provisions(plan: SharedPlan, agencies: _Agencies) -> list[JsonObject]:
    """One ``permit`` per grant that lets an agency release to the lead, as it concerns the
    lead: custodian and recipient, the categories, the purpose."""
    lead, purpose = plan["lead_node"], plan["purpose"]
    provisions: list[JsonObject] = []
    for grant in _to_the_lead(plan):
        custodian = _concept(PARTICIPATION_TYPE, "CST", "custodian")
        recipient = _concept(PARTICIPATION_TYPE, "IRCP", "information recipient")
        provisions.append(
            {
                "type": "permit",
                "actor": [
                    {"role": custodian, "reference": agencies.ref(grant["from"])},
                    {"role": recipient, "reference": agencies.ref(lead)},
                ],
                "purpose": [_coding(PURPOSE_SYSTEM, purpose, _label("purpose", purpose))],
                "code": [
                    _concept(CATEGORY_SYSTEM, c, _label("category", c)) for c in grant["categories"]
                ],
            }
        )
    return provisions


def _consent(plan: SharedPlan, ids: _Ids, agencies: _Agencies) -> JsonObject:
    consent = plan["consent"]
    active = plan["status"] == "active" and not consent["expired"]
    revoked_at = plan.get("revoked_at")
    provisions = _provisions(plan, agencies)
    lines = [
        f"Samtycke ({'gäller' if active else 'gäller inte'}), "
        f"{consent['valid_from']} till {consent['valid_until']}",
        f"Återkallat {revoked_at}" if revoked_at else "",
        *(
            f"{agencies.name(g['from'])} får lämna ut "
            + ", ".join(_label("category", c) for c in g["categories"])
            + f" till {agencies.name(plan['lead_node'])}"
            for g in _to_the_lead(plan)
        ),
    ]
    return {
        "resourceType": "Consent",
        "id": ids.consent,
        "text": _narrative(*lines),
        "extension": [{"url": REVOKED_EXTENSION, "valueDateTime": revoked_at}]
        if revoked_at
        else [],
        "identifier": [{"system": CONSENT_SYSTEM, "value": consent["consent_id"]}],
        "status": "active" if active else "inactive",
        "scope": {
            "coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}],
            "text": "Informationsdelning (samtycke)",
        },
        "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
        "patient": _ref(ids.patient),
        "dateTime": consent["issued_at"],
        "performer": _performers(consent, ids.patient),
        "organization": [agencies.ref(plan["lead_node"])],
        "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]},
        "provision": {
            "period": _period(consent["valid_from"], consent["valid_until"]),
            "provision": provisions,
        },
    }


def _provenances(
    plan: SharedPlan,
    ids: _Ids,
    agencies: _Agencies,
    goal_index: dict[tuple[str, str], list[str]],
) -> list[JsonObject]:
    lead = plan["lead_node"]
    professional = plan["lead_professional"]
    result: list[JsonObject] = []
    for prov in plan["fragments"]:
        origin, fragment_id = prov["origin"], prov["fragment_id"]
        goal_ids = [
            goal_id
            for (goal_fragment, _slot), found in goal_index.items()
            if goal_fragment == fragment_id
            for goal_id in found
        ]
        what = (
            f"planfragment {fragment_id} v{prov['version']} ({prov['category']}) "
            f"från {agencies.name(origin)}"
        )
        result.append(
            {
                "resourceType": "Provenance",
                "id": ids.of("provenance", fragment_id, str(prov["version"])),
                "text": _narrative(
                    what,
                    f"Signatur (Ed25519, {prov['key_id']}) verifierad av {agencies.name(lead)}"
                    if prov["signature_verified"]
                    else "",
                ),
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
                "target": [_ref(ids.careplan)] + [_ref(g) for g in goal_ids],
                "recorded": plan["assembled_at"],
                "agent": [
                    {
                        "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "author"}]},
                        "who": agencies.ref(origin),
                    },
                    {
                        "type": {"coding": [{"system": PARTICIPANT_TYPE, "code": "assembler"}]},
                        "who": {
                            "type": "Practitioner",
                            "identifier": {"system": PROFESSIONAL_SYSTEM, "value": professional},
                            "display": professional,
                        },
                        "onBehalfOf": agencies.ref(lead),
                    },
                ],
                "entity": [
                    {
                        "role": "source",
                        "what": {
                            "identifier": {"system": FRAGMENT_SYSTEM, "value": fragment_id},
                            "display": what,
                        },
                    }
                ],
            }
        )
    return result


def _answer_text(entry: Participant) -> str:
    """One agency's answer in words: its status, with the reasons it gave (codes only)."""
    reasons = [entry.get("reason") or ""] + [
        f"{w['category'] or '-'}: {w['reason']}" for w in entry.get("withheld", [])
    ]
    label = PARTICIPANT_STATUS[entry["status"]][0]
    return "; ".join([label, *(r for r in reasons if r)])


def _participant_entry(entry: Participant, agencies: _Agencies) -> JsonObject:
    """One agency's answer: its status as the flag, with the reasons it gave (codes only)."""
    status = entry["status"]
    label = PARTICIPANT_STATUS[status][0]
    text = _answer_text(entry)
    return {
        "flag": {"coding": [_coding(PARTICIPANT_STATUS_SYSTEM, status, label)], "text": text},
        "item": agencies.ref(entry["node_id"]),
    }


def _participants(plan: SharedPlan, ids: _Ids, agencies: _Agencies) -> JsonObject:
    named = [p for p in plan["participants"] if p["node_id"] in agencies.named]
    title = LIST_KINDS["participants"][0]
    return {
        "resourceType": "List",
        "id": ids.of("participants"),
        "text": _narrative(
            title,
            *(f"{agencies.name(p['node_id'])}: {_answer_text(p)}" for p in named),
        ),
        "status": "current",
        "mode": "snapshot",
        "title": title,
        "code": _concept(LIST_SYSTEM, "participants", title),
        "subject": _ref(ids.patient),
        "date": plan["assembled_at"],
        "entry": [_participant_entry(p, agencies) for p in named],
    }


class _Ids:
    """The bundle's resource ids. Everything that follows the consent's state is named per
    consent, so one resource id never stands for two consents' states."""

    def __init__(self, plan: SharedPlan) -> None:
        self.plan_id = plan["plan_id"]
        self.consent_id = plan["consent"]["consent_id"]
        self.patient = _id(self.plan_id, "patient")
        self.careplan = self.of("careplan")
        self.consent = _id(self.plan_id, "consent", self.consent_id)

    def of(self, *parts: str) -> str:
        return _id(self.plan_id, "consent", self.consent_id, *parts)


def shared_plan_to_fhir(plan: SharedPlan, *, include_personnummer: bool = True) -> JsonObject:
    """Map an assembled shared plan to a FHIR R4 ``collection`` Bundle (JSON, as a dict)."""
    ids, agencies = _Ids(plan), _Agencies(plan)
    goals, goal_index = _goals(plan, ids, agencies)
    resources: list[JsonObject] = [
        _careplan(plan, ids, agencies, goals, goal_index),
        _patient(plan, ids.patient, include_personnummer),
        *(agencies.organization(n) for n in agencies.named),
        *goals,
        _consent(plan, ids, agencies),
        *_provenances(plan, ids, agencies, goal_index),
        _participants(plan, ids, agencies),
    ]
    bundle = {
        "resourceType": "Bundle",
        "id": ids.of("bundle", plan["assembled_at"]),
        "type": "collection",
        "timestamp": plan["assembled_at"],
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
    pruned = prune(bundle)
    assert isinstance(pruned, dict)  # a dict stays a dict (``prune``)
    return pruned
