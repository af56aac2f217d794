"""A guardian reads their plan in Chromium: signs in at /familj through the real residents'
provider, opens the plan from the list and reads "Min plan" with the coordinator and the next
meeting; the lead's node assembled it, naming its lead professional in every holder's log.
Every family page is free of WCAG 2.1 A/AA violations at a phone's width (axe-core)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from node.services.plans import update_details
from node.store.exchange_log import LogFilter, query_log
from node.store.records import user_by_id
from tests.browser.axe import axe_source, check_page
from tests.support.plans import add_child, link_invitation

from ..browser.conftest import browser  # noqa: F401  (fixture: a real Chromium)
from .consent import record_marias_consent
from .test_resident_sign_in import Family, family  # noqa: F401  (fixture)

PHONE = {"width": 390, "height": 800}


async def sign_in_in_browser(page: Any, setup: Family, login: str) -> None:
    await page.goto(setup.lead.url + "/familj")
    await page.get_by_role("link", name="Logga in med E-legitimation (test)").click()
    await page.fill('input[name="login"]', login)
    await page.fill('input[name="password"]', "any")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()  # the provider's consent step
    await page.wait_for_url(setup.lead.url + "/familj")


async def test_a_guardian_reads_the_plan_with_its_coordinator_and_next_meeting(
    browser: Any,  # noqa: F811
    family: Family,  # noqa: F811
) -> None:
    lead = family.lead
    lead_user = await user_by_id(lead.node.engine, "lead")
    assert lead_user is not None
    review = (family.clock.now() + timedelta(days=9)).date()
    await update_details(
        lead.node, lead_user, family.plan_id,
        reason="Oro för skolfrånvaro", coordinator_name="Sara Samordnare",
        coordinator_contact="0300-12 34 56", review_date=review.isoformat(), review_time="14:30",
        review_place="Skolans bibliotek",
    )  # fmt: skip
    # the school links the plan and the lead records Maria's consent with her identity number
    await add_child(family.school)
    await link_invitation(family.school, family.plan_id)
    await record_marias_consent(family, review.isoformat(), "E-tjänst 2026-0043")
    source = axe_source()
    context = await browser.new_context(viewport=PHONE, locale="sv-SE")
    page = await context.new_page()
    problems: list[str] = []
    await page.goto(lead.url + "/familj")
    problems += await check_page(page, source, "family start")
    await sign_in_in_browser(page, family, "maria")
    problems += await check_page(page, source, "family plans")
    await page.get_by_role("link", name="Testa Testsson").click()
    await page.wait_for_url(f"{lead.url}/familj/planer/{family.plan_id}")
    problems += await check_page(page, source, "family plan")
    assert "Sara Samordnare" in await page.locator("#coordinator").inner_text()
    meeting = await page.locator("#next-meeting").inner_text()
    assert "Skolans bibliotek" in meeting and "14:30" in meeting
    # another plan's id reads as no plan at all
    await page.goto(f"{lead.url}/familj/planer/00000000-0000-4000-8000-000000000000")
    assert "Det finns ingen sådan plan här." in await page.content()
    problems += await check_page(page, source, "family not found")
    assert not problems, "\n".join(problems)
    # the lead's node asked the school as the plan's lead professional, for the family
    entries = await query_log(family.school.node.engine, LogFilter(plan_id=family.plan_id))
    asked = [e for e in entries if e["message_type"] == "fragments.request"]
    assert asked and {e["professional"] for e in asked} == {f"{lead.node_id}/u/lead"}
    await context.close()
