"""The consent the family tests start from: Maria (a guardian, with her identity number, so she
can sign in) has consented, and the school shares education with the lead. One copy."""

from __future__ import annotations

from .test_resident_sign_in import MARIA, Family


async def record_marias_consent(family: Family, answered_on: str, evidence_ref: str) -> None:
    """The lead records it through the API, as its consent page does."""
    lead, school = family.lead, family.school
    body = {
        "people": [
            {"name": "Maria Testsson", "role": "guardian", "required": True,
             "answer": "consents", "answered_on": answered_on, "method": "e_form",
             "personnummer": MARIA},
        ],
        "grants": [{"from": school.node_id, "to": [lead.node_id], "categories": ["education"]}],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2030-01-01T00:00:00Z",
        "evidence_ref": evidence_ref,
    }  # fmt: skip
    status, answer = await lead.api("POST", f"/plans/{family.plan_id}/consent", "lead", body)
    assert status == 201, answer
