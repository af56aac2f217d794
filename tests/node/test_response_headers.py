"""Every response of a node carries the same protective headers, over real HTTP: the API (which
answers with names and personnummer), its errors, the public endpoints, static files, the
pages and the federation endpoint (which answers with plan content).

* ``X-Content-Type-Options: nosniff`` everywhere;
* ``Cache-Control: no-store`` everywhere but ``/static/``;
* no ``Server`` header naming the software and its version.
"""

from __future__ import annotations

import json

import aiohttp
from multidict import CIMultiDictProxy

from protocol.clock import format_time
from protocol.envelope import sign_envelope
from tests.support.federation import RunningNode

HTML = {"Accept": "text/html"}


def assert_protected(what: str, headers: CIMultiDictProxy[str], cacheable: bool = False) -> None:
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    if not cacheable:
        assert headers.get("Cache-Control") == "no-store", what
    assert headers.get("Server") in (None, "barnplan"), (what, headers.get("Server"))


async def test_every_kind_of_response_carries_nosniff_no_store_and_no_server_version(
    sqlite_pair: list[RunningNode],
) -> None:
    school, social = sqlite_pair
    bearer = {"Authorization": f"Bearer {school.tokens['prof']}"}
    status, _ = await school.api(
        "POST", "/children", "prof", {"name": "Testa Testsson", "personnummer": "20150315-2389"}
    )
    assert status == 201
    requests: list[tuple[str, str, dict[str, str], int]] = [
        ("GET", "/api/v1/children", bearer, 200),  # names and personnummer
        ("GET", "/api/v1/me", bearer, 200),
        ("GET", "/api/v1/children", {}, 401),  # problem documents
        ("GET", "/api/v1/no-such-thing", bearer, 404),
        ("DELETE", "/api/v1/children", bearer, 405),
        ("GET", "/healthz", {}, 200),
        ("GET", "/metrics", {}, 200),
        ("GET", "/.well-known/barnplan/node", {}, 200),
        ("GET", "/openapi.yaml", {}, 200),
        ("GET", "/no-such-page", {}, 404),
        ("GET", "/no-such-page", HTML, 404),  # the HTML error page
        ("GET", "/login", HTML, 200),
        ("GET", "/federation/v1/messages", {}, 405),
    ]
    async with aiohttp.ClientSession() as http:
        for method, path, headers, expected in requests:
            async with http.request(
                method, school.url + path, headers=headers, allow_redirects=False
            ) as resp:
                assert resp.status == expected, (method, path, resp.status)
                assert_protected(f"{method} {path}", resp.headers)
        async with http.get(school.url + "/static/barnplan.css") as resp:
            assert resp.status == 200
            assert_protected("static", resp.headers, cacheable=True)
            assert "no-store" not in resp.headers.get("Cache-Control", "")

        # the federation endpoint: a peer's message and its signed reply
        envelope = sign_envelope(
            type="hello",
            body={"started_at": format_time(social.node.clock.now())},
            sender=social.node_id,
            to=school.node_id,
            key=social.node.identity.key,
            clock=social.node.clock,
        )
        async with http.post(
            school.url + "/federation/v1/messages",
            data=json.dumps(envelope),
            headers={"Content-Type": "application/json"},
        ) as resp:
            assert resp.status == 200 and (await resp.json())["type"] == "hello.ack"
            assert_protected("federation", resp.headers)
