"""``bash deploy/demo.sh --oidc``: the demo starts a development OpenID provider too, every
node's staff can sign in through it, and stopping the demo stops the provider with the nodes."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import aiohttp
import pytest

from node.cli.dev_provider import provider_unavailable
from tests.support.oidc import sign_in_at_provider
from tests.support.waiting import wait_until

from .test_demo_signals import READY, in_session, start_demo

IFO = re.compile(r"ifo\.kungsbacka\.se\s+(http://127\.0\.0\.1:\d+)/")


async def sign_in(node_url: str, login: str) -> str:
    """Sign in on the node's pages through the provider; the /plans page afterwards."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(node_url + "/login/oidc", allow_redirects=False) as response:
            assert response.status == 303, await response.text()
            authorization = response.headers["Location"]
        callback = node_url + "/login/oidc/callback"
        answer = await sign_in_at_provider(http, authorization, login, callback)
        async with http.get(callback, params=answer) as response:
            assert response.status == 200
            return await response.text()


@pytest.mark.slow
def test_the_demo_with_a_provider(tmp_path: Path) -> None:
    why = provider_unavailable()
    if why:
        pytest.skip(why)
    script, out = start_demo(tmp_path, "--oidc")
    try:

        def ready() -> bool:
            assert script.poll() is None, out.read_text(errors="replace")[-3000:]
            return READY in out.read_text(errors="replace")

        wait_until(ready, timeout=600, what="the demo waits with its nodes running", interval=0.2)
        printed = out.read_text(errors="replace")
        assert "Logga in med Demo-inloggning" in printed and "prof@ifo.kungsbacka.se" in printed
        # the guardian signed in at the lead through the residents' provider, read Min plan and
        # the access report (BUP, stopped in step 8, shown as not answering)
        assert (
            "Maria signed in with E-legitimation (demo); Min plan names Sara Samordnare" in printed
        )
        assert re.search(r"bup\.regionhalland\.se\s+not_answered", printed), printed[-3000:]
        assert re.search(r"elevhalsa\.kungsbacka\.se\s+answered\s+[1-9]", printed)
        assert "/familj, 'Logga in med E-legitimation (demo)', log in as maria" in printed
        # she wrote the family's view and withdrew the consent herself: every agency refuses
        assert "she writes the family's view: it is on Min plan" in printed
        assert "Revoke: Maria's withdrawal at the lead reaches every agency" in printed
        assert printed.count("withheld: consent_revoked") == 3
        match = IFO.search(printed)
        assert match is not None, printed[-2000:]
        page = asyncio.run(sign_in(match.group(1), "prof@ifo.kungsbacka.se"))
        assert "Demo professional (Kungsbacka kommun, IFO)" in page and "Mina planer" in page
        provider = [cmd for cmd in in_session(script.pid).values() if "provider.js" in cmd]
        assert len(provider) == 2  # the staff's provider and the family's

        os.kill(script.pid, signal.SIGTERM)
        script.wait(timeout=60)
        wait_until(lambda: in_session(script.pid) == {}, timeout=30, what="nodes and provider exit")
    finally:
        if script.poll() is None:
            script.kill()
        for pid in in_session(script.pid):
            os.kill(pid, signal.SIGKILL)
