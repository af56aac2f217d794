"""``POST /federation/v1/messages``: the only way peers talk to this node."""

from __future__ import annotations

import json

from aiohttp import web

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
        body=json.dumps(reply, ensure_ascii=False).encode("utf-8"),
        content_type="application/json",
    )
