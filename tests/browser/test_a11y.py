"""Every page, in every state a person meets it, meets WCAG 2.1 A and AA: axe-core in Chromium.

A small federation (the school leads a plan with social services and BUP, all with fragments
and consent; a second plan still waits for its links) is visited as each person would: the
lead, a professional at social services, the operator, someone not signed in. Every page of
``VISITS`` is checked at a laptop's (1280 px) and a phone's (390 px) width, in Swedish and with
``?lang=en``; a form's error state is reached by submitting it, as a person would.

``test_every_page_route_is_scanned_or_excluded`` reads the app's router: a GET page route that
is neither visited here nor excluded (with a reason) in ``EXCLUDED`` fails it, so a new page
cannot slip past the scan. To add a page: append a ``Visit``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pypdf import PdfReader

from node.web.pages.core import PAGE_STATE
from protocol.clock import ManualClock
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode
from tests.support.plans import (
    add_fragment,
    create_linked_plan,
    create_plan,
    record_consent,
    rich_fragment,
    shared_plan_world,
)

from .axe import axe_source, check_page
from .support import PASSWORD, web_federation
from .test_page_rendering import render, shared_plan

WIDTHS = {"laptop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
LANGS = ("sv", "en")

Action = Callable[[Any], Awaitable[None]]


@dataclass(frozen=True)
class Visit:
    """One page in one state: ``route`` is the router's path template (what the coverage check
    matches), ``path`` the concrete path (``{plan}``, ``{pending}``, ``{fragment}`` filled in),
    ``who`` the node and user (``None``: not signed in), ``act`` what the person does on the
    page before it is checked (e.g. submit an empty form to see its errors)."""

    name: str
    route: str
    path: str
    who: tuple[str, str | None]
    act: Action | None = None
    status: int = 200


async def submit(page: Any, selector: str) -> None:
    await page.locator(selector).click()
    await page.wait_for_load_state()


async def consent_errors(page: Any) -> None:
    """Untick everything and clear the dates: errors at the people, grants and date fields."""
    await page.locator("form.consent-form input[type=checkbox]").evaluate_all(
        "boxes => boxes.forEach(b => { b.checked = false; })"
    )
    await page.fill("#valid_from", "")
    await page.fill("#evidence_ref", "")
    await submit(page, "form.consent-form button.primary")
    assert await page.locator(".error-summary").count() == 1


async def fragment_errors(page: Any) -> None:
    """The fragment form posted with a goal without its text and a malformed date."""
    await page.fill("#goals-0-by", "2027-13-40")
    await submit(page, "#fragment-form button.primary")
    assert await page.locator(".error-summary").count() == 1


async def open_log_filters(page: Any) -> None:
    await page.fill("#since", "inte ett datum")
    await submit(page, "form button.primary >> nth=0")


UNKNOWN_PLAN = "00000000-0000-4000-8000-000000000000"
LEAD = ("school", "lead")
PROF = ("social", "prof")
OPS = ("school", "ops")
NOBODY = ("school", None)

VISITS: list[Visit] = [
    Visit("login", "/login", "/login", NOBODY),
    Visit("login-errors", "/login", "/login", NOBODY, act=lambda p: submit(p, "form button")),
    Visit("error-404", "*404", "/inte-en-sida", LEAD, status=404),
    Visit("error-403", "*403", "/ops", LEAD, status=403),
    Visit("family-start", "/familj", "/familj", NOBODY),
    # the lead
    Visit("lead-plans", "/plans", "/plans", LEAD),
    Visit("lead-children", "/children", "/children", LEAD),
    Visit("lead-new-plan", "/plans/new", "/plans/new", LEAD),
    Visit(
        "lead-new-plan-errors",
        "/plans/new",
        "/plans/new",
        LEAD,
        act=lambda p: submit(p, "form button.primary"),
    ),
    Visit("lead-plan", "/plans/{plan_id}", "/plans/{plan}", LEAD),
    Visit("lead-plan-waiting", "/plans/{plan_id}", "/plans/{pending}", LEAD),
    Visit("lead-consent", "/plans/{plan_id}/consent", "/plans/{plan}/consent", LEAD),
    Visit(
        "lead-consent-errors",
        "/plans/{plan_id}/consent",
        "/plans/{plan}/consent",
        LEAD,
        act=consent_errors,
    ),
    Visit("lead-shared", "/plans/{plan_id}/shared", "/plans/{plan}/shared", LEAD),
    Visit(
        "lead-no-consent", "/plans/{plan_id}/shared", "/plans/{pending}/shared", LEAD, status=404
    ),
    Visit("lead-plan-revoked", "/plans/{plan_id}", "/plans/{revoked}", LEAD),
    Visit("lead-shared-revoked", "/plans/{plan_id}/shared", "/plans/{revoked}/shared", LEAD),
    Visit("lead-family-revoked", "/plans/{plan_id}/family", "/plans/{revoked}/family", LEAD),
    Visit("lead-plan-unknown", "/plans/{plan_id}", f"/plans/{UNKNOWN_PLAN}", LEAD, status=404),
    Visit("lead-family", "/plans/{plan_id}/family", "/plans/{plan}/family", LEAD),
    Visit("lead-access", "/plans/{plan_id}/access", "/plans/{plan}/access", LEAD),
    Visit("lead-details", "/plans/{plan_id}/details", "/plans/{plan}/details", LEAD),
    Visit("lead-close", "/plans/{plan_id}/close", "/plans/{plan}/close", LEAD),
    Visit(
        "lead-revoke",
        "/plans/{plan_id}/revoke",
        "/plans/{plan}/revoke?consent_id={consent}",
        LEAD,
    ),
    Visit(
        "lead-revoke-errors",
        "/plans/{plan_id}/revoke",
        "/plans/{plan}/revoke?consent_id={consent}",
        LEAD,
        act=lambda p: submit(p, "main form button.danger"),
    ),
    # a professional at social services
    Visit("prof-plans-invitation", "/plans", "/plans", PROF),
    Visit("prof-children", "/children", "/children", PROF),
    Visit("prof-plan", "/plans/{plan_id}", "/plans/{plan}", PROF),
    Visit("prof-shared", "/plans/{plan_id}/shared", "/plans/{plan}/shared", PROF),
    Visit("prof-decline", "/invitations/{plan_id}/decline", "/invitations/{pending}/decline", PROF),
    Visit("prof-plan-errors", "/plans/{plan_id}", "/plans/{plan}", PROF, act=fragment_errors),
    Visit(
        "prof-fragment-edit",
        "/plans/{plan_id}/fragments/{fragment_id}",
        "/plans/{plan}/fragments/{fragment}",
        PROF,
    ),
    # the operator
    Visit("ops", "/ops", "/ops", OPS),
    Visit(
        "ops-verified",
        "/ops",
        "/ops",
        OPS,
        act=lambda p: submit(p, "form[action='/ops/verify'] button"),
    ),
    Visit("ops-log", "/ops/log", "/ops/log", OPS),
    Visit("ops-log-errors", "/ops/log", "/ops/log", OPS, act=open_log_filters),
    Visit("ops-peers", "/ops/peers", "/ops/peers", OPS),
    Visit("ops-outbox", "/ops/outbox", "/ops/outbox", OPS),
    Visit("ops-outbox-all", "/ops/outbox", "/ops/outbox?all=1", OPS),
    Visit("ops-stats", "/ops/stats", "/ops/stats", OPS),
]

# GET page routes not scanned, each with why
EXCLUDED = {
    "/": "only redirects (to /login, /plans or /ops by role)",
    "/login/oidc": "only redirects to the OpenID provider (none configured in these tests)",
    "/login/oidc/callback": "the provider's redirect back: signs in and redirects, no page",
    "/familj/logga-in": "only redirects to the residents' provider",
    "/familj/planer/{plan_id}": "needs a resident signed in through a residents' provider: "
    "scanned at 390 px in tests/family/test_family_plan_browser.py",
    "/familj/planer/{plan_id}/vem-har-sett": "needs a resident signed in through a residents' "
    "provider: scanned at 390 px in both languages in tests/family/test_family_access.py",
    "/familj/planer/{plan_id}/samtycke": "needs a resident signed in through a residents' "
    "provider: scanned at 390 px in each state in tests/family/test_family_consent.py",
    "/familj/planer/{plan_id}/samtycke/aterkalla": "needs a resident signed in through a "
    "residents' provider: scanned at 390 px in tests/family/test_family_consent.py",
    "/familj/planer/{plan_id}/synpunkter": "needs a resident signed in through a residents' "
    "provider: scanned at 390 px in tests/family/test_family_views_browser.py",
    "/familj/login/callback": "the residents' provider's redirect back: a refusal is the start "
    "page (scanned as family-start), a sign-in redirects",
    "/plans/{plan_id}/fhir": "a FHIR JSON document, not an HTML page",
}


def page_routes(app: web.Application) -> set[str]:
    """The path templates of every GET route the pages registered (what a browser opens)."""
    resources = app[PAGE_STATE].resources
    found = set()
    for route in app.router.routes():
        if route.method == "GET" and route.resource in resources:
            found.add(route.resource.canonical)
    return found


@pytest.fixture
async def world(tmp_path: Path, clock: ManualClock) -> AsyncIterator[dict[str, Any]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL, BUP], clock) as nodes:
        school, social, bup = nodes
        plan_id, consent_id = await shared_plan_world(school, social, bup, "A11Y")
        [child] = [c for c in (await school.api("GET", "/children", "lead"))[1]]
        pending = await create_plan(school, child["child_id"], [social.node_id])
        # a third plan whose consent the family withdrew
        revoked = await create_linked_plan(school, child["child_id"], [social])
        await add_fragment(social, revoked, rich_fragment("social", "REV"))
        grants = {social.node_id: ["social"]}
        withdrawn = await record_consent(school, revoked, grants, clock.now())
        status, answer = await school.api("POST", f"/consents/{withdrawn}/revoke", "lead")
        assert status == 201, answer
        yield {
            "nodes": {"school": school, "social": social, "bup": bup},
            "plan": plan_id,
            "pending": pending,
            "consent": consent_id,
            "revoked": revoked,
        }


async def signed_in(browser: Any, node: RunningNode, user: str | None) -> Any:
    """A page in a browser context of its own (cookies are per host, not per port)."""
    context = await browser.new_context(viewport=WIDTHS["laptop"], locale="sv-SE")
    page = await context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())  # "are you sure?": yes
    if user is not None:
        await page.goto(node.url + "/login?lang=sv")
        await page.fill("#user_id", user)
        await page.fill("#password", PASSWORD)
        await submit(page, "form button")
        assert "/login" not in page.url
    return page


class Visitor:
    """Opens each ``Visit`` as its person: one signed-in browser page per (node, user), the
    ids of the world filled in, the page's language and width set, its action done."""

    def __init__(self, browser: Any, world: dict[str, Any]) -> None:
        self.browser = browser
        self.world = world
        self.pages: dict[tuple[str, str | None], Any] = {}
        self.fragment = ""

    async def page_of(self, who: tuple[str, str | None]) -> Any:
        if who not in self.pages:
            self.pages[who] = await signed_in(self.browser, self.world["nodes"][who[0]], who[1])
        return self.pages[who]

    async def path_of(self, visit: Visit) -> str:
        if "{fragment}" in visit.path and not self.fragment:
            # the social services professional's own fragment, as the plan page links it
            page = await self.page_of(PROF)
            await page.goto(f"{self.world['nodes']['social'].url}/plans/{self.world['plan']}")
            href = await page.locator("a[href*='/fragments/']").first.get_attribute("href")
            self.fragment = str(href).rsplit("/", 1)[1]
        w = self.world
        return visit.path.format(
            plan=w["plan"],
            pending=w["pending"],
            consent=w["consent"],
            revoked=w["revoked"],
            fragment=self.fragment,
        )

    async def open(self, visit: Visit, lang: str, size: dict[str, int]) -> Any:
        """The visit's page, as its person sees it in ``lang`` at ``size``."""
        path = await self.path_of(visit)
        page = await self.page_of(visit.who)
        await page.set_viewport_size(size)
        node = self.world["nodes"][visit.who[0]]
        response = await page.goto(node.url + with_lang(path, lang))
        assert response is not None and response.status == visit.status, (
            visit.name,
            response and response.status,
        )
        if visit.act is not None:
            await visit.act(page)
        assert await page.locator("html").get_attribute("lang") == lang
        return page


