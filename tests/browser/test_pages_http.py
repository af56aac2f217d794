"""The pages over plain HTTP (no browser): sessions, CSRF, roles, bad input, the API untouched.

Fast checks of the rules every page follows; the browser tests walk the same pages in Chromium.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from node.config import NodeConfig
from node.errors import InvalidInput
from node.services.audit import checkpoint_and_witness
from node.services.log_archive import archive_log
from node.services.passwords import login as password_login
from node.services.passwords import set_password
from node.store import records
from node.store.log_archive import LogSize, log_size
from node.web.pages.core import settings_for
from protocol.clock import ManualClock, format_time
from tests.support.federation import SCHOOL, SOCIAL, RunningNode

from .support import CHILD_PNR, PASSWORD, PageClient, add_child, web_federation

OTHER_PNR = "20120704-1235"  # synthetic: another child at social services
ABSENT_PNR = "20180101-4562"  # synthetic: a child only the school holds


@pytest.fixture
async def pair(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    async with web_federation(tmp_path, [SCHOOL, SOCIAL], clock) as nodes:
        yield nodes


@pytest.fixture
async def client(pair: list[RunningNode]) -> AsyncIterator[PageClient]:
    page = PageClient(pair[0])
    try:
        yield page
    finally:
        await page.close()


async def create_plan(client: PageClient, school: RunningNode, social: RunningNode) -> str:
    child = await add_child(school)
    await add_child(social)
    status, _ = await client.post(
        "/plans/new",
        {"child_id": child, "participants": social.node_id, "purpose": "sip", "reason": "Oro"},
    )
    assert status == 200
    match = re.search(r"/plans/([0-9a-f-]{36})", str(client.response.url))
    assert match, client.last
    return match.group(1)


async def test_login_sets_a_hardened_session_cookie_and_logout_ends_it(
    client: PageClient,
) -> None:
    status, page = await client.get("/plans")
    assert status == 200 and 'action="/login"' in page  # anonymous: sent to the login page
    assert '<html lang="sv">' in page and 'class="skip-link" href="#main"' in page
    await client.get("/login")
    status, _ = await client.post("/login", {"user_id": "lead", "password": PASSWORD}, follow=False)
    assert status == 303 and client.response.headers["Location"] == "/plans"
    cookie = client.response.headers["Set-Cookie"]
    assert "barnplan_session=" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Secure" not in cookie  # base_url is http here
    status, page = await client.get("/plans")
    assert status == 200 and "Mina planer" in page and "Test lead" in page
    status, page = await client.post("/logout", {})
    assert status == 200 and "Du är utloggad." in page
    status, page = await client.get("/plans")
    assert 'action="/login"' in page


async def test_wrong_password_is_refused_with_a_message(client: PageClient) -> None:
    status, page = await client.login("lead", "not-the-password")
    assert status == 401 and "Fel användar-id eller lösenord." in page
    status, page = await client.login("nobody", "whatever-it-is")
    assert status == 401 and "Fel användar-id eller lösenord." in page


async def test_login_after_ten_failures_is_throttled(client: PageClient) -> None:
    for _ in range(10):
        await client.login("lead", "wrong-password-x")
    status, page = await client.login("lead")
    assert status == 401 and "För många misslyckade försök" in page


async def test_a_post_without_or_with_a_wrong_csrf_token_is_refused_and_saves_nothing(
    pair: list[RunningNode], client: PageClient
) -> None:
    school = pair[0]
    await client.login("lead")
    await client.get("/children")
    for token in (False, "forged-token"):
        status, page = await client.post(
            "/children", {"name": "Ny Person", "personnummer": CHILD_PNR}, csrf=token
        )
        assert status == 403 and "CSRF" in page
    assert await records.list_children(school.node.engine) == []
    # the same form with the session's token is accepted
    status, page = await client.post("/children", {"name": "Ny Person", "personnummer": CHILD_PNR})
    assert status == 200 and "Barnet är tillagt." in page
    assert len(await records.list_children(school.node.engine)) == 1


async def test_bad_input_is_shown_next_to_the_field_and_saves_nothing(
    pair: list[RunningNode], client: PageClient
) -> None:
    school = pair[0]
    await client.login("prof")
    await client.get("/children")
    status, page = await client.post(
        "/children", {"name": "Kvar Namn", "personnummer": "20150315-2388"}
    )
    assert status == 422
    assert 'id="personnummer-error"' in page and "Kontrollsiffran stämmer inte." in page
    assert re.search(
        r'id="personnummer"[^>]*aria-describedby="personnummer-hint personnummer-error"', page
    )
    assert 'aria-invalid="true"' in page
    assert 'value="Kvar Namn"' in page and 'value="20150315-2388"' in page  # values kept
    assert await records.list_children(school.node.engine) == []


async def test_a_child_already_recorded_is_shown_at_the_field_and_not_added_twice(
    pair: list[RunningNode], client: PageClient
) -> None:
    school = pair[0]
    await client.login("prof")
    await client.get("/children")
    status, _ = await client.post("/children", {"name": "Ny Person", "personnummer": CHILD_PNR})
    assert status == 200
    (child,) = await records.list_children(school.node.engine)
    status, page = await client.post("/children", {"name": "Samma Barn", "personnummer": CHILD_PNR})
    assert status == 409
    assert 'id="personnummer-error"' in page and "Personnumret finns redan" in page
    assert child.child_id in page and 'value="Samma Barn"' in page  # what was typed is kept
    assert [c.child_id for c in await records.list_children(school.node.engine)] == [child.child_id]


async def test_an_invitation_is_linked_by_a_professional_choosing_among_own_matching_children(
    pair: list[RunningNode], client: PageClient
) -> None:
    """Social services holds the child and another one; the invitation waits on the
    professional's page, offering only the matching child of social services' own records. A
    second invitation, for a child social services does not hold, offers none."""
    school, social = pair
    await client.login("lead")
    plan_id = await create_plan(client, school, social)
    match = await records.get_plan(social.node.engine, plan_id)
    assert match is not None and match.child_id is None  # nothing linked before a decision
    other = await add_child(social, "Annan Person", OTHER_PNR)
    absent = await add_child(school, "Okänd Här", ABSENT_PNR)
    await client.get("/plans/new")
    await client.post("/plans/new", {"child_id": absent, "participants": social.node_id})
    absent_plan = re.search(r"/plans/([0-9a-f-]{36})", str(client.response.url))
    assert absent_plan
    prof = PageClient(social)
    try:
        await prof.login("prof")
        status, page = await prof.get("/plans")
        assert status == 200
        cards = {
            c.split("<code>")[1].split("</code>")[0]: c
            for c in page.split('<li class="card invitation">')[1:]
        }
        assert set(cards) == {plan_id, absent_plan.group(1)}
        card = cards[plan_id]
        options = re.findall(r'<option value="([^"]+)"( selected)?>', card)
        [(child_id, selected)] = options  # the matching child, and no other, already chosen
        assert selected and child_id != other and "Annan Person" not in card
        absent_card = cards[absent_plan.group(1)]  # nothing to link to: only decline
        assert "/link" not in absent_card and "/decline" in absent_card
        assert "Inget barn i era register har det här personnumret" in absent_card
        # a child that is not the invitation's is refused at the field, nothing linked
        status, page = await prof.post(f"/invitations/{plan_id}/link", {"child_id": other})
        assert status == 422 and f'id="child_id-{plan_id}-error"' in page
        held = await records.get_plan(social.node.engine, plan_id)
        assert held is not None and (held.status, held.child_id) == ("pending", None)
        status, page = await prof.post(f"/invitations/{plan_id}/link", {"child_id": child_id})
        assert status == 200 and str(prof.response.url).endswith(f"/plans/{plan_id}")
    finally:
        await prof.close()
    _, view = await school.api("GET", f"/plans/{plan_id}", "lead")
    assert {p["node_id"]: p["status"] for p in view["participants"]}[social.node_id] == "linked"


async def test_fragment_editor_errors_point_at_the_row_and_nothing_is_saved(
    pair: list[RunningNode], client: PageClient
) -> None:
    school, social = pair
    await client.login("lead")
    plan_id = await create_plan(client, school, social)
    await client.get(f"/plans/{plan_id}")
    form = {
        "category": "education",
        "summary": "Sammanfattning",
        # first action row blank: the error must still name the second row
        "actions-0-who": "",
        "actions-1-who": "Mentor",
        "actions-1-what": "Läxhjälp",
        "actions-1-start": "2026-02-30",
    }
    status, page = await client.post(f"/plans/{plan_id}/fragments", form)
    assert status == 422
    assert 'id="actions-0-start-error"' in page  # blank rows are dropped, so it is row 0 now
    assert "Ange ett datum som ÅÅÅÅ-MM-DD." in page
    assert 'value="Läxhjälp"' in page and "Sammanfattning</textarea>" in page
    status, body = await school.api("GET", f"/plans/{plan_id}/fragments", "lead")
    assert status == 200 and body == []
    # "add a row" re-renders with one more row and saves nothing
    status, page = await client.post(
        f"/plans/{plan_id}/fragments", {"category": "education", "add_row": "goals"}
    )
    assert status == 200 and 'id="goals-2-what"' in page
    status, body = await school.api("GET", f"/plans/{plan_id}/fragments", "lead")
    assert body == []


async def test_consent_form_errors_are_shown_next_to_their_fields(
    pair: list[RunningNode], client: PageClient
) -> None:
    school, social = pair
    await client.login("lead")
    plan_id = await create_plan(client, school, social)
    await client.get(f"/plans/{plan_id}/consent")
    status, page = await client.post(
        f"/plans/{plan_id}/consent",
        {
            "person-0-name": "Anna Testsson",
            "person-0-role": "guardian",
            "person-0-required": "on",
            "person-0-answer": "consents",
            "person-1-role": "child",
            "person-1-name": "Kim Testsson",
            "person-1-age": "tolv",
            "grant": f"{social.node_id}|{school.node_id}|social",
            "valid_from": "2026-11-01",
            "valid_until": "2026-10-01",
            "evidence_ref": "",
        },
    )
    assert status == 422
    assert 'id="valid_until-error"' in page and "Måste vara efter startdatumet." in page
    assert 'id="evidence_ref-error"' in page
    # each person's problem at its own field, in Swedish
    assert 'id="person-0-answered_on-error"' in page and "Ange när personen svarade." in page
    assert 'id="person-0-method-error"' in page
    assert 'id="person-1-age-error"' in page and "Ange åldern i hela år" in page
    assert 'value="Anna Testsson"' in page
    assert "letters, digits" not in page and "Bokstäver, siffror" not in page
    status, page = await client.get(f"/plans/{plan_id}/consent?lang=en")
    status, page = await client.post(
        f"/plans/{plan_id}/consent?lang=en",
        {
            "person-0-name": "",
            "person-0-role": "guardian",
            "person-0-required": "on",
            "person-0-answer": "consents",
            "person-0-method": "signed_form",
            "grant": f"{social.node_id}|{school.node_id}|social",
            "valid_from": "2026-11-01",
            "valid_until": "2027-10-01",
            "evidence_ref": "Blankett 1",
        },
    )
    # a row without a name is a blank row: no one is required
    assert status == 422 and 'id="people-error"' in page
    assert "At least one person whose consent is required." in page
    assert f'value="{social.node_id}|{school.node_id}|social" checked' in page
    assert await records.consents_for_plan(school.node.engine, plan_id) == []


async def test_operators_never_open_plan_pages_and_professionals_never_open_ops(
    pair: list[RunningNode], client: PageClient
) -> None:
    school, social = pair
    await client.login("lead")
    plan_id = await create_plan(client, school, social)
    for path in ("/ops", "/ops/log", "/ops/peers", "/ops/outbox", "/ops/stats"):
        status, _ = await client.get(path)
        assert status == 403, path
    ops = PageClient(school)
    try:
        await ops.login("ops")
        for path in (
            "/plans",
            f"/plans/{plan_id}",
            f"/plans/{plan_id}/shared",
            f"/plans/{plan_id}/family",
            f"/plans/{plan_id}/consent",
            f"/plans/{plan_id}/fhir",
            "/children",
        ):
            status, page = await ops.get(path)
            assert status == 403, path
            assert "Testa Testsson" not in page and CHILD_PNR not in page
        status, page = await ops.get(f"/ops/log?plan_id={plan_id}")
        assert status == 200 and "plan.invite" in page
        assert "Testa Testsson" not in page and "Oro" not in page
        status, page = await ops.get("/ops/log?since=igår&plan_id=x")
        assert status == 422 and 'id="since-error"' in page and 'id="plan_id-error"' in page
        status, _ = await ops.post("/ops/verify", {})
        assert status == 200 and 'data-ok="true"' in ops.last
    finally:
        await ops.close()
    prof = PageClient(school)
    try:
        await prof.login("prof")
        status, _ = await prof.get(f"/plans/{plan_id}/consent")  # lead only
        assert status == 403
        status, _ = await prof.get("/plans/new")
        assert status == 403
    finally:
        await prof.close()


async def test_the_api_and_bearer_tokens_work_as_before(pair: list[RunningNode]) -> None:
    school = pair[0]
    status, body = await school.api("GET", "/me", "lead")
    assert status == 200 and body["role"] == "lead"
    async with aiohttp.ClientSession() as http:
        async with http.get(school.url + "/api/v1/me") as resp:
            assert resp.status == 401
            assert resp.content_type == "application/problem+json"
            assert "Set-Cookie" not in resp.headers
        # a session cookie is no way into the API
        page = PageClient(school)
        try:
            await page.login("lead")
            async with page.session.get(school.url + "/api/v1/me") as resp:
                assert resp.status == 401
        finally:
            await page.close()
        async with http.get(
            school.url + "/api/v1/nope",
            headers={"Authorization": f"Bearer {school.tokens['lead']}"},
        ) as resp:
            assert resp.status == 404 and resp.content_type == "application/problem+json"


async def test_english_is_one_click_away_and_remembered(client: PageClient) -> None:
    _, page = await client.get("/login?lang=en")
    assert '<html lang="en">' in page and "Sign in" in page
    _, page = await client.get("/login")
    assert '<html lang="en">' in page
    _, page = await client.get("/login?lang=sv")
    assert '<html lang="sv">' in page and "Logga in" in page


async def test_unknown_pages_get_an_html_404_and_other_routes_are_left_alone(
    client: PageClient,
) -> None:
    status, page = await client.get("/no-such-page")
    assert status == 404 and "Sidan finns inte" in page
    async with client.session.get(client.node.url + "/healthz") as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        assert "Set-Cookie" not in resp.headers
    async with client.session.get(client.node.url + "/api/v1/no-such") as resp:
        assert resp.content_type == "application/problem+json"  # browsers too get problems
    async with aiohttp.ClientSession() as http, http.get(client.node.url + "/nope") as resp:
        assert resp.status == 404 and resp.content_type == "application/problem+json"


async def test_a_new_password_ends_open_sessions(
    pair: list[RunningNode], client: PageClient
) -> None:
    await client.login("prof")
    _status, page = await client.get("/plans")
    assert "Mina planer" in page
    await set_password(pair[0].node.engine, "prof", "ett-helt-nytt-lösenord")
    _, page = await client.get("/plans")
    assert 'action="/login"' in page


def test_cookies_are_secure_on_https_unless_overridden(tmp_path: Path) -> None:
    def config(base_url: str) -> NodeConfig:
        return NodeConfig.model_validate(
            {
                "node": {
                    "id": "x.test",
                    "agency_name": "X",
                    "agency_kind": "school",
                    "base_url": base_url,
                },
                "auth": {"session_lifetime_s": 3600, "idle_timeout_s": 600},
                "directory": tmp_path,
            }
        )

    assert settings_for(config("https://skola.example.se"), {}).cookie_secure
    assert not settings_for(config("http://127.0.0.1:8400"), {}).cookie_secure
    env = {"BARNPLAN_WEB_COOKIE_SECURE": "true"}
    assert settings_for(config("http://127.0.0.1:8400"), env).cookie_secure
    env = {"BARNPLAN_WEB_COOKIE_SECURE": "false"}
    assert not settings_for(config("https://skola.example.se"), env).cookie_secure
    key = (tmp_path / "web-session.key").read_text()
    settings = settings_for(config("https://x.se"), {})
    assert settings.session_key  # same key read back
    assert (settings.session_max_age_s, settings.idle_timeout_s) == (3600, 600)  # [auth]
    assert (tmp_path / "web-session.key").read_text() == key
    assert (tmp_path / "web-session.key").stat().st_mode & 0o077 == 0


@pytest.mark.slow  # barnplan CLI subprocesses
async def test_cli_sets_a_password_from_stdin(pair: list[RunningNode]) -> None:
    directory = pair[1].node.config.directory
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "node",
            "users",
            "passwd",
            "ops",
            "--password-stdin",
            "--dir",
            str(directory),
        ],
        input="ett-annat-lösenord-2\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert await password_login(pair[1].node.engine, "ops", "ett-annat-lösenord-2") is not None
    with pytest.raises(InvalidInput) as refused:
        await set_password(pair[1].node.engine, "ops", "kort")
    assert "password" in refused.value.errors


async def test_new_versions_consent_and_a_confirmed_revocation_through_the_pages(
    pair: list[RunningNode], client: PageClient
) -> None:
    school, social = pair
    await client.login("lead")
    plan_id = await create_plan(client, school, social)
    await client.get(f"/plans/{plan_id}")
    status, _ = await client.post(
        f"/plans/{plan_id}/fragments",
        {
            "category": "education",
            "indicators": "achieving",
            "summary": "Första",
            "needs-0-what": "Stöd",
        },
    )
    assert status == 200
    fragment_id = re.search(r'id="fragment-([0-9a-f-]{36})"', client.last)
    assert fragment_id
    status, page = await client.get(f"/plans/{plan_id}/fragments/{fragment_id.group(1)}")
    assert status == 200 and "Första</textarea>" in page and 'value="Stöd"' in page
    status, page = await client.post(
        f"/plans/{plan_id}/fragments/{fragment_id.group(1)}",
        {"category": "education", "summary": "Andra", "needs-0-what": "Mer stöd"},
    )
    assert status == 200 and "version 2" in page
    _, body = await school.api("GET", f"/plans/{plan_id}/fragments", "lead")
    assert [(f["version"], f["content"]["summary"]) for f in body] == [(2, "Andra")]

    await client.get(f"/plans/{plan_id}/consent")
    status, page = await client.post(
        f"/plans/{plan_id}/consent",
        {
            "person-0-name": "Anna Testsson",
            "person-0-role": "guardian",
            "person-0-required": "on",
            "person-0-answer": "consents",
            "person-0-answered_on": "2026-11-01",
            "person-0-method": "e_form",
            "grant": f"{social.node_id}|{school.node_id}|social",
            "valid_from": "2026-11-01",
            "valid_until": "2027-11-01",
            "evidence_ref": "Blankett 7",
        },
    )
    assert status == 200 and "Samtycket är registrerat och skickat." in page
    [consent] = await records.consents_for_plan(school.node.engine, plan_id)
    assert consent["valid_until"] == "2027-11-01T23:59:59Z"
    assert consent["grants"] == [
        {"from": social.node_id, "to": [school.node_id], "categories": ["social"]}
    ]
    # without the confirmation box ticked nothing is revoked
    await client.get(f"/plans/{plan_id}/revoke?consent_id={consent['consent_id']}")
    status, page = await client.post(
        f"/plans/{plan_id}/revoke", {"consent_id": consent["consent_id"], "back": "plan"}
    )
    assert status == 422 and 'id="confirm-error"' in page
    status, page = await client.get(f"/plans/{plan_id}")
    assert "Återkallat" not in page
    status, page = await client.post(
        f"/plans/{plan_id}/revoke",
        {"consent_id": consent["consent_id"], "back": "plan", "confirm": "yes"},
    )
    assert status == 200 and "Samtycket är återkallat. 1 deltagare meddelas." in page
    assert "Återkallat" in page
    status, page = await client.get(f"/plans/{plan_id}/shared")
    assert status == 200 and 'data-status="revoked"' in page


async def test_every_page_renders_in_english_too(
    pair: list[RunningNode], client: PageClient
) -> None:
    school, social = pair
    await client.login("lead")
    plan_id = await create_plan(client, school, social)
    for path in (
        "/plans",
        "/children",
        "/plans/new",
        f"/plans/{plan_id}",
        f"/plans/{plan_id}/consent",
        f"/plans/{plan_id}/shared",
    ):
        sep = "&" if "?" in path else "?"
        status, page = await client.get(f"{path}{sep}lang=en")
        assert status in (200, 404), path  # shared: 404 until consent is recorded
        assert '<html lang="en">' in page, path
    ops = PageClient(school)
    try:
        await ops.login("ops")
        for path in ("/ops", "/ops/log", "/ops/peers", "/ops/outbox?all=1", "/ops/stats"):
            status, page = await ops.get(f"{path}{'&' if '?' in path else '?'}lang=en")
            assert status == 200 and '<html lang="en">' in page, path
    finally:
        await ops.close()


async def test_the_operators_overview_shows_the_logs_size_and_where_it_was_archived(
    pair: list[RunningNode], clock: ManualClock, tmp_path: Path
) -> None:
    """What an operator plans ``log archive`` from, on /ops: the entries in the store, their
    size, the last days' growth, and, after an archive, up to which entry it reaches."""
    school, social = pair
    for _ in range(3):
        hello = {"started_at": format_time(clock.now())}
        assert (await school.node.peers.send(social.node_id, "hello", hello)).ok
    ops = PageClient(school)
    try:
        await ops.login("ops")
        status, page = await ops.get("/ops")
        assert status == 200
        size = await log_size_of(school)
        assert f"{size.entries} poster i databasen" in page
        assert f"Nr {size.first_seq} till {size.last_seq}." in page
        assert 'id="log-archived">Inget är arkiverat.' in page
        assert page.count('<tr><th scope="row">') == 7  # the last seven days' growth

        clock.advance(1)
        assert set((await checkpoint_and_witness(school.node)).values()) == {"ok"}
        clock.advance(1)
        report = await archive_log(school.node, clock.now(), tmp_path / "skola.jsonl")
        assert report is not None
        status, page = await ops.get("/ops?lang=en")
        after = await log_size_of(school)
        assert f"{after.entries} entries in the database" in page and after.entries < size.entries
        assert f"The entries up to no. {report.last_seq} have been moved" in page
    finally:
        await ops.close()


