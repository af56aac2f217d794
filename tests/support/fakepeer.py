"""A misbehaving peer: a plain aiohttp server with a real node document and key.

It is a participant like any other (it publishes a self-signed node document, holds plan
invitations as pending, links them when told to (``link``, a signed ``plan.link`` as a
professional's decision would send) and acknowledges consent statements), so the lead
trusts and asks it; only its answer to ``fragments.request`` misbehaves, in one of the ways a
real peer can: too slow, a corrupted envelope or fragment signature, or a body that is not JSON.
Tests use it to check that assembly degrades to a per-participant status instead of failing.

A member gone bad also answers ``revocations.since`` with whatever ``revocations`` holds (in a
properly signed ``revocations.list``), so catch-up can be tested against a peer that lists
revocations it has no right to pass on.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aiohttp
from aiohttp import web

from node.services.peers import WELL_KNOWN, fetch_peer, trust_peer
from protocol.clock import Clock, format_time
from protocol.documents import build_node_document, sign_fragment
from protocol.encoding import b64url_decode, b64url_encode
from protocol.envelope import sign_envelope
from protocol.keys import SigningKey
from tests.support.federation import RunningNode, free_port

MODES = ("good", "slow", "bad_envelope_signature", "bad_fragment_signature", "not_json")


def corrupt(signed: dict[str, Any]) -> dict[str, Any]:
    """The same object with one bit of its signature flipped: well-formed, but does not verify."""
    raw = bytearray(b64url_decode(signed["sig"]["value"]))
    raw[0] ^= 0x01
    return {**signed, "sig": {**signed["sig"], "value": b64url_encode(bytes(raw))}}


@dataclass
class FakePeer:
    node_id: str
    mode: str
    clock: Clock
    marker: str = ""
    delay_s: float = 0.0
    agency_kind: str = "civic"
    port: int = field(default_factory=free_port)
    key: SigningKey = field(init=False)
    received: list[str] = field(default_factory=list)
    # what it lists to ``revocations.since`` (each {seq, consent_id, plan_id, revoked_at,
    # revoked_by}), whatever the requester's cursor
    revocations: list[dict[str, Any]] = field(default_factory=list)
    document_requests: int = 0  # GETs of its node document (a peer re-fetching it)
    # the bodies it answers ``access.report.request``s with, one per request in turn (the last
    # again when they run out), whatever the request asked: a holder gone bad (SPEC §7.12)
    access_reports: list[dict[str, Any]] = field(default_factory=list)
    _runner: web.AppRunner | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}")
        self.key = SigningKey.generate(self.node_id, self.clock.now() - timedelta(days=1))
        self.marker = self.marker or f"FAKE-{self.mode}-{uuid.uuid4().hex[:8]}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def document(self) -> dict[str, Any]:
        return build_node_document(
            node_id=self.node_id,
            agency_name=f"Fake {self.mode}",
            agency_kind=self.agency_kind,
            base_url=self.url,
            key=self.key,
            issued_at=self.clock.now(),
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(WELL_KNOWN, self._document)
        app.router.add_post("/federation/v1/messages", self._message)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def trusted_by(self, node: RunningNode) -> None:
        """Have ``node`` fetch, verify and trust this fake's document, as an operator would."""
        async with aiohttp.ClientSession() as session:
            fetched = await fetch_peer(session, self.url)
        await trust_peer(node.node.engine, fetched, node.node_id, node.node.clock.now())
        await node.node.reload_peers()

    async def link(self, lead: RunningNode, plan_id: str) -> None:
        """Tell ``lead`` that a professional here linked its invitation (``plan.link``)."""
        envelope = sign_envelope(
            type="plan.link",
            body={"plan_id": plan_id, "status": "linked", "professional": f"{self.node_id}/u/1"},
            sender=self.node_id,
            to=lead.node_id,
            key=self.key,
            clock=self.clock,
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(lead.url + "/federation/v1/messages", json=envelope) as resp,
        ):
            reply = await resp.json()
        assert resp.status == 200 and reply["type"] == "plan.link.ack", reply

    async def _document(self, _request: web.Request) -> web.Response:
        self.document_requests += 1
        return web.json_response(self.document())

    def _reply(self, request: dict[str, Any], type: str, body: dict[str, Any]) -> dict[str, Any]:
        return sign_envelope(
            type=type,
            body=body,
            sender=self.node_id,
            to=request["from"],
            key=self.key,
            clock=self.clock,
            re=request["id"],
        )

    def _fragment(self, body: dict[str, Any], category: str) -> dict[str, Any]:
        now = format_time(self.clock.now())
        return sign_fragment(
            {
                "fragment_id": str(uuid.uuid4()),
                "plan_id": body["plan_id"],
                "consent_id": body["consent_id"],
                "origin": self.node_id,
                "category": category,
                "indicators": ["safe"],
                "version": 1,
                "authored_at": now,
                "signed_at": now,
                "content": {
                    "summary": f"Sammanfattning {self.marker}",
                    "needs": [{"what": f"Behov {self.marker}"}],
                },
            },
            self.key,
        )

    async def _message(self, request: web.Request) -> web.Response:
        message = json.loads(await request.read())
        kind, body = message["type"], message["body"]
        self.received.append(kind)
        reply: dict[str, Any]
        if kind == "plan.invite":
            reply = self._reply(
                message, "plan.invite.reply", {"plan_id": body["plan_id"], "status": "pending"}
            )
        elif kind == "consent.statement":
            consent_id = body["statement"]["consent_id"]
            reply = self._reply(
                message, "consent.ack", {"consent_id": consent_id, "status": "stored"}
            )
        elif kind == "revocations.since":
            cursor = max((r["seq"] for r in self.revocations), default=0)
            listed = {"revocations": self.revocations, "cursor": cursor}
            reply = self._reply(message, "revocations.list", listed)
        elif kind == "hello":
            reply = self._reply(message, "hello.ack", {"ok": True})
        elif kind == "fragments.request":
            return await self._fragments(message)
        elif kind == "access.report.request" and self.access_reports:
            answered = self.received.count(kind) - 1
            body = self.access_reports[min(answered, len(self.access_reports) - 1)]
            reply = self._reply(message, "access.report", body)
        else:
            return web.Response(status=404)
        return web.json_response(reply)

    async def _fragments(self, message: dict[str, Any]) -> web.Response:
        body = message["body"]
        if self.mode == "not_json":
            return web.Response(
                body=b'{"v": 1, "type": "fragments.resp', content_type="application/json"
            )
        fragment = self._fragment(body, body["categories"][0])
        if self.mode == "bad_fragment_signature":
            fragment = corrupt(fragment)
        if self.mode == "slow":
            await asyncio.sleep(self.delay_s)
        reply = self._reply(
            message,
            "fragments.response",
            {
                "plan_id": body["plan_id"],
                "consent_id": body["consent_id"],
                "fragments": [fragment],
                "withheld": [],
            },
        )
        if self.mode == "bad_envelope_signature":
            reply = corrupt(reply)
        return web.json_response(reply)
