"""Consent as people, in a real browser: the lead records both guardians by name and the child
(age, maturity, her own view), is told before sending that the consent is incomplete, sees
"Ofullständigt – väntar på <name>" on the plan and the shared plan (where social services
withholds), then completes it with one answer and sees social services' part of the plan."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.store import records
from protocol.clock import ManualClock
from tests.support.federation import SCHOOL, SOCIAL, RunningNode
from tests.support.plans import add_fragment, create_linked_plan, rich_fragment

from .support import PASSWORD, add_child, web_federation

pytestmark = pytest.mark.slow  # a real browser (Chromium) on in-process nodes


@pytest.fixture
async def pair(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL], clock) as nodes:
        yield nodes


async def test_the_lead_records_guardians_by_name_sees_who_is_missing_and_completes_it(
    browser: Any, pair: list[RunningNode]
) -> None:
    school, social = pair
    child = await add_child(school)
    await add_child(social)
    plan_id = await create_linked_plan(school, child, [social])
    await add_fragment(social, plan_id, rich_fragment("social", "IFO", "nurtured"))

    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="sv-SE")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    await page.goto(school.url + "/login")
    await page.get_by_label("Användar-id").fill("lead")
    await page.get_by_label("Lösenord").fill(PASSWORD)
    await page.get_by_role("button", name="Logga in").click()
    await page.wait_for_load_state()

    await page.goto(f"{school.url}/plans/{plan_id}/consent")
    # names are typed; no reference field to fill in
    assert await page.locator('input[name="person-0-ref"]').get_attribute("type") == "hidden"
    await page.fill("#person-0-name", "Anna Testsson")
    await page.select_option("#person-0-answer", "consents")
    await page.fill("#person-0-answered_on", "2026-11-20")
    await page.select_option("#person-0-method", "signed_form")
    await page.fill("#person-0-form_ref", "Blankett 2026-117")
    await page.fill("#person-1-name", "Bertil Testsson")
    await page.select_option("#person-1-answer", "not_asked")
    await page.fill("#person-2-name", "Testa Testsson")
    await page.fill("#person-2-age", "12")
    await page.select_option("#person-2-answer", "consents")
    await page.fill("#person-2-answered_on", "2026-11-20")
    await page.select_option("#person-2-method", "meeting")
    await page.get_by_label("Bedömning av ålder och mognad").fill("Förstår vad delningen innebär")
    await page.get_by_label("Barnets egen syn på delningen").fill("Vill att skolan och IFO pratar")
    await page.get_by_label(f"{SOCIAL[1]} → {SCHOOL[1]}: Socialtjänst").check()
    await page.get_by_label(re.compile("^Underlag")).fill("Blankett 2026-117")
    await page.get_by_role("button", name="Signera och skicka samtycket").click()
    await page.wait_for_load_state()

    # told before it is sent; nothing is signed yet
    warning = page.locator("#confirm-incomplete")
    assert "Samtycket blir ofullständigt – väntar på Bertil Testsson." in (
        await warning.inner_text()
    )
    assert await records.consents_for_plan(school.node.engine, plan_id) == []
    assert await page.input_value("#person-1-name") == "Bertil Testsson"  # kept as typed
    await page.get_by_label("Jag förstår. Signera och skicka det ofullständiga samtycket.").check()
    await page.get_by_role("button", name="Signera och skicka samtycket").click()
    await page.wait_for_url(re.compile(f"/plans/{plan_id}$"))
    main = await page.locator("main").inner_text()
    assert "Ofullständigt – väntar på Bertil Testsson" in main
    assert "Gällande" not in main

    # the shared plan says so too, and social services withholds
    await page.goto(f"{school.url}/plans/{plan_id}/shared")
    main = await page.locator("main").inner_text()
    assert "Ofullständigt – väntar på Bertil Testsson" in main
    row = page.locator(f'table.participants-status tbody tr[data-node="{social.node_id}"]')
    assert await row.get_attribute("data-status") == "withheld"
    assert "Behov IFO" not in main

    # one step: the missing answer on the consent page
    await page.get_by_role("link", name="Registrera svaret som saknas").click()
    await page.wait_for_url(re.compile(f"/plans/{plan_id}/consent"))
    form = page.locator("#answer-p2")
    assert "Registrera svar från Bertil Testsson" in await form.inner_text()
    await form.get_by_label("Svar", exact=True).select_option("consents")
    await form.get_by_label("Datum för svaret").fill("2026-11-21")
    await form.get_by_label("Hur").select_option("e_form")
    await form.get_by_role("button", name="Registrera svaret och skicka").click()
    await page.wait_for_load_state()
    current = await page.locator("#current-consent").inner_text()
    assert "Gällande" in current and "Ofullständigt" not in current
    assert "Anna Testsson" in current and "Underskriven blankett (Blankett 2026-117)" in current
    assert "Barnets egen syn på delningen: Vill att skolan och IFO pratar" in current

    await page.goto(f"{school.url}/plans/{plan_id}/shared")
    main = await page.locator("main").inner_text()
    assert "Ofullständigt" not in main and "Behov IFO" in main
    assert await row.get_attribute("data-status") == "included"
    await context.close()
