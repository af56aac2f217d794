"""The child and family sign in at the lead node with e-identification: a real OpenID provider
for residents (deploy/dev-provider, separate from any staff provider) and real nodes on
loopback. A resident is let in only to the plans the lead recorded them on, by the keyed hash
of their identity number; anyone else gets a plain page saying whom to contact, and nothing is
written. A resident's session opens no professional page, a professional's no family page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import text

from node.cli.dev_provider import point_node_at
from node.services.passwords import set_password
from node.services.resident_sign_in import RESIDENT_ROLE
from protocol.clock import ManualClock
from tests.family.people import record_person
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, connect_all, start_node, stop_all
from tests.support.oidc import Provider, sign_in_at_provider, started_provider
from tests.support.plans import add_child, create_plan

CLAIM = "https://id.oidc.se/claim/personalIdentityNumber"
MARIA = "198506122384"  # a guardian on the plan (synthetic)
OLLE = "199001012393"  # on no plan
LISA = "201807042385"  # the child on the plan, eight years old
CONTACT = "Socialtjänstens mottagning, 0300-12 34 56"


@dataclass
class Family:
    provider: Provider
    lead: RunningNode
    school: RunningNode
    plan_id: str
    clock: ManualClock


@pytest.fixture
async def family(tmp_path: Path) -> AsyncIterator[Family]:
    clock = ManualClock(datetime.now(UTC))  # ID tokens carry the provider's real time
    provider = started_provider(tmp_path)
    client = provider.clients[0]
    provider.accounts.update(
        {"maria": {CLAIM: MARIA}, "olle": {CLAIM: OLLE}, "lisa": {CLAIM: LISA}, "nobody": {}}
    )

    def configure(directory: Path, port: int) -> None:
        client.redirect_uris.append(f"http://127.0.0.1:{port}/familj/login/callback")
        client.post_logout_redirect_uris.append(f"http://127.0.0.1:{port}/familj?ut=1")
        provider.restart()
        point_node_at(
            directory, provider.issuer, client, "E-legitimation (test)", section="residents",
            contact=CONTACT,
        )  # fmt: skip

    base = tmp_path / "nodes"
    lead = await start_node(
        base, SOCIAL, (f"sqlite:///{tmp_path / 'lead.db'}", ""), clock, configure
    )
    school = await start_node(base, SCHOOL, (f"sqlite:///{tmp_path / 'school.db'}", ""), clock)
    try:
        await connect_all([lead, school])
        child_id = await add_child(lead)
        plan_id = await create_plan(lead, child_id, [school.node_id])
        for person in (
            ("p1", "Maria Testsson", "guardian", MARIA),
            ("p2", "Lisa Testsson", "child", LISA),
        ):
            await record_person(lead, plan_id, person, clock.now())
        yield Family(provider, lead, school, plan_id, clock)
    finally:
        await stop_all([lead, school])
        provider.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def sign_in(
    http: aiohttp.ClientSession, node: RunningNode, login: str
) -> aiohttp.ClientResponse:
    """Start at the family's page, sign in at the provider, come back; the callback's answer."""
    async with http.get(node.url + "/familj/logga-in", allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        authorization = response.headers["Location"]
    callback = node.url + "/familj/login/callback"
    query = await sign_in_at_provider(http, authorization, login, callback)
    response = await http.get(callback + "?" + urlencode(query), allow_redirects=False)
    await response.read()
    return response


async def count(node: RunningNode, sql: str) -> int:
    async with node.node.engine.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_a_guardian_signs_in_and_sees_the_plan_they_are_on(
    family: Family, http: aiohttp.ClientSession
) -> None:
    async with http.get(family.lead.url + "/familj") as start:
        assert start.status == 200
        page = await start.text()
    assert 'id="resident-login"' in page and CONTACT in page
    answer = await sign_in(http, family.lead, "maria")
    assert answer.status == 303 and answer.headers["Location"] == "/familj"
    async with http.get(family.lead.url + "/familj") as home:
        page = await home.text()
    assert home.status == 200 and f'id="plan-{family.plan_id}"' in page
    assert "Testa Testsson" in page and "vårdnadshavare" in page
    assert MARIA not in page and "Maria Testsson" not in page  # no name, no number in the header
    async with http.get(family.lead.url + "/", allow_redirects=False) as root:
        assert root.headers["Location"] == "/familj"
    # the resident is a user with no name and only the keyed hash of the number
    users = await count(
        family.lead, f"SELECT count(*) FROM app_user WHERE role = '{RESIDENT_ROLE}'"
    )
    named = await count(
        family.lead, "SELECT count(*) FROM app_user WHERE display_name != '' AND role = 'resident'"
    )
    assert (users, named) == (1, 0)
    raw = Path(family.lead.node.config.database_url.removeprefix("sqlite:///")).read_bytes()
    assert MARIA.encode() not in raw and b"850612-2384" not in raw


async def test_a_resident_on_no_plan_is_told_whom_to_contact_and_nothing_is_written(
    family: Family, http: aiohttp.ClientSession
) -> None:
    users, sessions = (await count(family.lead, "SELECT count(*) FROM app_user"),
                       await count(family.lead, "SELECT count(*) FROM web_session"))  # fmt: skip
    for login, expected in (("olle", "ingen plan"), ("nobody", "personnummer")):
        answer = await sign_in(http, family.lead, login)
        assert answer.status == 403
        page = await answer.text()
        assert expected in page and CONTACT in page
    assert await count(family.lead, "SELECT count(*) FROM app_user") == users
    assert await count(family.lead, "SELECT count(*) FROM web_session") == sessions
    async with http.get(family.lead.url + "/familj") as start:
        assert 'id="resident-login"' in await start.text()  # still signed out


async def test_a_child_below_the_agencys_age_is_told_when_they_can_sign_in(
    family: Family, http: aiohttp.ClientSession
) -> None:
    answer = await sign_in(http, family.lead, "lisa")
    page = await answer.text()
    assert answer.status == 403 and "13 år" in page
    assert await count(family.lead, "SELECT count(*) FROM web_session") == 0


async def test_a_residents_session_opens_no_professional_page_and_a_professionals_no_family_page(
    family: Family, http: aiohttp.ClientSession
) -> None:
    await sign_in(http, family.lead, "maria")
    for path in ("/plans", f"/plans/{family.plan_id}", "/children", "/ops", "/ops/log"):
        async with http.get(family.lead.url + path, allow_redirects=False) as page:
            assert page.status == 403, path
    async with http.get(family.lead.url + "/api/v1/plans") as api:
        assert api.status == 401  # no bearer token: the API is not for sessions at all
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as staff:
        await set_password(family.lead.node.engine, "lead", "a long enough password")
        async with staff.get(family.lead.url + "/login") as form:
            page = await form.text()
        csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
        async with staff.post(
            family.lead.url + "/login",
            data={"user_id": "lead", "password": "a long enough password", "csrf_token": csrf},
            allow_redirects=False,
        ) as signed_in:
            assert signed_in.status == 303
        async with staff.get(family.lead.url + "/familj", allow_redirects=False) as page:
            assert page.status == 303 and page.headers["Location"] == "/"
            assert f"plan-{family.plan_id}" not in await page.text()


async def test_signing_out_ends_the_residents_session(
    family: Family, http: aiohttp.ClientSession
) -> None:
    await sign_in(http, family.lead, "maria")
    async with http.get(family.lead.url + "/familj") as home:
        page = await home.text()
    csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
    async with http.post(
        family.lead.url + "/familj/logga-ut", data={"csrf_token": csrf}, allow_redirects=False
    ) as out:
        assert out.status == 303 and out.headers["Location"].startswith(family.provider.issuer)
    assert await count(family.lead, "SELECT count(*) FROM web_session") == 0
    async with http.get(family.lead.url + "/familj") as start:
        assert 'id="resident-login"' in await start.text()


async def test_the_lead_records_an_identity_number_kept_only_as_its_hash_and_the_person_signs_in(
    family: Family, http: aiohttp.ClientSession
) -> None:
    """Through the lead's consent API: a person recorded with their identity number can sign
    in; the number is never stored or shown back, only whether they can sign in."""
    lead = family.lead
    now = family.clock.now()
    body = {
        "people": [
            {"name": "Olle Testsson", "role": "guardian", "required": True,
             "answer": "consents", "answered_on": now.date().isoformat(), "method": "e_form",
             "personnummer": "19900101-2393"},
        ],
        "grants": [
            {"from": family.school.node_id, "to": [lead.node_id], "categories": ["education"]}
        ],
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2030-01-01T00:00:00Z",
        "evidence_ref": "E-tjänst 2026-0042",
    }  # fmt: skip
    status, answer = await lead.api("POST", f"/plans/{family.plan_id}/consent", "lead", body)
    assert status == 201, answer
    status, overview = await lead.api("GET", f"/plans/{family.plan_id}/consent", "lead")
    assert status == 200 and [p["can_sign_in"] for p in overview["people"]] == [True]
    assert OLLE not in str(overview) and "hmac:" not in str(overview)
    raw = Path(lead.node.config.database_url.removeprefix("sqlite:///")).read_bytes()
    assert OLLE.encode() not in raw and b"900101-2393" not in raw
    assert (await sign_in(http, lead, "olle")).headers["Location"] == "/familj"
    # a wrong number is refused at its field, and nothing is recorded
    body["people"][0]["personnummer"] = "19900101-2394"  # type: ignore[index]
    status, refused = await lead.api("POST", f"/plans/{family.plan_id}/consent", "lead", body)
    assert status == 422 and "people.0.personnummer" in str(refused), refused
