"""The family sees who has received what about the child: a guardian signed in through the
real residents' provider opens "Vem har fått veta vad" from Min plan (Chromium, 390 px, axe),
and the page lists exactly the releases each holder's own exchange log has for the plan, asked
by the lead's node in the lead professional's name; a resident of no such plan sees nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from node.services.audit import checkpoint_and_witness
from node.services.log_archive import archive_log
from node.store.access_report import releases_for_plan
from node.store.exchange_log import LogFilter, query_log
from tests.browser.axe import axe_source, check_page
from tests.support.federation import RunningNode
from tests.support.plans import add_child, add_fragment, link_invitation, rich_fragment

from ..browser.conftest import browser  # noqa: F401  (fixture: a real Chromium)
from .consent import record_marias_consent
from .test_family_plan_browser import PHONE, sign_in_in_browser
from .test_resident_sign_in import MARIA, Family, family, http, sign_in  # noqa: F401

NO_PLAN = "00000000-0000-4000-8000-000000000000"


async def a_plan_with_releases(family: Family) -> None:  # noqa: F811
    """The school links the plan and writes its part; the lead records Maria's consent (with
    her identity number) granting the school's education to the lead; the lead's shared view
    then has the school release to the lead."""
    lead, school = family.lead, family.school
    await add_child(school)
    await link_invitation(school, family.plan_id)
    await add_fragment(school, family.plan_id, rich_fragment("education", "SKOLA-A"))
    await record_marias_consent(family, family.clock.now().date().isoformat(), "E-tjänst 2026-0044")
    status, shared = await lead.api("GET", f"/plans/{family.plan_id}/shared", "lead")
    assert status == 200, shared


async def logged_releases(node: RunningNode, plan_id: str) -> list[tuple[str, tuple[str, ...]]]:
    """(recipient, released categories) of every release ``node``'s own log has for the plan."""
    async with node.node.store.reading() as conn:
        rows = await conn.run_sync(lambda c: releases_for_plan(c, plan_id, 0, 1000))
    return [(r.recipient, r.released) for r in rows]


async def test_the_family_report_lists_what_each_holders_log_says(
    family: Family,  # noqa: F811
    http: aiohttp.ClientSession,  # noqa: F811
) -> None:
    await a_plan_with_releases(family)
    answer = await sign_in(http, family.lead, "maria")
    assert answer.status == 303
    async with http.get(f"{family.lead.url}/familj/planer/{family.plan_id}/vem-har-sett") as got:
        assert got.status == 200
        page = await got.text()
    school_log = await logged_releases(family.school, family.plan_id)
    assert school_log == [(family.lead.node_id, ("education",))]
    # one list item per release in the holder's log, the school's answered, none other
    assert page.count(f'data-holder="{family.school.node_id}"') == len(school_log)
    assert page.count(f'data-holder="{family.lead.node_id}"') == len(
        await logged_releases(family.lead, family.plan_id)
    )
    assert f'data-node="{family.school.node_id}" data-status="answered"' in page
    assert "Skola" in page and "din samordnare" in page
    assert MARIA not in page and "/u/lead" not in page  # no number, no staff reference
    # the school was asked for the report in the lead professional's name, never the family's
    asked = await query_log(
        family.school.node.engine,
        LogFilter(plan_id=family.plan_id, message_type="access.report.request"),
    )
    assert asked and {e["professional"] for e in asked} == {f"{family.lead.node_id}/u/lead"}
    # any other plan id reads as no plan, and a signed-out browser is sent to sign in
    async with http.get(f"{family.lead.url}/familj/planer/{NO_PLAN}/vem-har-sett") as other:
        assert other.status == 404
    async with aiohttp.ClientSession() as stranger:
        url = f"{family.lead.url}/familj/planer/{family.plan_id}/vem-har-sett"
        async with stranger.get(url, allow_redirects=False) as anonymous:
            assert anonymous.status in (302, 303, 401, 403)
            assert "Skola" not in await anonymous.text()


async def test_the_family_is_told_when_a_holder_has_archived_its_log(
    family: Family,  # noqa: F811
    http: aiohttp.ClientSession,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The school moves its log's start, with its release to the lead, into an archive: the
    family's page says that what happened before then is in the school's archive, instead of
    showing a report that looks whole. (Seconds apart: the residents' sign-in runs on the
    provider's real time.)"""
    await a_plan_with_releases(family)
    school = family.school
    family.clock.advance(1)
    assert set((await checkpoint_and_witness(school.node)).values()) == {"ok"}
    family.clock.advance(1)
    assert await archive_log(school.node, family.clock.now(), tmp_path / "skola.jsonl")
    assert await logged_releases(school, family.plan_id) == []  # all of it archived
    assert (await sign_in(http, family.lead, "maria")).status == 303
    async with http.get(f"{family.lead.url}/familj/planer/{family.plan_id}/vem-har-sett") as got:
        assert got.status == 200
        page = await got.text()
    items = {
        node: [i for i in page.split("<li ") if f'data-node="{node}"' in i]
        for node in (school.node_id, family.lead.node_id)
    }
    [school_item], [lead_item] = items[school.node_id], items[family.lead.node_id]
    assert 'data-status="answered"' in school_item
    assert "finns i deras arkiv och syns inte här" in school_item
    assert "arkiv" not in lead_item  # the lead archived nothing
    assert f'data-holder="{school.node_id}"' not in page


async def test_a_guardian_opens_the_report_from_min_plan_on_a_phone(
    browser: Any,  # noqa: F811
    family: Family,  # noqa: F811
) -> None:
    await a_plan_with_releases(family)
    lead = family.lead
    context = await browser.new_context(viewport=PHONE, locale="sv-SE")
    page = await context.new_page()
    await sign_in_in_browser(page, family, "maria")
    await page.goto(f"{lead.url}/familj/planer/{family.plan_id}")
    await page.get_by_role("link", name="Se vem som har fått veta vad om barnet").click()
    await page.wait_for_url(f"{lead.url}/familj/planer/{family.plan_id}/vem-har-sett")
    heading = await page.get_by_role("heading", level=1).inner_text()
    assert heading == "Vem har fått veta vad"
    # reading Min plan made the lead ask the school again: each release is in the list
    school = page.locator(f'#releases li[data-holder="{family.school.node_id}"]')
    in_log = await logged_releases(family.school, family.plan_id)
    assert len(in_log) == 2 and await school.count() == len(in_log)
    assert "uppgifter om: Skola" in await school.first.inner_text()
    problems = await check_page(page, axe_source(), "family access report")
    await page.goto(f"{lead.url}/familj/planer/{family.plan_id}/vem-har-sett?lang=en")
    assert await page.get_by_role("heading", level=1).inner_text() == "Who has been told what"
    problems += await check_page(page, axe_source(), "family access report (en)")
    assert not problems, "\n".join(problems)
    await context.close()
