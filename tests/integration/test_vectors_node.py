"""Every request vector of protocol/vectors, sent to a running node as a peer would send it.

The node is ``peer.barnplan.test`` (the vectors' audience) and trusts the vectors' node document,
as ``barnplan peers add`` would record it. For each vector the node's clock, size and depth limits
and skew are set to the vector's ``verify`` parameters and its replay memory is emptied; then the
vector's exact ``input_text`` is POSTed to the federation endpoint. A refused vector must come
back as a signed ``error`` with the vector's reason, its HTTP status (SPEC.md §8) and the ``to``
and ``re`` the vector names; a valid one must pass verification (it is answered by its handler:
the node knows none of the vectors' plans, so a ``consent.statement`` is refused ``plan_unknown``,
which is a handler's decision, not a verification failure).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.services.outbound import FEDERATION_PATH
from node.services.peers import FetchedPeer, trust_peer
from node.web.federation import HTTP_STATUS
from protocol.clock import ManualClock, parse_time
from protocol.documents import verify_node_document
from protocol.envelope import StaticKeyRing, verify_envelope
from protocol.errors import Reason
from protocol.jsontext import parse_json_object
from protocol.keys import PublicKey, fingerprint
from protocol.messages import REPLY_TYPES
from tests.conftest import StoreFactory
from tests.support.federation import RunningNode, start_node

pytestmark = pytest.mark.slow  # every protocol vector against a node on each store

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "protocol" / "vectors"
INDEX = json.loads((VECTORS / "index.json").read_text("utf-8"))
AUDIENCE = INDEX["audience"]
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
# the reasons of SPEC.md §5.3: what a valid vector must never be answered with
VERIFICATION_REASONS = {
    "malformed",
    "too_deep",
    "too_large",
    "unsupported_version",
    "unknown_type",
    "wrong_audience",
    "unknown_sender",
    "unknown_key",
    "key_not_valid",
    "bad_signature",
    "outside_skew",
    "not_yet_valid",
    "expired",
    "replayed",
}


def load(name: str) -> dict[str, Any]:
    vector: dict[str, Any] = json.loads((VECTORS / f"{name}.json").read_text("utf-8"))
    return vector


REQUESTS = [
    e["name"]
    for e in INDEX["vectors"]
    if e["kind"] == "envelope" and load(e["name"])["verify"].get("request")
]


@pytest.fixture
async def node(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[RunningNode]:
    """The vectors' audience, trusting the vectors' node document."""
    running = await start_node(
        tmp_path, (AUDIENCE, "Vektorby peer", "school"), store_factory(AUDIENCE), clock
    )
    try:
        text = load("node-document/valid")["input_text"].encode("utf-8")
        document, keys = verify_node_document(text)
        fetched = FetchedPeer(document, parse_json_object(text), [fingerprint(k.raw) for k in keys])
        await trust_peer(running.node.engine, fetched, AUDIENCE, clock.now())
        await running.node.reload_peers()
        yield running
    finally:
        await running.stop()
        await running.node.close()


async def post(node: RunningNode, vector: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """``vector``'s text to the node, under the vector's verification parameters."""
    verify = vector["verify"]
    config = node.node.config
    config.server.max_body_bytes = verify["max_body_bytes"]
    config.server.max_json_depth = verify["max_depth"]
    config.protocol.clock_skew_s = verify["skew_s"]
    assert isinstance(node.node.clock, ManualClock)
    node.node.clock.set(parse_time(verify["now"]))
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            node.url + FEDERATION_PATH,
            data=vector["input_text"].encode("utf-8"),
            headers={"Content-Type": "application/json"},
        ) as resp,
    ):
        body = await resp.json()
        assert isinstance(body, dict)
        return resp.status, body


def verified_reply(node: RunningNode, reply: dict[str, Any], audience: str) -> Any:
    """The reply checked with the node's key (valid from long ago: vector clocks go back to
    2026-05, before this node's key was made)."""
    key = node.node.identity.key
    public = PublicKey(key.key_id, key.public_raw, datetime(2000, 1, 1, tzinfo=UTC))
    return verify_envelope(
        reply,
        keyring=StaticKeyRing({node.node_id: [public]}),
        audience=audience,
        clock=node.node.clock,
        seen=None,
    )


@pytest.mark.parametrize("name", REQUESTS)
async def test_the_node_answers_each_request_vector_as_it_says(
    node: RunningNode, name: str
) -> None:
    vector = load(name)
    await node.node.seen.prune(node.node.engine, FAR_FUTURE)  # every vector: empty replay memory
    for earlier in vector["verify"]["seen_first"]:
        status, reply = await post(node, load(earlier))
        assert status == 200, reply
    status, reply = await post(node, vector)
    if vector["expect"] == "valid":
        message = json.loads(vector["input_text"])
        expected_type = REPLY_TYPES[message["type"]]
        if reply["type"] != expected_type:
            assert reply["type"] == "error", reply
            assert reply["body"]["reason"] not in VERIFICATION_REASONS, reply
        verified_reply(node, reply, message["from"])
        return
    expected = vector["error_reply"]
    assert (status, reply["type"], reply["body"]["reason"]) == (
        HTTP_STATUS[Reason(vector["expect"])],
        "error",
        vector["expect"],
    ), reply
    verified = verified_reply(node, reply, expected["to"])
    assert verified.re == expected.get("re")
