"""A federation of real node processes (``barnplan serve``), driven over HTTP like a user would.

Slower than the in-process harness; used where a process must stop, crash or restart.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from node.config import load_config
from node.services.peers import fetch_peer, trust_peer
from node.store.engine import create_engine
from protocol.clock import SystemClock
from protocol.envelope import sign_envelope
from protocol.keys import SigningKey, load_private_key
from tests.support.nodes import NodeProcess, barnplan, init_node


class ProcNode(NodeProcess):
    tokens: dict[str, str]

    def api(self, method: str, path: str, user: str = "lead", body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + "/api/v1" + path,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.tokens[user]}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def link_invitation(self, plan_id: str) -> None:
        """A professional here links the plan's invitation to the one matching local child (no
        invitation is linked without that decision) and the node tells the lead."""
        status, waiting = self.api("GET", "/invitations", "prof")
        assert status == 200, waiting
        [child_id] = next(i["matches"] for i in waiting if i["plan_id"] == plan_id)
        status, linked = self.api(
            "POST", f"/invitations/{plan_id}/link", "prof", {"child_id": child_id}
        )
        assert status == 201 and linked["lead_notified"] == "ok", linked

    def signing_key(self) -> SigningKey:
        return load_private_key(self.directory / "node.key", self.node_id, datetime.now(UTC))

    def set_fault(self, name: str, on: bool) -> None:
        path = self.directory / "barnplan.toml"
        text = path.read_text()
        flag = "true" if on else "false"
        text = text.replace(f"{name} = true", f"{name} = {flag}").replace(
            f"{name} = false", f"{name} = {flag}"
        )
        path.write_text(text)


def make_nodes(base: Path, specs: list[tuple[str, str, str]]) -> list[ProcNode]:
    nodes: list[ProcNode] = []
    for node_id, name, kind in specs:
        plain = init_node(base, node_id, kind, name)
        node = ProcNode(plain.directory, plain.node_id, plain.port)
        node.tokens = {}
        for user, role in (("lead", "lead"), ("prof", "professional"), ("ops", "operator")):
            out = barnplan(
                "users",
                "add",
                user,
                "--name",
                f"Test {role}",
                "--role",
                role,
                "--dir",
                str(node.directory),
            ).stdout
            node.tokens[user] = out.split("token: ")[1].strip()
        nodes.append(node)
    return nodes


async def trust_all(nodes: list[ProcNode]) -> None:
    """Each node trusts every other (what ``barnplan peers add --yes`` does), written directly."""
    async with aiohttp.ClientSession() as session:
        docs = {n.node_id: await fetch_peer(session, n.url) for n in nodes}
    for node in nodes:
        config = load_config(node.directory)
        engine = create_engine(config.database_url, config.store.schema_name)
        try:
            for other in nodes:
                if other is not node:
                    await trust_peer(engine, docs[other.node_id], node.node_id, SystemClock().now())
        finally:
            await engine.dispose()


def ask_signed(
    requester: ProcNode, holder: ProcNode, plan_id: str, consent_id: str, category: str
) -> tuple[int, list[str]]:
    """Send a real signed fragments.request as ``requester``; (released, withheld reasons)."""
    envelope = sign_envelope(
        type="fragments.request",
        body={
            "plan_id": plan_id,
            "consent_id": consent_id,
            "categories": [category],
            "purpose": "sip",
            "professional": f"{requester.node_id}/u/lead",
        },
        sender=requester.node_id,
        to=holder.node_id,
        key=requester.signing_key(),
        clock=SystemClock(),
        message_id=str(uuid.uuid4()),
    )
    request = urllib.request.Request(
        holder.url + "/federation/v1/messages",
        data=json.dumps(envelope).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        reply = json.loads(resp.read())
    body = reply["body"]
    return len(body["fragments"]), [w["reason"] for w in body["withheld"]]


def run(coro: Any) -> Any:
    return asyncio.run(coro)
