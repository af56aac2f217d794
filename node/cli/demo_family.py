"""The demo's family part (``barnplan demo --oidc``): a guardian signs in at the lead node with
e-identification through a residents' provider of the demo's own and uses the family's pages
over HTTP, as a phone's browser would.

The residents' provider is a second development provider (``dev_provider``), separate from the
staff's as a municipality's e-service broker is; its one account is the guardian recorded on
the demo plan's consent with a synthetic identity number. Everything here goes through the
node's pages (forms with their CSRF token), never around them.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from dataclasses import dataclass
from html import unescape
from pathlib import Path

import aiohttp

from .dev_provider import Client, DevProvider, new_signing_key, point_node_at, sign_in_at_provider

RESIDENTS_NAME = "E-legitimation (demo)"
IDENTITY_CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
GUARDIAN_LOGIN = "maria"
GUARDIAN_NUMBER = "198506122384"  # synthetic test identity number of the demo's guardian
CONTACT = "Kungsbacka kommun, IFO (demo): 0300-00 00 00"
FAMILY_VIEW = "Vi vill att skolan och BUP pratar med varandra innan mötet. Alva mår bättre nu."
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
HOLDER = re.compile(r'data-holder="([^"]+)"')
ANSWER = re.compile(r'data-node="([^"]+)" data-status="([^"]+)"')
COORDINATOR = re.compile(r'id="coordinator"><strong>([^<]+)</strong>')


def start_residents_provider(workdir: Path, lead_directory: Path, lead_url: str) -> DevProvider:
    """A residents' provider for the lead node (its own directory and port) with the demo's
    guardian as its one account, and the lead's ``[residents]`` pointed at it."""
    directory = workdir / "residents-provider"
    directory.mkdir(exist_ok=True)
    client = Client(
        "barnplan-familj",
        secrets.token_urlsafe(24),
        [f"{lead_url}/familj/login/callback"],
        [f"{lead_url}/familj?ut=1"],
    )
    account = {IDENTITY_CLAIM: GUARDIAN_NUMBER, "name": "Maria Demosson"}
    provider = DevProvider(
        directory, [client], {GUARDIAN_LOGIN: account}, [new_signing_key("familj-1")]
    )
    provider.start()
    point_node_at(
        lead_directory, provider.issuer, client, RESIDENTS_NAME, section="residents",
        contact=CONTACT,
    )  # fmt: skip
    return provider


@dataclass(frozen=True)
class FamilyVisit:
    """What the guardian did and saw: the coordinator on Min plan, her view shown there after
    she wrote it, per agency of the access report its answer and the releases it reported,
    and whether the consent showed as revoked after she withdrew it."""

    coordinator: str
    view_shown: bool
    answers: dict[str, str]
    releases: dict[str, int]
    withdrawn: bool


def family_visit(lead_url: str, plan_id: str) -> FamilyVisit:
    """Sign the guardian in at the lead; she reads Min plan, writes the family's view, reads
    'Vem har fått veta vad' and withdraws the consent, each through the family's pages."""
    return asyncio.run(_visit(lead_url, plan_id))


async def _visit(lead_url: str, plan_id: str) -> FamilyVisit:
    plan_url = f"{lead_url}/familj/planer/{plan_id}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        await _sign_in(http, lead_url)
        plan_page = await _page(http, plan_url)
        await _submit(http, f"{plan_url}/synpunkter", {"text": FAMILY_VIEW})
        shown = unescape(await _page(http, plan_url))
        view_shown = FAMILY_VIEW in shown and "Familjens egna ord: Maria Demosson" in shown
        access_page = await _page(http, f"{plan_url}/vem-har-sett")
        await _submit(http, f"{plan_url}/samtycke/aterkalla", {})
        withdrawn = 'data-state="revoked"' in await _page(http, f"{plan_url}/samtycke")
    coordinator = COORDINATOR.search(plan_page)
    releases: dict[str, int] = {}
    for holder in HOLDER.findall(access_page):
        releases[holder] = releases.get(holder, 0) + 1
    return FamilyVisit(
        unescape(coordinator.group(1)) if coordinator else "",
        view_shown,
        dict(ANSWER.findall(access_page)),
        releases,
        withdrawn,
    )


async def post_form(
    http: aiohttp.ClientSession, url: str, form_page: str, fields: dict[str, str]
) -> int:
    """Post ``fields`` to ``url`` from a form of ``form_page`` as a browser does, with the
    page's CSRF token; the answer's status (a page that took the form redirects: 303)."""
    token = CSRF.search(form_page)
    if token is None:
        raise RuntimeError(f"{url}: the page shows no form to submit")
    data = {"csrf_token": token.group(1), **fields}
    async with http.post(url, data=data, allow_redirects=False) as response:
        await response.read()
        return response.status


async def _submit(http: aiohttp.ClientSession, url: str, fields: dict[str, str]) -> None:
    """Open the form at ``url`` and submit it with ``fields``; it must be taken."""
    status = await post_form(http, url, await _page(http, url), fields)
    if status != 303:
        raise RuntimeError(f"{url} did not take the form ({status})")


async def _sign_in(http: aiohttp.ClientSession, lead_url: str) -> None:
    async with http.get(f"{lead_url}/familj/logga-in", allow_redirects=False) as response:
        if response.status != 303:
            raise RuntimeError(f"/familj/logga-in answered {response.status}, not a redirect")
        authorization = response.headers["Location"]
    callback = f"{lead_url}/familj/login/callback"
    answer = await sign_in_at_provider(http, authorization, GUARDIAN_LOGIN, callback)
    async with http.get(callback, params=answer, allow_redirects=False) as response:
        if response.status != 303:
            raise RuntimeError(f"the guardian's sign-in was refused ({response.status})")


async def _page(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as response:
        if response.status != 200:
            raise RuntimeError(f"{url} answered {response.status}")
        return await response.text()