async def log_size_of(node: RunningNode) -> LogSize:
    async with node.node.engine.connect() as conn:
        return await log_size(conn)


def _consent_form(social: RunningNode, school: RunningNode, **extra: str) -> dict[str, str]:
    """Two guardians by name, both required; only the first has consented."""
    return {
        "person-0-name": "Anna Testsson",
        "person-0-role": "guardian",
        "person-0-required": "on",
        "person-0-answer": "consents",
        "person-0-answered_on": "2026-11-01",
        "person-0-method": "signed_form",
        "person-0-form_ref": "Blankett 2026-117",
        "person-1-name": "Bertil Testsson",
        "person-1-role": "guardian",
        "person-1-required": "on",
        "person-1-answer": "not_asked",
        "grant": f"{social.node_id}|{school.node_id}|social",
        "valid_from": "2026-11-01",
        "valid_until": "2027-11-01",
        "evidence_ref": "Blankett 2026-117",
        **extra,
    }


async def test_an_incomplete_consent_is_confirmed_shown_waiting_by_name_and_completed_in_one_step(
    pair: list[RunningNode], client: PageClient
) -> None:
    school, social = pair
    await client.login("lead")
    plan_id = await create_plan(client, school, social)
    await client.get(f"/plans/{plan_id}/consent")
    # told before it is sent: nothing is signed until the lead confirms
    status, page = await client.post(f"/plans/{plan_id}/consent", _consent_form(social, school))
    assert status == 200
    assert "Samtycket blir ofullständigt – väntar på Bertil Testsson." in page
    assert 'id="confirm_incomplete"' in page
    assert await records.consents_for_plan(school.node.engine, plan_id) == []
    status, page = await client.post(
        f"/plans/{plan_id}/consent", _consent_form(social, school, confirm_incomplete="yes")
    )
    assert status == 200 and f"/plans/{plan_id}" in str(client.response.url)
    assert "Ofullständigt – väntar på Bertil Testsson" in page
    assert "Gällande" not in page
    [first] = await records.consents_for_plan(school.node.engine, plan_id)
    assert [c["ref"] for c in first["required"]] == ["p1", "p2"]
    assert [c["ref"] for c in first["given_by"]] == ["p1"]
    assert "Testsson" not in str(first) and "replaces" not in first
    status, page = await client.get(f"/plans/{plan_id}?lang=en")
    assert "Incomplete — waiting for Bertil Testsson" in page and "In force" not in page

    # the consent page: who answered what, when and how; one form for the missing answer
    status, page = await client.get(f"/plans/{plan_id}/consent?lang=sv")
    assert "Ofullständigt – väntar på Bertil Testsson" in page
    assert "Underskriven blankett (Blankett 2026-117)" in page
    assert 'id="answer-p2"' in page and 'id="answer-p1"' not in page
    status, page = await client.post(
        f"/plans/{plan_id}/consent/answer",
        {"ref": "p2", "answer": "consents", "answered_on": "2026-11-03", "method": ""},
    )
    assert status == 422
    assert 'id="answer-p2-method-error"' in page
    assert "Ange hur personen svarade: blankett, e-tjänst, e-legitimation eller möte." in page
    assert len(await records.consents_for_plan(school.node.engine, plan_id)) == 1
    status, page = await client.post(
        f"/plans/{plan_id}/consent/answer",
        {"ref": "p2", "answer": "consents", "answered_on": "2026-11-03", "method": "e_form"},
    )
    assert status == 200 and str(client.response.url).endswith(f"/plans/{plan_id}/consent")
    assert "Det ersätter det tidigare samtycket." in page
    assert "Ofullständigt" not in page and "Gällande" in page
    _, second = await records.consents_for_plan(school.node.engine, plan_id)
    assert second["replaces"] == first["consent_id"]
    assert {c["ref"] for c in second["given_by"]} == {"p1", "p2"}
    assert second["grants"] == first["grants"]
    status, page = await client.get(f"/plans/{plan_id}")
    assert "Ersatt av ett nyare samtycke" in page and "Gällande" in page
    # only the current consent can be revoked from the plan page
    assert f"revoke?consent_id={first['consent_id']}" not in page
    assert f"revoke?consent_id={second['consent_id']}" in page
