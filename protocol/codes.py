"""Code lists shared by every node, with Swedish and English labels for pages and schemas.

The keys are wire values; the labels are for people. ``schemas/codes.json`` is generated from here.
"""

from __future__ import annotations

from enum import StrEnum


class Indicator(StrEnum):
    """The eight SHANARRI wellbeing indicators of GIRFEC."""

    SAFE = "safe"
    HEALTHY = "healthy"
    ACHIEVING = "achieving"
    NURTURED = "nurtured"
    ACTIVE = "active"
    RESPECTED = "respected"
    RESPONSIBLE = "responsible"
    INCLUDED = "included"


class Category(StrEnum):
    """Information categories that consent is scoped by."""

    EDUCATION = "education"
    HEALTH = "health"
    MENTAL_HEALTH = "mental_health"
    SOCIAL = "social"
    FAMILY = "family"
    POLICE = "police"
    LEISURE = "leisure"


class AgencyKind(StrEnum):
    SCHOOL = "school"
    PRESCHOOL = "preschool"
    SOCIAL_SERVICES = "social_services"
    PRIMARY_CARE = "primary_care"
    CHILD_PSYCHIATRY = "child_psychiatry"
    HABILITATION = "habilitation"
    POLICE = "police"
    CIVIC = "civic"


class Purpose(StrEnum):
    SIP = "sip"
    CHILD_PLAN = "child_plan"


class ActionStatus(StrEnum):
    PLANNED = "planned"
    ONGOING = "ongoing"
    DONE = "done"
    CANCELLED = "cancelled"


LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "indicator": {
        "safe": ("Trygg", "Safe"),
        "healthy": ("Hälsa", "Healthy"),
        "achieving": ("Utvecklas och lyckas i skolan", "Achieving"),
        "nurtured": ("Omvårdad", "Nurtured"),
        "active": ("Aktiv", "Active"),
        "respected": ("Respekterad", "Respected"),
        "responsible": ("Ansvarstagande", "Responsible"),
        "included": ("Delaktig", "Included"),
    },
    "category": {
        "education": ("Skola och lärande", "Education"),
        "health": ("Hälsa och sjukvård", "Health"),
        "mental_health": ("Psykisk hälsa", "Mental health"),
        "social": ("Socialtjänst", "Social services"),
        "family": ("Familj och hem", "Family and home"),
        "police": ("Polis", "Police"),
        "leisure": ("Fritid", "Leisure"),
    },
    "agency_kind": {
        "school": ("Skola (elevhälsa)", "School (pupil health)"),
        "preschool": ("Förskola", "Preschool"),
        "social_services": ("Socialtjänst (IFO)", "Social services"),
        "primary_care": ("Primärvård", "Primary care"),
        "child_psychiatry": ("Barn- och ungdomspsykiatri (BUP)", "Child and adolescent psychiatry"),
        "habilitation": ("Habilitering", "Habilitation"),
        "police": ("Polis", "Police"),
        "civic": ("Civilsamhälle", "Civic sector"),
    },
    "purpose": {
        "sip": ("Samordnad individuell plan (SIP)", "Coordinated individual plan (SIP)"),
        "child_plan": ("Barnets plan (GIRFEC)", "Child's plan (GIRFEC)"),
    },
    "action_status": {
        "planned": ("Planerad", "Planned"),
        "ongoing": ("Pågår", "Ongoing"),
        "done": ("Klar", "Done"),
        "cancelled": ("Avbruten", "Cancelled"),
    },
}

REASON_LABELS: dict[str, tuple[str, str]] = {
    "malformed": ("Felaktigt meddelande", "Malformed message"),
    "unsupported_version": ("Protokollversionen stöds inte", "Unsupported protocol version"),
    "wrong_audience": ("Fel mottagare", "Addressed to another node"),
    "unknown_sender": ("Okänd avsändare", "Unknown sender"),
    "unknown_key": ("Okänd nyckel", "Unknown key"),
    "key_not_valid": ("Nyckeln var inte giltig", "Key not valid at issue time"),
    "bad_signature": ("Ogiltig signatur", "Bad signature"),
    "not_yet_valid": ("Ännu inte giltigt", "Not yet valid"),
    "expired": ("Utgånget meddelande", "Message expired"),
    "outside_skew": ("Giltighetstiden är för lång", "Lifetime outside the allowed window"),
    "replayed": ("Upprepat meddelande", "Replayed message"),
    "too_large": ("För stort meddelande", "Message too large"),
    "too_deep": ("För djupt nästlat", "JSON nested too deeply"),
    "unknown_type": ("Okänd meddelandetyp", "Unknown message type"),
    "no_consent": ("Samtycke saknas", "No consent"),
    "consent_unknown": ("Okänt samtycke", "Consent not known here"),
    "consent_not_yet_valid": ("Samtycket gäller ännu inte", "Consent not yet valid"),
    "consent_expired": ("Samtycket har gått ut", "Consent expired"),
    "consent_revoked": ("Samtycket är återkallat", "Consent revoked"),
    "consent_other_plan": ("Samtycket gäller en annan plan", "Consent is for another plan"),
    "consenter_missing": (
        "Samtycke saknas från en vårdnadshavare",
        "A required person has not consented",
    ),
    "consent_replaced": (
        "Samtycket har ersatts av ett nyare",
        "Consent replaced by a newer one",
    ),
    "category_not_granted": ("Kategorin omfattas inte", "Category not granted"),
    "purpose_not_granted": ("Syftet omfattas inte", "Purpose not granted"),
    "requester_not_granted": ("Mottagaren omfattas inte", "Requester not granted"),
    "plan_unknown": ("Okänd plan", "Plan unknown"),
    "not_participant": ("Inte deltagare i planen", "Not a participant in the plan"),
    "no_fragments": ("Inga uppgifter i kategorin", "No fragments in this category"),
    "checkpoint_inconsistent": (
        "Kontrollpunkten fortsätter inte loggen som bevittnats",
        "Checkpoint does not extend the log witnessed",
    ),
    "no_match": ("Inget barn matchar", "No matching child"),
    "declined": ("Avböjd", "Declined"),
    "internal": ("Internt fel", "Internal error"),
}
