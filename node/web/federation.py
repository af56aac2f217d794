"""``POST /federation/v1/messages``: the only way peers talk to this node.

Peers' messages take a path of their own through the app (``federation_direct``): the API's and
the pages' middlewares (request ids, bearer tokens, sessions, HTML error pages, the per-request
``http.request`` line) do nothing for them, and skipping them makes serving a fragment request
some 5–8 % cheaper (``python -m bench serve``, interleaved runs). What a message did is in
the exchange log instead, a refusal also in the process log (``federation.refused``), and the
counts in the metrics. Wrong methods and unknown paths still take the ordinary path and its
problem documents.
"""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from protocol.canonical import encode_json

from ..httpio import read_limited
from .auth import HandlerType
from .keys import NODE_KEY
from .problems import problem

FEDERATION_ROUTE = "federation.messages"

log = structlog.get_logger("barnplan.web")
routes = web.RouteTableDef()


@routes.post("/federation/v1/messages", name=FEDERATION_ROUTE)
async def messages(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    try:
        data = await read_limited(request.content, node.config.server.max_body_bytes)
        status, reply = await node.inbound.handle(data)
    except Exception as exc:  # what error_pages does for the other routes: no traceback out
        log.error("federation.unhandled", error=exc.__class__.__name__)
        return problem(500, "Internal error", "the node could not complete the request")
    return web.Response(status=status, body=reply_bytes(reply), content_type="application/json")


@web.middleware
async def federation_direct(request: web.Request, handler: HandlerType) -> web.StreamResponse:
    """The app's first middleware: a peer's message goes straight to ``messages``, past the
    middlewares after this one. Any other request goes on through them."""
    match = request.match_info
    if match.http_exception is None and match.route.name == FEDERATION_ROUTE:
        return await match.handler(request)
    return await handler(request)


def reply_bytes(reply: dict[str, Any]) -> bytes:
    """UTF-8 JSON of a signed reply, resent fragments written from their canonical bytes. The
    bytes need not be canonical: the receiver verifies over the canonical form."""
    return encode_json(reply)
