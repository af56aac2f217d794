"""Forms in a real browser: bad input is explained next to the field and saves nothing; a form
posted without its CSRF token is refused and saves nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.store import records
from protocol.clock import ManualClock
from tests.support.federation import SCHOOL, RunningNode

from .support import CHILD_NAME, CHILD_PNR, log_in, web_federation
from .test_browser_flow import new_page

pytestmark = pytest.mark.slow  # a real browser (Chromium) on in-process nodes


@pytest.fixture
async def school(tmp_path: Path, clock: ManualClock) -> AsyncIterator[RunningNode]:
    async with web_federation(tmp_path, [SCHOOL], clock) as nodes:
        yield nodes[0]


async def test_bad_input_is_explained_next_to_the_field_and_nothing_is_saved(
    browser: Any, school: RunningNode, screenshots: Path
) -> None:
    page = await new_page(browser)
    await log_in(page, school, "prof")
    await page.goto(school.url + "/children")
    await page.get_by_label("Namn").fill(CHILD_NAME)
    await page.get_by_label("Personnummer").fill("20150315-2388")  # wrong check digit
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Lägg till barn").click()
    assert (await posted.value).status == 422
    await page.wait_for_load_state()
    field = page.locator("#personnummer")
    assert "personnummer-error" in (await field.get_attribute("aria-describedby") or "")
    assert await field.get_attribute("aria-invalid") == "true"
    error = page.locator("#personnummer-error")
    assert await error.is_visible()
    assert "Kontrollsiffran stämmer inte." in await error.inner_text()
    assert await field.input_value() == "20150315-2388"  # what the user typed is kept
    assert await page.get_by_label("Namn").input_value() == CHILD_NAME
    # the error summary has focus and links to the field
    assert await page.evaluate("document.activeElement.id") == "error-summary"
    await page.locator("#error-summary a").first.click()
    assert await page.evaluate("document.activeElement.id") == "personnummer"
    await page.screenshot(path=str(screenshots / "13-bad-input.png"), full_page=True)
    assert await records.list_children(school.node.engine) == []


async def test_a_form_posted_without_its_csrf_token_is_refused(
    browser: Any, school: RunningNode
) -> None:
    page = await new_page(browser)
    await log_in(page, school, "prof")
    await page.goto(school.url + "/children")
    await page.evaluate(
        "document.querySelector('form[action=\"/children\"] input[name=csrf_token]').remove()"
    )
    await page.get_by_label("Namn").fill(CHILD_NAME)
    await page.get_by_label("Personnummer").fill(CHILD_PNR)
    async with page.expect_response(lambda r: r.request.method == "POST") as posted:
        await page.get_by_role("button", name="Lägg till barn").click()
    assert (await posted.value).status == 403
    await page.wait_for_load_state()
    assert "Åtkomst nekad" in await page.locator("h1").inner_text()
    assert "CSRF" in await page.locator("main").inner_text()
    assert await records.list_children(school.node.engine) == []
