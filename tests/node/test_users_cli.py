"""``barnplan users token|disable|enable|list`` against a node that is serving meanwhile.

An operator whose professional's token leaked replaces it; one whose professional left disables
them. Each command runs as its own process on the node directory (as an operator runs it) while
the node serves real HTTP on loopback, on SQLite and on PostgreSQL, so these tests prove that the
running node honours the change on the very next request: the API by bearer token, the pages'
password login and a web session opened before the change.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from node.cli.main import main
from node.services.passwords import set_password
from protocol.clock import ManualClock
from tests.browser.support import PASSWORD, PageClient
from tests.conftest import StoreFactory
from tests.support.federation import SCHOOL, RunningNode, start_federation, stop_all

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses, seconds each

TOKEN_LINE = re.compile(r"^token: (bp_\S+)$", re.MULTILINE)
LOGIN_FAILED = "Fel användar-id eller lösenord."


@pytest.fixture
async def school(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[RunningNode]:
    """One serving node (users lead, prof, ops), every user with the web password PASSWORD."""
    [running] = await start_federation(tmp_path, [SCHOOL], store_factory, clock)
    try:
        for user in running.tokens:
            await set_password(running.node.engine, user, PASSWORD)
        yield running
    finally:
        await stop_all([running])


async def users_cli(node: RunningNode, *args: str) -> subprocess.CompletedProcess[str]:
    """``barnplan users ARGS --dir <the node's directory>`` as a separate process."""
    return await cli(node, "users", *args)


async def cli(node: RunningNode, *args: str) -> subprocess.CompletedProcess[str]:
    """``barnplan ARGS --dir <the node's directory>`` as a separate process."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node",
        *args,
        "--dir",
        str(node.node.config.directory),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return subprocess.CompletedProcess(args, process.returncode, out.decode(), err.decode())


async def call_me(node: RunningNode, token: str) -> tuple[int, str, Any]:
    """GET /api/v1/me with ``token``: (status, content type, body)."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(node.url + "/api/v1/me", headers={"Authorization": f"Bearer {token}"}) as resp,
    ):
        return resp.status, resp.content_type, await resp.json(content_type=None)


async def test_a_new_token_replaces_the_old_one_at_once(school: RunningNode) -> None:
    old = school.tokens["prof"]
    assert (await call_me(school, old))[0] == 200

    done = await users_cli(school, "token", "prof")
    assert done.returncode == 0, done.stderr
    assert "the old one no longer works" in done.stdout
    match = TOKEN_LINE.search(done.stdout)
    assert match, done.stdout
    new = match.group(1)

    status, content_type, body = await call_me(school, old)
    assert (status, content_type) == (401, "application/problem+json")
    assert body["detail"] == "unknown or revoked token"
    status, _, body = await call_me(school, new)
    assert status == 200 and body["user_id"] == "prof"
    # the other users keep their tokens
    assert (await call_me(school, school.tokens["lead"]))[0] == 200

    again = await users_cli(school, "token", "prof", "--json")
    assert again.returncode == 0, again.stderr
    printed = json.loads(again.stdout)
    assert printed["user_id"] == "prof" and printed["token"].startswith("bp_")
    assert (await call_me(school, new))[0] == 401
    assert (await call_me(school, printed["token"]))[0] == 200


async def test_a_disabled_user_is_refused_everywhere_until_enabled(school: RunningNode) -> None:
    token = school.tokens["prof"]
    page = PageClient(school)
    try:
        await page.login("prof")
        status, html = await page.get("/plans")
        assert status == 200 and "Mina planer" in html  # a session open before the change

        done = await users_cli(school, "disable", "prof")
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("disabled prof (since ")

        # the API: the same answer as for a token that never existed
        refused = await call_me(school, token)
        never_issued = await call_me(school, "bp_" + "x" * 43)
        assert refused[:2] == (401, "application/problem+json")
        assert refused[2] == never_issued[2]
        # the session opened before: sent to the login page on its next request
        status, html = await page.get("/plans")
        assert status == 200 and 'action="/login"' in html and "Mina planer" not in html
        # the right password no longer signs in, with the message of a wrong one
        status, html = await page.login("prof")
        assert status == 401 and LOGIN_FAILED in html
        # nobody else is affected
        assert (await call_me(school, school.tokens["lead"]))[0] == 200

        done = await users_cli(school, "enable", "prof")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "enabled prof (professional)"

        status, _, body = await call_me(school, token)
        assert status == 200 and body["user_id"] == "prof"
        status, html = await page.login("prof")
        assert status == 200 and "Mina planer" in html
    finally:
        await page.close()


