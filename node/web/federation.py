"""``POST /federation/v1/messages``: the only way peers talk to this node.

Peers' messages take a path of their own through the app (``federation_direct``): the API's and
the pages' middlewares (request ids, bearer tokens, sessions, HTML error pages, the per-request
``http.request`` line) do nothing for them, and skipping them makes serving a fragment request
some 5–8 % cheaper (``python -m bench serve``, interleaved runs). What a message did is in
the exchange log instead, a refusal also in the process log (``federation.refused``), and the
counts in the metrics. Wrong methods and unknown paths still take the ordinary path and its
problem documents.

A message is JSON and nothing else (SPEC.md §8): a request whose ``Content-Type`` is anything
but ``application/json`` (with at most ``charset=utf-8``) is refused with HTTP 415 and a signed
``error`` (``malformed``), logged like every refusal, before its body is parsed.
"""

from __future__ import annotations

from email.message import Message
from typing import Any

import structlog
from aiohttp import hdrs, web

from protocol.canonical import encode_json
from protocol.errors import Reason

from ..errors import Refusal
from ..httpio import read_limited
from ..services import inbound
from .auth import HandlerType
from .keys import NODE_KEY
from .problems import problem

FEDERATION_ROUTE = "federation.messages"

log = structlog.get_logger("barnplan.web")
routes = web.RouteTableDef()

# The HTTP status of a refusal (SPEC.md §9): by the refusal's code where the node answers
# otherwise than its reason says, else by its reason, else 400. A reply that is no refusal is 200.
STATUS_BY_CODE: dict[str, int] = {
    "refused": 400,  # a handler refusing what a message says, whatever the reason (§9)
    "not_json": 415,  # SPEC §8: a request not sent as application/json
    "not_lead_of_plan": 404,  # a consent statement for a plan this node is not in
    "checkpoint_conflict": 409,  # a checkpoint not extending the log witnessed (§7.8)
}
HTTP_STATUS: dict[Reason, int] = {
    Reason.MALFORMED: 400,
    Reason.TOO_DEEP: 400,
    Reason.UNKNOWN_TYPE: 400,
    Reason.UNSUPPORTED_VERSION: 400,
    Reason.UNKNOWN_SENDER: 401,
    Reason.UNKNOWN_KEY: 401,
    Reason.KEY_NOT_VALID: 401,
    Reason.BAD_SIGNATURE: 401,
    Reason.NOT_YET_VALID: 401,
    Reason.EXPIRED: 401,
    Reason.OUTSIDE_SKEW: 401,
    Reason.REPLAYED: 409,
    Reason.WRONG_AUDIENCE: 421,
    Reason.TOO_LARGE: 413,
    Reason.INTERNAL: 500,
}


def status_of(refusal: Refusal | None) -> int:
    """The HTTP status of an answer to a peer's message."""
    if refusal is None:
        return 200
    by_code = STATUS_BY_CODE.get(refusal.code)
    if by_code is not None:
        return by_code
    return HTTP_STATUS.get(refusal.reason, 400)


@routes.post("/federation/v1/messages", name=FEDERATION_ROUTE)
async def messages(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    try:
        data = await read_limited(request.content, node.config.server.max_body_bytes)
        if is_json(request.headers.getall(hdrs.CONTENT_TYPE, [])):
            refusal, reply = await node.inbound.handle(data)
        else:
            refusal, reply = await refuse_media_type(node.inbound, data)
    except Exception as exc:  # what error_pages does for the other routes: no traceback out
        log.error("federation.unhandled", error=exc.__class__.__name__)
        return problem(500, "Internal error", "the node could not complete the request")
    return web.Response(
        status=status_of(refusal), body=reply_bytes(reply), content_type="application/json"
    )


@web.middleware
async def federation_direct(request: web.Request, handler: HandlerType) -> web.StreamResponse:
    """The app's first middleware: a peer's message goes straight to ``messages``, past the
    middlewares after this one. Any other request goes on through them."""
    match = request.match_info
    if match.http_exception is None and match.route.name == FEDERATION_ROUTE:
        return await match.handler(request)
    return await handler(request)


def is_json(values: list[str]) -> bool:
    """Is this the one ``Content-Type`` a message may have: ``application/json``, with no
    parameter but ``charset=utf-8`` (any case)? Parsed, as media types are case-insensitive
    and may carry quoted parameters; a missing or repeated header is no."""
    if len(values) != 1:
        return False
    parsed = Message()
    parsed[hdrs.CONTENT_TYPE] = values[0]
    if parsed.get_content_type() != "application/json":
        return False
    params = parsed.get_params() or []
    return all(
        name.lower() == "charset" and isinstance(value, str) and value.lower() == "utf-8"
        for name, value in params[1:]  # the first is the media type itself
    )


async def refuse_media_type(handler: inbound.Inbound, data: bytes) -> inbound.Answer:
    """A request that is not JSON: refused before its body is parsed as an envelope, addressed
    and logged as every request refused before verification is."""
    return await handler.refuse_unverified(
        data, Reason.MALFORMED, "Content-Type must be application/json", code="not_json"
    )


def reply_bytes(reply: dict[str, Any]) -> bytes:
    """UTF-8 JSON of a signed reply, resent fragments written from their canonical bytes. The
    bytes need not be canonical: the receiver verifies over the canonical form."""
    return encode_json(reply)
