"""Peers' messages take their own path through the app (``federation_direct``): straight to the
federation handler, past the API's and the pages' middlewares, while every other request still
goes through them. Real nodes on loopback, SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from sqlalchemy import select

from node.logs import configure_logging
from node.services.inbound import Outcome
from node.store.tables import ExchangeLogEntry
from protocol.clock import ManualClock, format_time
from protocol.envelope import Verified, sign_envelope, verify_envelope
from protocol.errors import Reason
from protocol.messages import ErrorBody
from tests.conftest import StoreFactory
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, start_federation, stop_all

PATH = "/federation/v1/messages"
JSON = {"Content-Type": "application/json"}  # what a message is sent as (SPEC §8)


@pytest.fixture
async def pair(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[tuple[RunningNode, RunningNode, io.StringIO]]:
    stream = io.StringIO()
    configure_logging(stream)
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL], store_factory, clock)
    try:
        yield nodes[0], nodes[1], stream
    finally:
        await stop_all(nodes)
        structlog.reset_defaults()


def events(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def hello(sender: RunningNode, to: RunningNode) -> bytes:
    envelope = sign_envelope(
        type="hello",
        body={"started_at": format_time(sender.node.clock.now())},
        sender=sender.node_id,
        to=to.node_id,
        key=sender.node.identity.key,
        clock=sender.node.clock,
    )
    return json.dumps(envelope).encode()


async def test_a_message_skips_the_api_middlewares_and_an_api_request_does_not(
    pair: tuple[RunningNode, RunningNode, io.StringIO],
) -> None:
    school, social, stream = pair
    async with aiohttp.ClientSession() as session:
        async with session.post(
            social.url + PATH, data=hello(school, social), headers=JSON
        ) as resp:
            assert resp.status == 200
            assert "X-Request-Id" not in resp.headers  # request_context did not run
            reply = await resp.json()
        async with session.get(social.url + "/api/v1/children") as resp:
            assert resp.status == 401  # bearer_auth ran
            assert "X-Request-Id" in resp.headers  # request_context ran
    assert reply["type"] == "hello.ack" and reply["re"]
    lines = events(stream)
    requests = [e for e in lines if e["event"] == "http.request"]
    # (the node documents fetched while the fixture connected the peers are logged too)
    assert [e["path"] for e in requests if e["path"].startswith(("/api", "/fed"))] == [
        "/api/v1/children"
    ]
    # what the message did is in the exchange log all the same
    table = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
    async with social.node.engine.connect() as conn:
        last = (await conn.execute(select(table).order_by(table.c.seq.desc()))).first()
    assert last is not None
    assert (last.direction, last.peer, last.message_type, last.outcome) == (
        "in",
        school.node_id,
        "hello",
        "ok",
    )


async def test_a_wrong_method_on_the_federation_path_still_gets_a_problem_document(
    pair: tuple[RunningNode, RunningNode, io.StringIO],
) -> None:
    _, social, _ = pair
    async with aiohttp.ClientSession() as session, session.get(social.url + PATH) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "POST"
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["status"] == 405


async def test_an_unexpected_error_is_a_500_problem_and_one_log_line_without_a_traceback(
    pair: tuple[RunningNode, RunningNode, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    school, social, stream = pair

    async def broken(data: bytes) -> tuple[int, dict[str, object]]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(social.node.inbound, "handle", broken)
    async with (
        aiohttp.ClientSession() as session,
        session.post(social.url + PATH, data=hello(school, social), headers=JSON) as resp,
    ):
        assert resp.status == 500
        assert resp.content_type == "application/problem+json"
        assert (await resp.json())["title"] == "Internal error"
    logged = [e for e in events(stream) if e["event"] == "federation.unhandled"]
    assert len(logged) == 1 and logged[0]["error"] == "RuntimeError"
    assert "Traceback" not in stream.getvalue() and "a bug" not in stream.getvalue()


async def test_a_handler_that_fails_answers_a_signed_internal_error_and_logs_it(
    pair: tuple[RunningNode, RunningNode, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SPEC §8: a responder that fails unexpectedly answers a signed ``error`` with reason
    ``internal`` and HTTP 500, and the exchange log has the message as ``failed``."""
    school, social, stream = pair

    async def broken(node: object, message: Verified) -> Outcome:
        raise RuntimeError("a bug with 201503152389 in it")

    monkeypatch.setitem(social.node.inbound._handlers, "hello", broken)
    body = hello(school, social)
    sent_id = json.loads(body)["id"]
    async with aiohttp.ClientSession() as session:
        async with session.post(social.url + PATH, data=body, headers=JSON) as resp:
            assert resp.status == 500
            data = await resp.read()
        async with session.post(social.url + PATH, data=body, headers=JSON) as again:
            assert again.status == 409  # its id was remembered, as for a failed state change
    reply = verify_envelope(
        data,
        keyring=school.node.keyring,
        audience=school.node_id,
        clock=school.node.clock,
        seen=None,
    )
    assert reply.type == "error" and reply.re == sent_id
    assert isinstance(reply.body, ErrorBody) and reply.body.reason == Reason.INTERNAL
    table = ExchangeLogEntry.__table__  # type: ignore[attr-defined]
    async with social.node.engine.connect() as conn:
        rows = (await conn.execute(select(table).where(table.c.message_id == sent_id))).all()
    assert [(r.direction, r.peer, r.message_type, r.outcome, r.reason) for r in rows] == [
        ("in", school.node_id, "hello", "failed", "internal"),
        ("in", school.node_id, "hello", "refused", "replayed"),
    ]
    logged = [e for e in events(stream) if e["event"] == "federation.handler_failed"]
    assert [(e["type"], e["error"]) for e in logged] == [("hello", "RuntimeError")]
    assert "Traceback" not in stream.getvalue() and "201503152389" not in stream.getvalue()


async def test_a_handler_failure_with_the_store_down_too_is_still_a_signed_internal_error(
    pair: tuple[RunningNode, RunningNode, io.StringIO], monkeypatch: pytest.MonkeyPatch
) -> None:
    school, social, stream = pair

    async def broken(node: object, message: Verified) -> Outcome:
        raise RuntimeError("the store is gone")

    async def no_store(*args: object, **kwargs: object) -> int:
        raise OSError("disk I/O error")

    monkeypatch.setitem(social.node.inbound._handlers, "hello", broken)
    monkeypatch.setattr(social.node.exchange_log, "append", no_store)
    async with (
        aiohttp.ClientSession() as session,
        session.post(social.url + PATH, data=hello(school, social), headers=JSON) as resp,
    ):
        assert resp.status == 500
        data = await resp.read()
    reply = verify_envelope(
        data, keyring=school.node.keyring, audience=school.node_id,
        clock=school.node.clock, seen=None,
    )  # fmt: skip
    assert isinstance(reply.body, ErrorBody) and reply.body.reason == Reason.INTERNAL
    events_seen = [(e["event"], e.get("error")) for e in events(stream)]
    assert ("federation.handler_failed", "RuntimeError") in events_seen
    assert ("federation.change_failed", "OSError") in events_seen
