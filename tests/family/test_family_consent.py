"""The family and the consent, through the real residents' provider and real nodes: a guardian
sees who may share what with whom and who has answered, gives her own answer to the consent the
lead proposed (which completes it: a new statement replacing the old, in the lead
professional's name), and withdraws it after "Är du säker?", after which every holder refuses
exactly as after a revocation the lead records. A young person not required by the consent sees
it but cannot withdraw it; a resident of another plan sees nothing. Chromium at 390 px, axe."""

from __future__ import annotations

from typing import Any

import aiohttp

from node.cli.demo_family import post_form
from node.services.consent_people import consent_overview
from node.store.exchange_log import LogFilter, query_log
from tests.browser.axe import axe_source, check_page
from tests.family.people import record_person
from tests.integration.test_revocation import ask
from tests.support.plans import add_child, add_fragment, link_invitation, rich_fragment
from tests.support.waiting import wait_until_async

from ..browser.conftest import browser  # noqa: F401  (fixture: a real Chromium)
from .consent import record_marias_consent
from .test_family_plan_browser import PHONE, sign_in_in_browser
from .test_resident_sign_in import CLAIM, MARIA, Family, family, http, sign_in  # noqa: F401

ALVA = "201203042385"  # a young person of 14 on the plan, not required by its consent
NO_PLAN = "00000000-0000-4000-8000-000000000000"


async def school_takes_part(family: Family) -> None:  # noqa: F811
    await add_child(family.school)
    await link_invitation(family.school, family.plan_id)
    await add_fragment(family.school, family.plan_id, rich_fragment("education", "SKOLA-S"))


async def propose_consent(family: Family) -> str:  # noqa: F811
    """The lead proposes a consent Maria has not answered yet (so it is incomplete)."""
    lead, school = family.lead, family.school
    body = {
        "people": [
            {"name": "Maria Testsson", "role": "guardian", "required": True,
             "answer": "not_asked", "personnummer": MARIA},
        ],
        "grants": [{"from": school.node_id, "to": [lead.node_id], "categories": ["education"]}],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2030-01-01T00:00:00Z",
        "evidence_ref": "Förslag 2026-0050",
    }  # fmt: skip
    status, answer = await lead.api("POST", f"/plans/{family.plan_id}/consent", "lead", body)
    assert status == 201 and answer["waiting_for"] == ["Maria Testsson"], answer
    return str(answer["consent_id"])


