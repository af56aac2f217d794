"""A guardian and a young person write their own words in Chromium at a phone's width: sign in
through the real residents' provider, open "Vad tycker du?" from Min plan, are told at the field
when the text is empty (nothing saved), save, and read their words on Min plan. The lead's
professional sees them marked as the family's, by name; the school, granted ``family``, sees
them by role only. Every page is free of WCAG 2.1 A/AA violations at 390 px (axe-core) and the
family page's own text reads easily (LIX under 30)."""

from __future__ import annotations

from typing import Any

import pytest

from node.services.passwords import set_password
from tests.browser.axe import axe_source, check_page
from tests.browser.support import log_in
from tests.support.federation import RunningNode
from tests.support.plain_language import lix

from ..browser.conftest import browser  # noqa: F401  (fixture: a real Chromium)
from .test_family_plan_browser import PHONE, sign_in_in_browser
from .test_family_views import Views, rows, views  # noqa: F401  (fixture)
from .test_resident_sign_in import family  # noqa: F401  (fixture)

pytestmark = pytest.mark.slow
PASSWORD = "a long enough password"


async def staff_sign_in(page: Any, node: RunningNode, user: str) -> None:
    await set_password(node.node.engine, user, PASSWORD)
    await log_in(page, node, user, PASSWORD)


async def write_in_browser(
    page: Any,
    world: Views,
    source: str,
    login: str,
    words: str,
) -> list[str]:
    """Sign ``login`` in, open the form from Min plan, try an empty text, then save ``words``;
    the axe problems found on the way."""
    setup = world.family
    plan_url = f"{setup.lead.url}/familj/planer/{setup.plan_id}"
    problems: list[str] = []
    await sign_in_in_browser(page, setup, login)
    await page.goto(plan_url)
    await page.get_by_role("link", name="Skriv vad du tycker").click()
    await page.wait_for_url(plan_url + "/synpunkter")
    problems += await check_page(page, source, f"{login}: write a view")
    main = await page.locator("main").inner_text()
    score = lix(main.splitlines())  # the page as read: each line a text
    assert score < 30, (score, main)
    # empty: the error is at the field, and nothing is saved
    before = await rows(setup.lead, setup.plan_id)
    await page.get_by_role("button", name="Spara").click()
    await page.wait_for_load_state()
    assert "Obligatoriskt." in await page.locator("#text-error").inner_text()
    assert await page.locator("#text").get_attribute("aria-invalid") == "true"
    problems += await check_page(page, source, f"{login}: empty view")
    assert await rows(setup.lead, setup.plan_id) == before
    await page.locator("#text").fill(words)
    await page.get_by_role("button", name="Spara").click()
    await page.wait_for_url(plan_url)
    assert "Tack! Det du skrev är sparat." in await page.locator("main").inner_text()
    problems += await check_page(page, source, f"{login}: plan with own view")
    return problems


async def test_a_guardian_writes_the_familys_view_and_the_lead_sees_it_as_the_familys(
    browser: Any,  # noqa: F811
    views: Views,  # noqa: F811
) -> None:
    setup, lead = views.family, views.family.lead
    source = axe_source()
    context = await browser.new_context(viewport=PHONE, locale="sv-SE")
    page = await context.new_page()
    words = "Vi vill ha en plan, inte fyra."
    problems = await write_in_browser(page, views, source, "maria", words)
    said = page.locator("section[aria-labelledby=family-says]")
    assert words in await said.inner_text()
    # an edit shows the saved text, and saves a new version
    await page.get_by_role("link", name="Skriv vad du tycker").click()
    assert await page.locator("#text").input_value() == words
    assert await page.locator("#last-saved").count() == 1
    await page.locator("#text").fill(words + " Tack.")
    await page.get_by_role("button", name="Spara").click()
    await page.wait_for_url(f"{lead.url}/familj/planer/{setup.plan_id}")
    assert [r["version"] for r in await rows(lead, setup.plan_id)] == [1, 2]
    # the resident's session opens no professional page
    for path in (f"/plans/{setup.plan_id}", f"/plans/{setup.plan_id}/shared"):
        answer = await page.goto(lead.url + path)
        assert answer is not None and answer.status == 403, path
    await context.close()

    staff = await browser.new_context(viewport=PHONE, locale="sv-SE")
    page = await staff.new_page()
    await staff_sign_in(page, lead, "lead")
    await page.goto(f"{lead.url}/plans/{setup.plan_id}/shared")
    views_text = await page.locator("section[aria-labelledby=views-heading]").inner_text()
    assert words + " Tack." in views_text
    assert "Familjens egna ord: Maria Testsson, vårdnadshavare" in views_text
    problems += await check_page(page, source, "lead: shared plan with the family's view")
    await page.goto(f"{lead.url}/plans/{setup.plan_id}")
    card = page.locator(".fragment", has_text="Familjens egna ord")
    assert "Maria Testsson" in await card.inner_text()
    assert await card.get_by_role("link", name="Ändra (ny version)").count() == 0
    fragment_id = (await card.get_attribute("id") or "").removeprefix("fragment-")
    answer = await page.goto(f"{lead.url}/plans/{setup.plan_id}/fragments/{fragment_id}")
    assert answer is not None and answer.status == 403  # nor can the form be opened
    # a professional's session opens no family page
    answer = await page.goto(f"{lead.url}/familj/planer/{setup.plan_id}/synpunkter")
    assert answer is not None and answer.status == 403
    await staff.close()
    assert not problems, "\n".join(problems)


async def test_a_young_person_writes_their_own_view_and_the_school_sees_it_by_role(
    browser: Any,  # noqa: F811
    views: Views,  # noqa: F811
) -> None:
    setup = views.family
    source = axe_source()
    context = await browser.new_context(viewport=PHONE, locale="sv-SE")
    page = await context.new_page()
    words = "Jag vill ha lugn på rasten."
    problems = await write_in_browser(page, views, source, "emma", words)
    said = page.locator("section[aria-labelledby=child-says]")
    assert words in await said.inner_text()
    assert "Emma Testsson" in await said.inner_text()  # at the lead: by name, to the family
    await context.close()

    staff = await browser.new_context(viewport=PHONE, locale="sv-SE")
    page = await staff.new_page()
    await staff_sign_in(page, setup.school, "prof")
    await page.goto(f"{setup.school.url}/plans/{setup.plan_id}/shared")
    views_text = await page.locator("section[aria-labelledby=views-heading]").inner_text()
    assert words in views_text and "Familjens egna ord: den unge" in views_text
    assert "Emma" not in await page.content()  # the name never left the lead
    problems += await check_page(page, source, "school: shared plan with the child's view")
    await staff.close()
    assert not problems, "\n".join(problems)
