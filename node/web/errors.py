"""Last-resort error handling: unknown routes, wrong methods, oversize bodies and unexpected
exceptions become problem documents (never a traceback, never a bare 500 page)."""

from __future__ import annotations

import os
import re
import time

import structlog
from aiohttp import web

from .auth import HandlerType
from .problems import problem

log = structlog.get_logger("barnplan.web")


@web.middleware
async def error_pages(request: web.Request, handler: HandlerType) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return problem(413, "Payload too large", "the body exceeds server.max_body_bytes")
    except web.HTTPException as exc:
        if exc.status >= 400:
            response = problem(exc.status, exc.reason, exc.text or exc.reason)
            if "Allow" in exc.headers:  # RFC 9110: a 405 names the allowed methods
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        raise
    except Exception as exc:
        log.error("web.unhandled", path=request.path, error=exc.__class__.__name__)
        return problem(500, "Internal error", "the node could not complete the request")


_REQUEST_ID = re.compile(r"^[A-Za-z0-9-]{8,64}$")


@web.middleware
async def request_context(request: web.Request, handler: HandlerType) -> web.StreamResponse:
    """Bind a request id for every log line of this request and log the request's outcome.

    The path is logged without its query string; paths hold ids only, never personal data.
    """
    given = request.headers.get("X-Request-Id", "")
    request_id = given if _REQUEST_ID.match(given) else os.urandom(8).hex()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        log.info(
            "http.request",
            method=request.method,
            path=request.path,
            status=status,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        structlog.contextvars.unbind_contextvars("request_id")
