"""The lead's "Vem har fått vad" page in a real browser (Chromium): every agency's releases for
the plan in one timeline, a holder that is down shown as not answering, in Swedish and (with
?lang=en) in English; a professional who is not the lead is not let in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from node.services.audit import checkpoint_and_witness
from node.services.log_archive import archive_log
from protocol.clock import ManualClock
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode
from tests.support.plans import shared_plan_world

from .support import signed_in, web_federation

pytestmark = pytest.mark.slow  # a real browser (Chromium) on in-process nodes


@pytest.fixture
async def agencies(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL, BUP], clock) as nodes:
        yield nodes


async def test_lead_sees_who_has_received_what(
    browser: Any,
    agencies: list[RunningNode],
    screenshots: Path,
    clock: ManualClock,
    tmp_path: Path,
) -> None:
    school, social, bup = agencies
    plan_id, _ = await shared_plan_world(school, social, bup)
    page = await signed_in(browser, school, "lead")
    await page.goto(f"{school.url}/plans/{plan_id}/shared")  # the lead assembles: releases
    await page.goto(f"{school.url}/plans/{plan_id}")
    await page.get_by_role("link", name="Vem har fått vad").click()
    await page.wait_for_load_state()
    assert page.url.endswith(f"/plans/{plan_id}/access")
    assert await page.get_by_role("heading", level=1).inner_text() == "Vem har fått vad"
    timeline = page.locator("table.access-timeline tbody tr")
    assert await timeline.count() == 2
    social_row = page.locator(f'table.access-timeline tr[data-holder="{social.node_id}"]')
    assert await social_row.get_attribute("data-recipient") == school.node_id
    row_text = await social_row.inner_text()
    assert "Testkommun IFO" in row_text and "Testskolan" in row_text
    assert "Samordnaren" in row_text
    assert f"{school.node_id}/u/lead" not in row_text  # the holder's policy: role only
    await page.screenshot(path=str(screenshots / "access-report.png"), full_page=True)

    # BUP goes down: still a page, BUP shown as not answering, the rest as before
    await bup.stop()
    school.node.config.assembly.__dict__["deadline_s"] = 1.0
    await page.reload()
    holder = page.locator(f'table.access-holders tr[data-node="{bup.node_id}"]')
    assert await holder.get_attribute("data-status") == "not_answered"
    assert "Svarade inte" in await holder.inner_text()
    assert await page.locator("table.access-timeline tbody tr").count() == 1

    await page.goto(f"{school.url}/plans/{plan_id}/access?lang=en")
    assert await page.get_by_role("heading", level=1).inner_text() == "Who has received what"
    assert "Did not answer" in await holder.inner_text()

    # social services moves its log's start, with its release, into an archive: its row says
    # the report is not whole (seconds apart: the session's idle time runs on this clock)
    clock.advance(1)
    witnessed = await checkpoint_and_witness(social.node)
    assert witnessed[school.node_id] == "ok", witnessed  # BUP is down: one witness is enough
    clock.advance(1)
    assert await archive_log(social.node, clock.now(), tmp_path / "ifo.jsonl")
    await page.reload()
    archived = page.locator(f'table.access-holders tr[data-node="{social.node_id}"]')
    assert "are in the agency's archive" in await archived.inner_text()
    assert await page.locator("table.access-timeline tbody tr").count() == 0
    await page.goto(f"{school.url}/plans/{plan_id}/access?lang=sv")
    assert "finns i verksamhetens arkiv" in await archived.inner_text()

    # a professional (not the lead) is not let in
    prof = await signed_in(browser, school, "prof")
    response = await prof.goto(f"{school.url}/plans/{plan_id}/access")
    assert response.status == 403
