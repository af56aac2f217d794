"""A plan's whole life in a real browser (issue #17): the plan list's status and each plan
page's next step, editing the plan's details, inviting another agency later, closing the plan
with a confirmation, and declining an invitation with a confirmation (an invitation for a child
not on record says to add the child under "Barn" first)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.store import records
from protocol.clock import ManualClock
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode
from tests.support.plans import consent_body
from tests.support.plans import link_invitation as link_over_api
from tests.support.waiting import wait_until_async

from .support import CHILD_NAME, add_child, signed_in, web_federation

pytestmark = pytest.mark.slow  # a real browser (Chromium) on in-process nodes

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture
async def agencies(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL, BUP], clock) as nodes:
        yield nodes


async def status_in_list(page: Any, node: RunningNode) -> str:
    await page.goto(node.url + "/plans")
    return str(await page.locator("table.plans tbody tr").first.locator("td").first.inner_text())


async def test_the_lead_follows_a_plan_from_creation_to_closing(
    browser: Any, agencies: list[RunningNode], screenshots: Path
) -> None:
    school, social, bup = agencies
    await add_child(school)
    await add_child(social)
    await add_child(bup)
    lead = await signed_in(browser, school, "lead")

    await lead.goto(school.url + "/plans/new")
    option = lead.locator("#child_id option", has_text=CHILD_NAME)
    await lead.select_option("#child_id", await option.get_attribute("value"))
    await lead.get_by_label(re.compile(re.escape(social.node_id))).check()
    await lead.get_by_role("button", name="Skapa plan och skicka inbjudningar").click()
    await lead.wait_for_url(re.compile(f"/plans/{UUID}$"))
    plan_url = lead.url
    plan_id = plan_url.rsplit("/", 1)[1]
    # after creating the plan: wait for the agency to link; no button to an empty shared plan
    assert (
        "Väntar på att verksamheterna kopplar" in await lead.locator("#status-heading").inner_text()
    )
    assert "Vänta tills de inbjudna verksamheterna" in await lead.locator("#next-step").inner_text()
    assert await lead.get_by_role("link", name="Visa den samlade planen").count() == 0
    # the coordinator is shown by name, never as a node-local reference
    assert await lead.locator("#coordinator").inner_text() == "Test lead"
    await lead.screenshot(path=str(screenshots / "life-01-created.png"), full_page=True)
    assert "/u/lead" not in await lead.content()
    assert await status_in_list(lead, school) == "Väntar på att verksamheterna kopplar"

    await link_over_api(social, plan_id)
    await lead.goto(plan_url)
    assert "Väntar på samtycke" in await lead.locator("#status-heading").inner_text()
    assert "Registrera familjens samtycke" in await lead.locator("#next-step").inner_text()
    await lead.get_by_role("link", name="Registrera samtycke").click()
    await lead.wait_for_url(re.compile(f"/plans/{plan_id}/consent$"))

    # --- the plan's details ---------------------------------------------------------------
    await lead.goto(plan_url)
    await lead.get_by_role("link", name="Ändra uppgifterna om planen").click()
    await lead.get_by_label("Namn").fill("Sara Samordnare")
    await lead.get_by_label("Telefon eller e-post").fill("0300-12 34 56")
    await lead.fill("#review_date", "2027-02-01")
    await lead.fill("#review_time", "14:30")
    await lead.get_by_label("Plats").fill("Skolans konferensrum")
    await lead.get_by_role("button", name="Spara").click()
    await lead.wait_for_url(re.compile(f"/plans/{plan_id}$"))
    assert await lead.locator("#coordinator").inner_text() == "Sara Samordnare – 0300-12 34 56"
    assert await lead.locator("#review").inner_text() == "2027-02-01 14:30, Skolans konferensrum"
    # a bad time is refused at its field, and nothing is saved
    await lead.goto(plan_url + "/details")
    await lead.fill("#review_place", "Annat rum")
    await lead.evaluate("document.querySelector('#review_time').type = 'text'")
    await lead.fill("#review_time", "25:99")
    await lead.get_by_role("button", name="Spara").click()
    assert "Ange datum som ÅÅÅÅ-MM-DD och tid som TT:MM." in await lead.content()
    stored = await records.get_plan(school.node.engine, plan_id)
    assert stored is not None and stored.review_place == "Skolans konferensrum"

    # --- another agency, invited later ------------------------------------------------------
    await lead.goto(plan_url)
    await lead.get_by_label("Bjud in ännu en verksamhet").select_option(bup.node_id)
    await lead.get_by_role("button", name="Bjud in", exact=True).click()
    await lead.wait_for_url(re.compile(f"/plans/{plan_id}$"))
    assert "är inbjuden" in await lead.content()
    participants = await lead.locator("ul.participants").inner_text()
    assert "Väntar på koppling" in participants
    await link_over_api(bup, plan_id)
    await lead.goto(plan_url)
    assert await lead.get_by_label("Bjud in ännu en verksamhet").count() == 0  # nobody left

    # consent for all three: the plan is in force
    ids = [school.node_id, social.node_id, bup.node_id]
    grants = [{"from": n, "to": [m for m in ids if m != n], "categories": ["social"]} for n in ids]
    status, answer = await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants, school.node.clock.now())
    )
    assert status == 201, answer
    assert await status_in_list(lead, school) == "Gäller"
    await lead.screenshot(path=str(screenshots / "life-02-plan-list.png"), full_page=True)
    await lead.goto(plan_url)
    assert await lead.get_by_role("link", name="Visa den samlade planen").count() == 1
    # the shared plan and the family's copy name the coordinator and how to reach them
    for view in ("/shared", "/family"):
        await lead.goto(plan_url + view)
        shown = await lead.locator("#coordinator").inner_text()
        assert "Sara Samordnare" in shown and "0300-12 34 56" in shown and "/u/" not in shown
    await lead.goto(plan_url)

    # --- closing, confirmed twice -------------------------------------------------------------
    await lead.get_by_role("link", name="Avsluta planen…").click()
    await lead.wait_for_url(re.compile(f"/plans/{plan_id}/close$"))
    told = await lead.locator("main ul").first.inner_text()
    assert "Testkommun IFO" in told and "Testregionen BUP" in told
    lead.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await lead.get_by_role("button", name="Avsluta planen").click()
    await lead.wait_for_load_state()
    assert "Bekräfta genom att kryssa i rutan." in await lead.content()
    assert (await records.get_plan(school.node.engine, plan_id)).status == "active"  # type: ignore[union-attr]
    await lead.get_by_label("Jag bekräftar att planen ska avslutas").check()
    lead.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    await lead.get_by_role("button", name="Avsluta planen").click()
    await lead.wait_for_url(re.compile(f"/plans/{plan_id}$"))
    assert "Planen är avslutad. 2 deltagare meddelas." in await lead.content()
    assert "Avslutad" in await lead.locator("#status-heading").inner_text()
    assert "Planen avslutades" in await lead.locator("#plan-closed").inner_text()
    # read-only: no editing, inviting, consent or closing offered
    for name in ("Ändra uppgifterna om planen", "Registrera samtycke", "Avsluta planen…"):
        assert await lead.get_by_role("link", name=name).count() == 0
    assert await lead.locator("#editor-heading").count() == 0
    await lead.screenshot(path=str(screenshots / "life-03-closed.png"), full_page=True)
    assert await status_in_list(lead, school) == "Avslutad"

    async def closed_at(node: RunningNode) -> bool:
        plan = await records.get_plan(node.node.engine, plan_id)
        return plan is not None and plan.status == "closed"

    for node in (social, bup):
        await wait_until_async(lambda n=node: closed_at(n), timeout=10, what="closure delivered")
    prof = await signed_in(browser, social, "prof")
    assert await status_in_list(prof, social) == "Avslutad"
    await prof.goto(f"{social.url}/plans/{plan_id}")
    assert "Planen avslutades" in await prof.locator("#plan-closed").inner_text()
    assert await prof.locator("#editor-heading").count() == 0


async def test_declining_an_invitation_asks_first_and_a_child_not_on_record_is_explained(
    browser: Any, agencies: list[RunningNode], screenshots: Path
) -> None:
    school, social, _bup = agencies
    child = await add_child(school)
    status, plan = await school.api(
        "POST", "/plans", "lead", {"child_id": child, "participants": [social.node_id]}
    )
    assert status == 201, plan
    plan_id = plan["plan_id"]
    prof = await signed_in(browser, social, "prof")
    await prof.goto(social.url + "/plans")
    card = prof.locator("li.invitation", has_text=plan_id)
    note = await card.locator(".invitation-no-match").inner_text()
    assert "Lägg först till barnet under ”Barn”" in note
    await card.get_by_role("link", name="Lägg till barnet under ”Barn”").click()
    await prof.wait_for_url(re.compile("/children"))
    assert await prof.get_by_label("Personnummer").input_value() != ""

    await prof.goto(social.url + "/plans")
    await prof.locator("li.invitation", has_text=plan_id).get_by_role("link", name="Avböj…").click()
    await prof.wait_for_url(re.compile(f"/invitations/{plan_id}/decline$"))
    await prof.get_by_role("button", name="Avböj inbjudan").click()
    await prof.wait_for_load_state()
    assert "Bekräfta genom att kryssa i rutan." in await prof.content()
    await prof.screenshot(path=str(screenshots / "life-04-decline.png"), full_page=True)
    stored = await records.get_plan(social.node.engine, plan_id)
    assert stored is not None and stored.status == "pending"  # nothing declined yet
    await prof.get_by_label("Jag vill avböja inbjudan").check()
    await prof.get_by_role("button", name="Avböj inbjudan").click()
    await prof.wait_for_url(re.compile("/plans$"))
    assert "Inbjudan är avböjd." in await prof.content()
    members = await records.participants(school.node.engine, plan_id)
    assert members[social.node_id] == "declined"
