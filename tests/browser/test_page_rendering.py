"""Templates rendered without a server: every participant status of an assembled plan gets its
Swedish label and reason, and the family's copy leaves out what is internal."""

from __future__ import annotations

from typing import Any

import jinja2

from node.web.pages import TEMPLATES
from node.web.pages.i18n import Translator

PROV = {
    "origin": "bup.test.se",
    "fragment_id": "f1",
    "version": 1,
    "category": "mental_health",
    "key_id": "bup.test.se#0123456789abcdef",
    "signature_verified": True,
}


def shared_plan(**overrides: Any) -> dict[str, Any]:
    plan = {
        "plan_id": "9d0ec83c-e973-4e8e-ad31-5535816c87ed",
        "assembled_at": "2026-11-23T09:00:00Z",
        "status": "active",
        "revoked_at": None,
        "purpose": "sip",
        "reason": "Oro för skolfrånvaro",
        "child": {"name": "Testa Testsson", "personnummer": "201503152389"},
        "lead_node": "skola.test.se",
        "viewer": {"node_id": "skola.test.se", "role": "lead"},
        "lead_professional": "skola.test.se/u/lead",
        "responsible_node": "skola.test.se",
        "consent": {
            "consent_id": "c1",
            "valid_from": "2026-11-01T00:00:00Z",
            "valid_until": "2027-11-01T00:00:00Z",
            "expired": False,
            "given_by": [],
        },
        "participants": [
            {"node_id": "skola.test.se", "status": "included", "fragments": 0, "categories": []},
            {
                "node_id": "bup.test.se",
                "status": "included",
                "fragments": 1,
                "categories": ["mental_health"],
                "withheld": [],
            },
            {
                "node_id": "ifo.test.se",
                "status": "withheld",
                "fragments": 0,
                "categories": [],
                "withheld": [{"category": "social", "reason": "consenter_missing"}],
            },
            {"node_id": "polis.test.se", "status": "timed_out", "reason": "timeout"},
            {"node_id": "vc.test.se", "status": "invalid", "reason": "bad_signature"},
            {"node_id": "hab.test.se", "status": "unreachable", "reason": "ClientConnectorError"},
            {"node_id": "fritid.test.se", "status": "not_linked", "reason": "pending"},
        ],
        "not_shown": [],
        "not_granted": [],
        "summaries": [{"text": "Sammanfattning BUP", "provenance": PROV}],
        "indicators": {
            "healthy": {"needs": [{"what": "Sömn", "provenance": PROV}], "goals": [], "actions": []}
        },
        "actions": [
            {
                "what": "Samtal",
                "who": "Psykolog",
                "start": "2026-12-01",
                "end": None,
                "status": "planned",
                "indicator": "healthy",
                "provenance": PROV,
            }
        ],
        "views": {"child": [{"text": "Jag sover dåligt", "provenance": PROV}], "family": []},
        "chronology": [],
        "next_review": {"date": "2027-02-01", "provenance": PROV},
        "fragments": [PROV],
    }
    plan.update(overrides)
    return plan


def render(template: str, lang: str = "sv", **context: Any) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    t = Translator(lang)
    base = {
        **t.callables(),
        "t": t,
        "lang": lang,
        "other_lang": "en",
        "other_lang_url": "/?lang=en",
        "user": None,
        "csrf_token": "token",
        "messages": [],
        "node_id": "skola.test.se",
        "agency_name": "Testskolan",
        "path": "/",
        "agencies": {"bup.test.se": "Testregionen BUP"},
    }
    return env.get_template(template).render({**base, **context})


def test_every_participant_status_is_labelled_with_its_reason() -> None:
    page = render("shared.html", shared=shared_plan(), fhir_available=False)
    for label in (
        "Med i planen",
        "Undanhållet",
        "Svarade inte i tid",
        "Ogiltigt svar",
        "Nås inte",
        "Inte kopplad",
    ):
        assert label in page, label
    assert "Samtycke saknas från en vårdnadshavare" in page  # withheld reason, Swedish
    assert "Ogiltig signatur" in page
    assert "Hälsa" in page and "Sömn" in page  # by indicator, Swedish label
    assert "0123456789abcdef" in page and "✓ verifierad" in page  # provenance badge
    assert 'data-status="active"' in page


def test_the_family_copy_has_no_key_ids_reasons_or_agency_internals() -> None:
    page = render("family.html", shared=shared_plan())
    assert "Min plan" in page and "Jag sover dåligt" in page and "Samtal" in page
    for internal in (
        "0123456789abcdef",
        "bad_signature",
        "Ogiltig signatur",
        "skola.test.se/u/",
        "201503152389",
        "consenter_missing",
    ):
        assert internal not in page, internal


def test_a_revoked_plan_says_so() -> None:
    page = render(
        "shared.html",
        shared=shared_plan(
            status="revoked",
            revoked_at="2026-11-24T10:00:00Z",
            summaries=[],
            indicators={},
            actions=[],
            views={"child": [], "family": []},
            next_review=None,
        ),
        fhir_available=False,
    )
    assert "Samtycket återkallades 2026-11-24 11:00" in page
    assert 'data-status="revoked"' in page and "Återkalla samtycket" not in page


def test_a_participant_is_told_what_it_is_not_shown_and_why() -> None:
    not_shown = [
        {
            "node_id": "bup.test.se",
            "status": "withheld",
            "reason": "category_not_granted",
            "categories": ["health"],
        },
        {
            "node_id": "bup.test.se",
            "status": "withheld",
            "reason": "no_fragments",
            "categories": ["mental_health"],
        },
        {
            "node_id": "ifo.test.se",
            "status": "withheld",
            "reason": "consent_expired",
            "categories": [],
        },
        {"node_id": "polis.test.se", "status": "timed_out", "reason": "timeout", "categories": []},
        {"node_id": "vc.test.se", "status": "invalid", "reason": "bad_signature", "categories": []},
        {
            "node_id": "fritid.test.se",
            "status": "not_linked",
            "reason": "pending",
            "categories": [],
        },
    ]
    shared = shared_plan(
        viewer={"node_id": "skola.test.se", "role": "participant"},
        not_shown=not_shown,
        not_granted=["police", "leisure"],
    )
    page = render("shared.html", shared=shared, fhir_available=False)
    for sentence in (
        "Det här visas inte för er",
        "Testregionen BUP delar inte Hälsa och sjukvård med er enligt samtycket.",
        "Testregionen BUP har inget om Psykisk hälsa i planen.",
        "ifo.test.se lämnar inte ut något. Skäl: Samtycket har gått ut.",
        "polis.test.se svarade inte i tid.",
        "Svaret från vc.test.se gick inte att kontrollera och visas inte.",
        "fritid.test.se har inte kopplat planen än.",
        "Ingen annan verksamhet får dela detta med er enligt samtycket: Polis, Fritid",
    ):
        assert sentence in page, sentence
    # a participant is not offered the lead's tools
    assert "Återkalla samtycket" not in page and "/family" not in page
    english = render("shared.html", lang="en", shared=shared, fhir_available=False)
    assert "Testregionen BUP does not share Health with you under the consent." in english
    assert "Testregionen BUP has nothing about Mental health in the plan." in english
    assert "Det här visas inte" not in english and "delar inte" not in english