def with_lang(path: str, lang: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}lang={lang}"


async def scan(browser: Any, world: dict[str, Any], visits: list[Visit]) -> list[str]:
    """Every visit at every width in both languages; the violations, all of them."""
    source = axe_source()
    visitor = Visitor(browser, world)
    problems: list[str] = []
    for visit in visits:
        for lang in LANGS:
            for width_name, size in WIDTHS.items():
                page = await visitor.open(visit, lang, size)
                problems += await check_page(page, source, f"{visit.name} [{lang}, {width_name}]")
    return problems


async def test_every_page_route_is_scanned_or_excluded(tmp_path: Path, clock: ManualClock) -> None:
    """A GET page route of the app's router that ``VISITS`` does not open and ``EXCLUDED``
    does not name fails here: a new page is added to the scan or excluded with a reason."""
    async with web_federation(tmp_path, [SCHOOL], clock) as [school]:
        assert school.runner is not None
        routes = page_routes(school.runner.app)
    assert {"/plans", "/ops", "/login"} <= routes  # the router is read, not an empty set
    missing = routes - {v.route for v in VISITS} - set(EXCLUDED)
    assert not missing, f"page routes neither scanned nor in EXCLUDED (with a reason): {missing}"
    stale = set(EXCLUDED) - routes
    assert not stale, f"EXCLUDED names routes the app no longer has: {stale}"


