"""In a real browser: a school professional opens the plan IFO leads and sees what the consent
grants the school, and what it is not shown and why; an IFO colleague who is not the lead sees
the lead's view; an operator is refused. Both sides' exchange logs record the requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.store.tables import ExchangeLogEntry
from protocol.clock import ManualClock
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode
from tests.support.plans import plan_led_by_social

from .support import signed_in, web_federation

pytestmark = pytest.mark.slow  # a real browser (Chromium) on in-process nodes

LOG = ExchangeLogEntry.__table__  # type: ignore[attr-defined]


@pytest.fixture
async def agencies(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL, BUP], clock) as nodes:
        yield nodes


async def requests_logged(node: RunningNode, plan_id: str) -> set[tuple[str, str]]:
    async with node.node.engine.connect() as conn:
        rows = await conn.execute(
            select(LOG.c.direction, LOG.c.peer)
            .where(LOG.c.plan_id == plan_id)
            .where(LOG.c.message_type == "fragments.request")
        )
        return {(r[0], r[1]) for r in rows}


async def test_a_school_professional_and_an_ifo_colleague_see_the_plan_their_consent_allows(
    browser: Any, agencies: list[RunningNode], screenshots: Path
) -> None:
    school, social, bup = agencies
    plan_id, _ = await plan_led_by_social(agencies)

    # the school's professional opens the plan from its own plan page
    teacher = await signed_in(browser, school, "prof")
    await teacher.goto(f"{school.url}/plans/{plan_id}")
    await teacher.get_by_role("link", name="Visa den samlade planen").click()
    await teacher.wait_for_load_state()
    assert teacher.url.endswith(f"/plans/{plan_id}/shared")
    main = await teacher.locator("main").inner_text()
    for shown in ("SOC-SOCIAL", "BUP-MH", "SKO-EDU"):
        assert shown in main
    for hidden in ("SOC-FAMILY", "BUP-HEALTH", "Intern anteckning"):
        assert hidden not in main
    not_shown = await teacher.locator("section.not-shown").inner_text()
    assert "Det här visas inte för er" in not_shown
    assert "Testregionen BUP delar inte Hälsa och sjukvård med er enligt samtycket." in not_shown
    assert "Testkommun IFO delar inte Familj och hem med er enligt samtycket." in not_shown
    assert "Ingen annan verksamhet får dela detta med er enligt samtycket:" in not_shown
    # the lead's tools are not offered to a participant
    assert await teacher.get_by_role("link", name="Familjens version (Min plan)").count() == 0
    assert await teacher.locator("#revoke-heading").count() == 0
    await teacher.screenshot(path=str(screenshots / "participant-shared-plan.png"), full_page=True)

    await teacher.goto(f"{school.url}/plans/{plan_id}/shared?lang=en")
    english = await teacher.locator("section.not-shown").inner_text()
    assert "Testregionen BUP does not share Health with you under the consent." in english

    # both sides of each request logged it
    assert await requests_logged(school, plan_id) == {
        ("out", social.node_id),
        ("out", bup.node_id),
    }
    assert ("in", school.node_id) in await requests_logged(social, plan_id)
    assert ("in", school.node_id) in await requests_logged(bup, plan_id)

    # a colleague at IFO who is not the lead sees the plan as the lead node does
    colleague = await signed_in(browser, social, "prof")
    response = await colleague.goto(f"{social.url}/plans/{plan_id}/shared")
    assert response is not None and response.status == 200
    full = await colleague.locator("main").inner_text()
    for shown in ("SOC-FAMILY", "BUP-HEALTH", "BUP-MH", "SKO-EDU"):
        assert shown in full
    assert "Åtkomst nekad" not in full

    # an agency that does not take part in a plan is told so, plainly
    outsider = await signed_in(browser, bup, "prof")
    response = await outsider.goto(f"{bup.url}/plans/4d1c1c7e-4e2a-4c55-9a55-000000000000/shared")
    assert response is not None and response.status == 404
    assert (
        "Er verksamhet deltar inte i den här planen" in await outsider.locator("main").inner_text()
    )

    # an operator never sees plan content
    operator = await signed_in(browser, school, "ops")
    response = await operator.goto(f"{school.url}/plans/{plan_id}/shared")
    assert response is not None and response.status == 403
    assert "SOC-SOCIAL" not in await operator.content()
