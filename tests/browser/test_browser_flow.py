"""The whole plan lifecycle in a real browser, on real nodes, as the people at each agency do it.

The lead at the school creates a plan and invites social services, BUP and the police; the
professionals there sign in on their own nodes' pages, link the invitation and write their
fragments; the lead records consent, assembles the shared plan (one peer is down by then), opens
the family's copy, revokes; an operator finds the exchanges in the log and verifies it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from protocol.clock import ManualClock
from tests.support.federation import BUP, POLICE, SCHOOL, SOCIAL, RunningNode
from tests.support.plans import link_invitation as link_over_api

from .support import CHILD_NAME, CHILD_PNR, add_child, log_in, web_federation

pytestmark = pytest.mark.slow  # a real browser (Chromium) on in-process nodes

LAPTOP = {"width": 1280, "height": 900}
TABLET = {"width": 820, "height": 1180}
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
async def agencies(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL, BUP, POLICE], clock) as nodes:
        yield nodes


async def new_page(browser: Any, size: dict[str, int] = LAPTOP) -> Any:
    context = await browser.new_context(viewport=size, locale="sv-SE")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    return page


async def author_fragment(page: Any, plan_url: str, category: str, marker: str) -> None:
    """Fill in the fragment editor on a plan page, as a professional does."""
    await page.goto(plan_url)
    await page.select_option("#category", category)
    await page.get_by_label("Trygg").check()
    await page.get_by_label("Sammanfattning").fill(f"Sammanfattning {marker}")
    await page.fill("#needs-0-what", f"Behov {marker}")
    await page.fill("#goals-0-what", f"Mål {marker}")
    await page.fill("#goals-0-by", "2027-06-01")
    await page.fill("#actions-0-who", f"Kurator {marker}")
    await page.fill("#actions-0-what", f"Samtal varannan vecka {marker}")
    await page.fill("#actions-0-start", "2026-12-01")
    await page.fill("#actions-0-end", "2027-03-01")
    await page.select_option("#actions-0-status", "ongoing")
    await page.get_by_label("Barnets egen syn").fill(f"Jag vill ha lugn i skolan {marker}")
    await page.get_by_label("Familjens syn").fill(f"Vi vill ha en kontaktperson {marker}")
    await page.fill("#next_review", "2027-02-01")
    await page.get_by_label("Intern anteckning (visas inte för familjen)").fill(f"INTERNT {marker}")
    await page.get_by_role("button", name="Spara planfragment").click()
    await page.wait_for_load_state()
    assert "Planfragmentet är sparat (version 1)" in await page.content()


async def link_invitation(page: Any, node: RunningNode, plan_id: str) -> str:
    await page.goto(node.url + "/plans")
    card = page.locator("li.invitation", has_text=plan_id)
    # the child with the invitation's personnummer is already chosen
    assert await card.locator("select").input_value() != ""
    await card.get_by_role("button", name="Koppla").click()
    await page.wait_for_url(re.compile(f"/plans/{plan_id}$"))
    return str(page.url)


async def test_plan_lifecycle_across_agencies_in_a_browser(
    browser: Any, agencies: list[RunningNode], screenshots: Path
) -> None:
    school, social, bup, police = agencies
    # social services and the police know the child, BUP does not yet; no invitation is
    # linked until a professional at the invited agency decides
    for node in (social, police):
        await add_child(node)

    # --- the lead at the school adds the child and creates the plan ---------------------
    lead = await new_page(browser)
    await log_in(lead, school, "lead")
    assert await lead.locator("html").get_attribute("lang") == "sv"
    await lead.goto(school.url + "/children")
    await lead.get_by_label("Namn").fill(CHILD_NAME)
    await lead.get_by_label("Personnummer").fill(CHILD_PNR)
    await lead.get_by_role("button", name="Lägg till barn").click()
    await lead.wait_for_load_state()
    assert "Barnet är tillagt." in await lead.content()

    await lead.goto(school.url + "/plans/new")
    option = lead.locator("#child_id option", has_text=CHILD_NAME)
    await lead.select_option("#child_id", await option.get_attribute("value"))
    for node in (social, bup, police):
        await lead.get_by_label(re.compile(re.escape(node.node_id))).check()
    await lead.get_by_label("Anledning till planen").fill("Oro för skolfrånvaro och mående")
    await lead.screenshot(path=str(screenshots / "01-new-plan.png"), full_page=True)
    await lead.get_by_role("button", name="Skapa plan och skicka inbjudningar").click()
    await lead.wait_for_url(re.compile(f"/plans/{UUID}$"))
    plan_id = lead.url.rsplit("/", 1)[1]
    assert "Planen är skapad." in await lead.content()

    # --- professionals at social services and BUP link and write, on their own nodes ----
    soc = await new_page(browser)
    await log_in(soc, social, "prof")
    social_plan = await link_invitation(soc, social, plan_id)
    await author_fragment(soc, social_plan, "social", "IFO")
    await soc.screenshot(path=str(screenshots / "03-plan-and-editor.png"), full_page=True)

    psy = await new_page(browser)
    await log_in(psy, bup, "prof")
    assert plan_id in await psy.locator("li.invitation").inner_text()
    await psy.goto(bup.url + "/children")
    await psy.get_by_label("Namn").fill(CHILD_NAME)
    await psy.get_by_label("Personnummer").fill(CHILD_PNR)
    await psy.get_by_role("button", name="Lägg till barn").click()
    await psy.wait_for_load_state()
    await psy.goto(bup.url + "/plans")
    await psy.screenshot(path=str(screenshots / "02-invitation.png"), full_page=True)
    bup_plan = await link_invitation(psy, bup, plan_id)
    await author_fragment(psy, bup_plan, "mental_health", "BUP")

    # the police link and write over the API (the same services as the pages)
    await link_over_api(police, plan_id)
    status, _ = await police.api(
        "POST",
        f"/plans/{plan_id}/fragments",
        "prof",
        {"category": "police", "indicators": ["safe"], "content": {"summary": "Polisen"}},
    )
    assert status == 201

    # the lead's own fragment
    await author_fragment(lead, f"{school.url}/plans/{plan_id}", "education", "SKOLA")

    # --- the lead records the family's consent ------------------------------------------
    await lead.goto(f"{school.url}/plans/{plan_id}/consent")
    await lead.fill("#person-0-name", "Anna Testsson")
    await lead.select_option("#person-0-answer", "consents")
    await lead.fill("#person-0-answered_on", "2026-11-22")
    await lead.select_option("#person-0-method", "e_form")
    await lead.fill("#person-1-name", "Bertil Testsson")
    await lead.select_option("#person-1-answer", "consents")
    await lead.fill("#person-1-answered_on", "2026-11-22")
    await lead.select_option("#person-1-method", "meeting")
    await lead.fill("#person-2-name", "Testa Testsson")
    await lead.fill("#person-2-age", "12")
    await lead.get_by_label(f"{SOCIAL[1]} → {SCHOOL[1]}: Socialtjänst").check()
    # BUP may share "health", but has written only mental_health: it withholds (no_fragments)
    await lead.get_by_label(f"{BUP[1]} → {SCHOOL[1]}: Hälsa och sjukvård").check()
    await lead.get_by_label(f"{POLICE[1]} → {SCHOOL[1]}: Polis").check()
    await lead.fill("#valid_from", "2026-11-01")
    await lead.fill("#valid_until", "2027-11-01")
    await lead.get_by_label(re.compile("^Underlag")).fill("Samtyckesblankett 2026-11-22")
    await lead.screenshot(path=str(screenshots / "04-consent.png"), full_page=True)
    await lead.get_by_role("button", name="Signera och skicka samtycket").click()
    await lead.wait_for_url(re.compile(f"/plans/{plan_id}$"))
    assert "Samtycket är registrerat och skickat." in await lead.content()

    # --- the police node goes down; the lead assembles and sees every status ------------
    await police.stop()
    await lead.goto(f"{school.url}/plans/{plan_id}")
    await lead.get_by_role("link", name="Visa den samlade planen").click()
    await lead.wait_for_url(re.compile("/shared$"))
    rows = lead.locator("table.participants-status tbody tr")
    statuses = {
        await r.get_attribute("data-node"): await r.get_attribute("data-status")
        for r in await rows.all()
    }
    assert statuses == {
        school.node_id: "included",
        social.node_id: "included",
        bup.node_id: "withheld",
        police.node_id: "unreachable",
    }
    text = await lead.locator("main").inner_text()
    assert "Nås inte" in text and "Inga uppgifter i kategorin" in text  # status + reason label
    assert "Trygg" in text and "Samtal varannan vecka IFO" in text
    assert "Samtal varannan vecka BUP" not in text  # withheld: not granted as mental_health
    assert "INTERNT" not in text  # internal notes never leave the holder's fragment view
    assert await lead.locator(".prov-ok").count() >= 3  # provenance: verified signatures
    await lead.screenshot(path=str(screenshots / "05-shared-plan.png"), full_page=True)
    tablet = await new_page(browser, TABLET)
    await log_in(tablet, school, "lead")
    await tablet.goto(lead.url)
    await tablet.screenshot(path=str(screenshots / "06-shared-plan-tablet.png"), full_page=True)

    # the family's copy: plain language, no key ids, no reason codes, no internal notes
    await lead.get_by_role("link", name="Familjens version (Min plan)").click()
    await lead.wait_for_url(re.compile("/family$"))
    family = await lead.locator("main").inner_text()
    assert "Min plan" in family and "Samtal varannan vecka IFO" in family
    assert "INTERNT" not in family and "#" not in family and "no_fragments" not in family
    await lead.screenshot(path=str(screenshots / "07-family-copy.png"), full_page=True)

    # the FHIR export link answers with a FHIR document (or says it is not there yet)
    response = await lead.request.get(f"{school.url}/plans/{plan_id}/fhir")
    assert response.status in (200, 404)
    if response.status == 200:
        assert (await response.json())["resourceType"] == "Bundle"

    # --- the family withdraws consent: the lead revokes, with confirmation --------------
    await lead.goto(f"{school.url}/plans/{plan_id}/shared")

    async def accept(dialog: Any) -> None:
        await dialog.accept()

    lead.on("dialog", accept)
    await lead.get_by_label("Jag bekräftar att familjen har återkallat samtycket").check()
    await lead.get_by_role("button", name="Återkalla samtycket").click()
    await lead.wait_for_load_state()
    assert "Samtycket är återkallat" in await lead.content()
    assert await lead.locator("#plan-status").get_attribute("data-status") == "revoked"
    text = await lead.locator("main").inner_text()
    assert "Samtal varannan vecka IFO" not in text and "Samtal varannan vecka SKOLA" not in text
    revoked = {
        await r.get_attribute("data-node"): await r.get_attribute("data-status")
        for r in await lead.locator("table.participants-status tbody tr").all()
    }
    assert revoked[social.node_id] == "withheld" and revoked[bup.node_id] == "withheld"
    await lead.screenshot(path=str(screenshots / "08-revoked.png"), full_page=True)

    # --- an operator reviews the exchange log and verifies it ---------------------------
    ops = await new_page(browser)
    await log_in(ops, school, "ops")
    assert ops.url.endswith("/ops")
    await ops.get_by_role("button", name="Verifiera loggen nu").click()
    await ops.wait_for_load_state()
    result = ops.locator("#verify-result")
    assert await result.get_attribute("data-ok") == "true"
    assert (await result.inner_text()).startswith("OK")
    await ops.screenshot(path=str(screenshots / "09-ops-overview.png"), full_page=True)

    await ops.goto(school.url + "/ops/log")
    await ops.get_by_label("Plan-id").fill(plan_id)
    await ops.select_option("#type", "fragments.request")
    await ops.get_by_role("button", name="Filtrera").click()
    await ops.wait_for_load_state()
    log_rows = ops.locator("table.log tbody tr")
    assert await log_rows.count() >= 3  # one per peer asked
    log_text = await ops.locator("table.log").inner_text()
    assert police.node_id in log_text and "Nås inte" in log_text  # outcome unreachable
    page_text = await ops.locator("main").inner_text()
    assert CHILD_NAME not in page_text and CHILD_PNR not in page_text
    assert "Samtal varannan vecka" not in page_text
    await ops.screenshot(path=str(screenshots / "10-ops-log.png"), full_page=True)

    await ops.goto(school.url + "/ops/outbox")
    assert police.node_id in await ops.locator("main").inner_text()  # still owed a notice
    await ops.goto(school.url + "/ops/peers")
    await ops.screenshot(path=str(screenshots / "11-ops-peers.png"), full_page=True)
    await ops.goto(school.url + "/ops/stats")
    stats = await ops.locator("main").inner_text()
    assert "Socialtjänst" not in stats or CHILD_NAME not in stats
    await ops.screenshot(path=str(screenshots / "12-ops-stats.png"), full_page=True)

    # roles hold in the browser too: operators never open plan pages, professionals never /ops
    response = await ops.goto(f"{school.url}/plans/{plan_id}")
    assert response is not None and response.status == 403
    response = await soc.goto(social.url + "/ops")
    assert response is not None and response.status == 403