@pytest.mark.slow
async def test_every_page_meets_wcag_21_aa_at_both_widths_in_both_languages(
    browser: Any, world: dict[str, Any]
) -> None:
    problems = await scan(browser, world, VISITS)
    assert not problems, "\n" + "\n".join(problems)


# --- the fixes the scan alone does not prove ---------------------------------------------

FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const rgba = (s) => {
    const m = String(s).match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = (c) => {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const ratio = (a, b) => {
    const x = lum(a), y = lum(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  };
  const background = (node) => {
    for (let n = node; n && n.nodeType === 1; n = n.parentElement) {
      const c = rgba(getComputedStyle(n).backgroundColor);
      if (c && c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const cs = getComputedStyle(el);
  const ring = rgba(cs.outlineColor);
  const width = parseFloat(cs.outlineWidth) || 0;
  const offset = parseFloat(cs.outlineOffset) || 0;
  const r = el.getBoundingClientRect();
  const d = offset + width + 1;
  const points = [
    [r.left - d, r.top + r.height / 2], [r.right + d, r.top + r.height / 2],
    [r.left + r.width / 2, r.top - d], [r.left + r.width / 2, r.bottom + d],
  ];
  const adjacent = [];
  for (const [x, y] of points) {
    if (x < 0 || y < 0 || x >= innerWidth || y >= innerHeight) continue;
    const under = document.elementsFromPoint(x, y).find((n) => n !== el && !el.contains(n));
    if (under) adjacent.push(background(under));
  }
  if (offset <= 0) adjacent.push(background(el));
  return {
    what: el.tagName + ' ' + (el.id || el.getAttribute('href') || el.textContent.slice(0, 30)),
    style: cs.outlineStyle, width,
    ratios: ring ? adjacent.map((c) => Math.round(ratio(ring, c) * 100) / 100) : [],
  };
}"""


async def tab_through(page: Any, stops: int = 60) -> list[dict[str, Any]]:
    """Press Tab ``stops`` times (as a keyboard user does, so :focus-visible applies); the
    focus ring at each stop."""
    rings = []
    for _ in range(stops):
        await page.keyboard.press("Tab")
        ring = await page.evaluate(FOCUS_RING)
        if ring is not None:
            rings.append(ring)
    return rings


@pytest.mark.slow
async def test_the_focus_ring_has_3_to_1_contrast_against_what_is_next_to_it(
    browser: Any, world: dict[str, Any]
) -> None:
    """WCAG 1.4.11: computed in the browser from the focused element's computed outline and
    the colours just outside it, at every Tab stop of pages with header links, buttons,
    checkboxes in a grid, form fields and a scrolling table."""
    nodes = world["nodes"]
    lead = await signed_in(browser, nodes["school"], "lead")
    ops = await signed_in(browser, nodes["school"], "ops")
    failures = []
    for page, path in (
        (lead, f"/plans/{world['plan']}"),
        (lead, f"/plans/{world['plan']}/consent"),
        (lead, f"/plans/{world['plan']}/shared"),
        (ops, "/ops/log"),
        (ops, "/ops/peers"),
    ):
        await page.goto(nodes["school"].url + path + "?lang=sv")
        rings = await tab_through(page)
        assert len(rings) >= 10, (path, rings)
        for ring in rings:
            if ring["style"] == "none" or ring["width"] < 2 or min(ring["ratios"]) < 3:
                failures.append((path, ring))
    assert not failures, "\n".join(f"{path}: {ring}" for path, ring in failures)


@pytest.mark.slow
async def test_no_page_scrolls_sideways_at_320_px(browser: Any, world: dict[str, Any]) -> None:
    """WCAG 1.4.10: at 320 CSS px every page reflows (the consent grid too); wide tables
    scroll inside their own focusable region, never the page."""
    visitor = Visitor(browser, world)
    wide = []
    for visit in VISITS:
        page = await visitor.open(visit, "sv", {"width": 320, "height": 640})
        overflow = await page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        if overflow > 0:
            wide.append((visit.name, overflow))
    assert not wide, wide


# Words and codes that must never show on a Swedish page: English sentences the pages used to
# show and the raw codes (outcomes, categories, statuses) behind the Swedish labels.
ENGLISH = (
    "Not Found",
    "Forbidden",
    "not found",
    "pending",
    "released",
    "withheld",
    "refused",
    "unreachable",
    "timeout",
    "bad_reply",
    "failed",
    "included",
    "mental_health",
    "education",
    "police",
    "social_services",
    "child_psychiatry",
    "fragments.request",
    "consent.notify",
    "the ",
    " and ",
    "Page ",
    "Error",
)
# what professionals' pages do not say: the system's own words for an agency and a plan
JARGON = ("nod", "noden", "noder", "nodens", "noderna", "plan-id")


def found_words(text: str, words: tuple[str, ...], flags: int = 0) -> list[str]:
    """The ``words`` that stand as words of their own in ``text``."""
    return [w for w in words if re.search(rf"(?<![\w-]){re.escape(w)}(?![\w-])", text, flags)]


@pytest.mark.slow
async def test_swedish_pages_have_no_english_and_professionals_pages_no_jargon(
    browser: Any, world: dict[str, Any]
) -> None:
    visitor = Visitor(browser, world)
    english = []
    jargon = []
    for visit in VISITS:
        page = await visitor.open(visit, "sv", WIDTHS["laptop"])
        text = await page.title() + "\n" + await page.locator("body").inner_text()
        english += [(visit.name, w) for w in found_words(text, ENGLISH)]
        if visit.who[1] in ("lead", "prof"):
            jargon += [(visit.name, w) for w in found_words(text, JARGON, re.IGNORECASE)]
    assert not english, english
    assert not jargon, jargon


@pytest.mark.slow
async def test_every_printout_carries_a_confidentiality_marking(
    browser: Any, world: dict[str, Any]
) -> None:
    """Printed (print media), each page a professional might print says it is confidential;
    on screen the marking stays out of the way."""
    nodes = world["nodes"]
    lead = await signed_in(browser, nodes["school"], "lead")
    prof = await signed_in(browser, nodes["social"], "prof")
    for page, node, path in (
        (lead, nodes["school"], f"/plans/{world['plan']}/family"),
        (lead, nodes["school"], f"/plans/{world['plan']}/shared"),
        (lead, nodes["school"], f"/plans/{world['plan']}"),
        (lead, nodes["school"], "/plans"),
        (prof, nodes["social"], f"/plans/{world['plan']}"),
        (prof, nodes["social"], "/children"),
    ):
        for lang, words in (("sv", "Sekretess enligt OSL"), ("en", "Confidential")):
            await page.emulate_media(media="print")
            await page.goto(node.url + with_lang(path, lang))
            marking = page.locator(".print-marking")
            assert await marking.count() == 1, path
            assert await marking.is_visible(), (path, lang)
            assert words in await marking.inner_text(), (path, lang)
            await page.emulate_media(media="screen")
            assert not await marking.is_visible(), path


@pytest.mark.slow
async def test_every_printed_sheet_is_marked_confidential(
    browser: Any, world: dict[str, Any]
) -> None:
    """Printed to PDF by Chromium on small paper (so the shared plan takes several sheets),
    every sheet carries the marking in its top margin, with its number and the count; the
    first sheet also has the full text above the content."""
    school = world["nodes"]["school"]
    lead = await signed_in(browser, school, "lead")
    for lang, marking in (
        ("sv", "Sekretess enligt OSL · sida {n} av {count}"),
        ("en", "Confidential under OSL · page {n} of {count}"),
    ):
        await lead.goto(school.url + with_lang(f"/plans/{world['plan']}/shared", lang))
        sheets = PdfReader(BytesIO(await lead.pdf(format="A6"))).pages
        count = len(sheets)
        assert count >= 2, (lang, count)
        texts = [" ".join(sheet.extract_text().split()) for sheet in sheets]
        for n, text in enumerate(texts, start=1):
            assert marking.format(n=n, count=count) in text, (lang, n, text[:200])
        assert "(2009:400)" in texts[0], (lang, texts[0][:400])  # the law, named in full


def visible_text(html: str) -> str:
    """The page's text without its markup (attributes, where codes may stay, dropped)."""
    return re.sub(r"<[^>]+>", " ", html)


def test_a_shared_plan_says_every_peer_detail_in_swedish() -> None:
    """A peer not yet linked ("pending") and one whose transport failed (an exception's name)
    read as words on the Swedish page; the codes stay only in attributes."""
    page = visible_text(render("shared.html", shared=shared_plan(), fhir_available=False))
    assert "Väntar på koppling" in page and "Tekniskt fel" in page
    assert not found_words(page, (*ENGLISH, "ClientConnectorError"))


@pytest.mark.slow
async def test_min_plan_spells_out_agencies_and_dates_with_weekday(
    browser: Any, world: dict[str, Any]
) -> None:
    """The family's copy: no agency abbreviation without its meaning, dates as people say
    them (the fragments' review date 2027-02-01 is a Monday)."""
    nodes = world["nodes"]
    lead = await signed_in(browser, nodes["school"], "lead")
    await lead.goto(f"{nodes['school'].url}/plans/{world['plan']}/family?lang=sv")
    text = await lead.locator("main").inner_text()
    assert "Barn- och ungdomspsykiatrin" in text and "Individ- och familjeomsorgen" in text
    assert "måndag 1 februari 2027" in text
    assert "2027-02-01" not in text
    await lead.goto(f"{nodes['school'].url}/plans/{world['plan']}/family?lang=en")
    text = await lead.locator("main").inner_text()
    assert "Monday 1 February 2027" in text