async def page(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:  # noqa: F811
    async with http.get(url) as response:
        return response.status, await response.text()


async def post(http: aiohttp.ClientSession, url: str, form_page: str, **fields: str) -> int:  # noqa: F811
    """Submit a form of ``form_page`` as a browser would (the demo's one form post)."""
    return await post_form(http, url, form_page, fields)


async def test_a_guardian_answers_the_proposed_consent_and_completes_it(
    family: Family,  # noqa: F811
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    await school_takes_part(family)
    proposed = await propose_consent(family)
    assert (await sign_in(http, family.lead, "maria")).status == 303
    url = f"{family.lead.url}/familj/planer/{family.plan_id}/samtycke"
    status, consent_page = await page(http, url)
    assert status == 200 and 'data-state="incomplete"' in consent_page
    assert "Maria Testsson" in consent_page and "Ja, jag samtycker" in consent_page
    assert family.school.node_id not in consent_page  # agencies by name, not by node id
    # a holder withholds under the incomplete consent
    assert await ask(family.lead, family.school, family.plan_id, proposed, "education") == (
        0,
        ["consenter_missing"],
    )

    assert await post(http, url + "/svar", consent_page, answer="consents") == 303
    overview = await consent_overview(family.lead.node, family.plan_id)
    current = overview["current"]
    assert overview["state"] == "in_force" and current["replaces"] == proposed
    assert current["recorded_by"] == f"{family.lead.node_id}/u/lead"  # never the resident
    person = next(p for p in overview["people"] if p.name == "Maria Testsson")
    assert (person.answer, person.method, person.form_ref) == ("consents", "e_id", "Min plan")
    assert await ask(
        family.lead, family.school, family.plan_id, current["consent_id"], "education"
    ) == (1, [])

    # a second answer is refused and records nothing
    status, again = await page(http, url)
    assert "Ja, jag samtycker" not in again and 'data-state="in_force"' in again
    assert await post(http, url + "/svar", consent_page, answer="declines") == 409
    assert (await consent_overview(family.lead.node, family.plan_id))["current"] == current
    # an answer that is neither yes nor no is refused too, and so is another plan
    assert await post(http, url + "/svar", consent_page, answer="maybe") in (409, 422)
    other = f"{family.lead.url}/familj/planer/{NO_PLAN}/samtycke"
    assert (await page(http, other))[0] == 404
    assert await post(http, other + "/svar", consent_page, answer="consents") == 404


async def test_a_guardian_withdraws_consent_and_every_holder_refuses(
    family: Family,  # noqa: F811
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    await school_takes_part(family)
    await record_marias_consent(family, family.clock.now().date().isoformat(), "E-tjänst 2026-0051")
    consent_id = (await consent_overview(family.lead.node, family.plan_id))["current"]["consent_id"]
    assert await ask(family.lead, family.school, family.plan_id, consent_id, "education") == (1, [])
    assert (await sign_in(http, family.lead, "maria")).status == 303
    url = f"{family.lead.url}/familj/planer/{family.plan_id}/samtycke"
    status, confirm = await page(http, url + "/aterkalla")
    assert status == 200 and "Är du säker?" in confirm and "Ja, återkalla samtycket" in confirm
    assert (await consent_overview(family.lead.node, family.plan_id))["state"] == "in_force"

    assert await post(http, url + "/aterkalla", confirm) == 303
    status, after = await page(http, url)
    assert 'data-state="revoked"' in after and "Samtycket är återkallat." in after

    async def school_refuses() -> bool:
        got = await ask(family.lead, family.school, family.plan_id, consent_id, "education")
        return got == (0, ["consent_revoked"])

    await wait_until_async(school_refuses, timeout=15, what="the school withholds consent_revoked")
    notices = await query_log(
        family.school.node.engine, LogFilter(plan_id=family.plan_id, message_type="consent.revoke")
    )
    assert notices and {n["professional"] for n in notices} == {f"{family.lead.node_id}/u/lead"}
    # withdrawing again is refused, and changes nothing
    assert await post(http, url + "/aterkalla", confirm) == 409


async def test_a_young_person_sees_the_consent_but_cannot_withdraw_what_is_not_theirs(
    family: Family,  # noqa: F811
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    lead = family.lead
    await school_takes_part(family)
    await record_marias_consent(family, family.clock.now().date().isoformat(), "E-tjänst 2026-0052")
    alva = ("p9", "Alva Testsson", "young_person", ALVA)
    await record_person(lead, family.plan_id, alva, family.clock.now(), required=False, age=14)
    family.provider.accounts["alva"] = {CLAIM: ALVA}
    family.provider.restart()
    assert (await sign_in(http, lead, "alva")).status == 303
    url = f"{lead.url}/familj/planer/{family.plan_id}/samtycke"
    status, seen = await page(http, url)
    assert status == 200 and 'data-state="in_force"' in seen
    assert "Återkalla samtycket" not in seen
    assert await post(http, url + "/aterkalla", seen) == 403
    assert (await consent_overview(lead.node, family.plan_id))["state"] == "in_force"


async def test_a_guardian_answers_and_withdraws_on_a_phone(
    browser: Any,  # noqa: F811
    family: Family,  # noqa: F811
) -> None:
    await school_takes_part(family)
    await propose_consent(family)
    lead = family.lead
    context = await browser.new_context(viewport=PHONE, locale="sv-SE")
    page_ = await context.new_page()
    source = axe_source()
    await sign_in_in_browser(page_, family, "maria")
    await page_.goto(f"{lead.url}/familj/planer/{family.plan_id}")
    await page_.get_by_role("link", name="Se samtycket: vem får dela vad").click()
    await page_.wait_for_url(f"{lead.url}/familj/planer/{family.plan_id}/samtycke")
    problems = await check_page(page_, source, "family consent (incomplete)")
    grants = await page_.locator("#grants").inner_text()
    assert "får dela uppgifter om Skola och lärande med" in grants
    await page_.get_by_role("button", name="Ja, jag samtycker").click()
    await page_.wait_for_load_state()
    assert await page_.locator("#consent-state").get_attribute("data-state") == "in_force"
    problems += await check_page(page_, source, "family consent (in force)")
    await page_.get_by_role("link", name="Återkalla samtycket").click()
    await page_.wait_for_load_state()
    assert await page_.get_by_role("heading", level=1).inner_text() == "Är du säker?"
    problems += await check_page(page_, source, "family withdraw (confirm)")
    await page_.get_by_role("button", name="Ja, återkalla samtycket").click()
    await page_.wait_for_load_state()
    assert await page_.locator("#consent-state").get_attribute("data-state") == "revoked"
    problems += await check_page(page_, source, "family consent (revoked)")
    await page_.goto(f"{lead.url}/familj/planer/{family.plan_id}/samtycke?lang=en")
    assert await page_.get_by_role("heading", level=1).inner_text() == "The consent"
    problems += await check_page(page_, source, "family consent (en)")
    assert not problems, "\n".join(problems)
    await context.close()
