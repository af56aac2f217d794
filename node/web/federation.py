"""``POST /federation/v1/messages``: the only way peers talk to this node."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from protocol.canonical import encode_json

from ..httpio import read_limited
from .keys import NODE_KEY

routes = web.RouteTableDef()


@routes.post("/federation/v1/messages")
async def messages(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    limit = node.config.server.max_body_bytes
    data = await read_limited(request.content, limit)
    status, reply = await node.inbound.handle(data)
    return web.Response(
        status=status,
        body=reply_bytes(reply),
        content_type="application/json",
    )


def reply_bytes(reply: dict[str, Any]) -> bytes:
    """UTF-8 JSON of a signed reply, resent fragments written from their canonical bytes. The
    bytes need not be canonical: the receiver verifies over the canonical form."""
    return encode_json(reply)