async def test_a_session_left_unused_while_disabled_stays_over_after_enable(
    school: RunningNode,
) -> None:
    """Disabling ends the user's web sessions for good: a session cookie nobody used while the
    user was disabled (on a stolen laptop, say) does not come back when the user is enabled."""
    idle, fresh = PageClient(school), PageClient(school)
    try:
        await idle.login("prof")
        status, html = await idle.get("/plans")
        assert status == 200 and "Mina planer" in html
        for command in ("disable", "enable"):
            done = await users_cli(school, command, "prof")
            assert done.returncode == 0, done.stderr
        status, html = await idle.get("/plans")
        assert status == 200 and 'action="/login"' in html and "Mina planer" not in html
        # signing in again works, and that session lasts
        status, html = await fresh.login("prof")
        assert status == 200 and "Mina planer" in html
        status, html = await fresh.get("/plans")
        assert status == 200 and "Mina planer" in html
    finally:
        await idle.close()
        await fresh.close()


async def test_disabling_twice_keeps_the_first_time_and_list_shows_it(
    school: RunningNode,
) -> None:
    first = await users_cli(school, "disable", "ops", "--json")
    assert first.returncode == 0, first.stderr
    disabled = json.loads(first.stdout)
    assert disabled["disabled"] is True and disabled["disabled_at"]
    second = await users_cli(school, "disable", "ops", "--json")
    assert json.loads(second.stdout)["disabled_at"] == disabled["disabled_at"]

    listed = await users_cli(school, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["user_id"]: row for row in json.loads(listed.stdout)}
    assert rows["ops"] == {
        "user_id": "ops",
        "display_name": "Test operator",
        "role": "operator",
        "disabled": True,
        "disabled_at": disabled["disabled_at"],
        "provider": None,  # signs in with a password, not through an OpenID provider
        "subject": None,
    }
    assert rows["lead"]["disabled"] is False and rows["lead"]["disabled_at"] is None

    text = await users_cli(school, "list")
    states = {line.split()[0]: line.split()[2] for line in text.stdout.splitlines()}
    assert states == {"lead": "active", "ops": "disabled", "prof": "active"}
    assert "token" not in listed.stdout + text.stdout  # never a token nor its hash

    await users_cli(school, "enable", "ops")
    listed = await users_cli(school, "list", "--json")
    assert all(row["disabled_at"] is None for row in json.loads(listed.stdout))


async def test_an_unknown_user_is_named_with_what_to_do_and_no_traceback(
    school: RunningNode,
) -> None:
    for command in ("token", "disable", "enable"):
        done = await users_cli(school, command, "nobody")
        assert done.returncode == 1, command
        assert done.stderr == (
            "error: no user 'nobody' on this node: 'barnplan users list' shows its users\n"
        ), command
        assert done.stdout == "", command
    listed = await users_cli(school, "list", "--json")
    assert [row["user_id"] for row in json.loads(listed.stdout)] == ["lead", "ops", "prof"]


async def test_the_cli_does_not_act_as_a_disabled_user(school: RunningNode) -> None:
    await users_cli(school, "disable", "lead")
    ran = await cli(
        school, "plans", "create", "--as", "lead", "--child", "no-child",
        "--participant", "ifo.test.se",
    )  # fmt: skip
    assert ran.returncode == 1
    assert ran.stderr == (
        "error: user 'lead' is disabled: act as another user, or enable them with "
        "'barnplan users enable lead'\n"
    )


@pytest.mark.parametrize("command", ["token", "disable", "enable"])
def test_each_new_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, ["users", command, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: main users {command} [OPTIONS] USER_ID" in result.output
    assert "--dir" in result.output and "--json" in result.output


async def test_a_user_pre_registered_by_provider_subject(school: RunningNode) -> None:
    """``users add --subject``: the person signs in through the agency's provider with the
    role given; an identity number is stored (and listed) only as a keyed hash."""
    no_issuer = await users_cli(
        school, "add", "eva", "--name", "Eva Test", "--role", "lead", "--subject", "SE1"
    )
    assert no_issuer.returncode != 0
    assert "set oidc.issuer in barnplan.toml or give --issuer" in no_issuer.stderr
    added = await users_cli(
        school,
        "add",
        "eva",
        "--name",
        "Eva Test",
        "--role",
        "lead",
        "--subject",
        "19900101-1234",
        "--issuer",
        "https://idp.kommun.test",
    )
    assert added.returncode == 0, added.stderr
    assert "signs in through https://idp.kommun.test" in added.stdout
    listed = await users_cli(school, "list", "--json")
    eva = {row["user_id"]: row for row in json.loads(listed.stdout)}["eva"]
    assert eva["provider"] == "https://idp.kommun.test"
    assert eva["subject"].startswith("hmac:") and "900101" not in eva["subject"]
    again = await users_cli(
        school,
        "add",
        "eva2",
        "--name",
        "Eva Test",
        "--role",
        "lead",
        "--subject",
        "199001011234",
        "--issuer",
        "https://idp.kommun.test",
    )
    assert again.returncode != 0 and "--subject" in again.stderr  # the same person, once
