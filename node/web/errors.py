"""Last-resort error handling: unknown routes, wrong methods, oversize bodies and unexpected
exceptions become problem documents (never a traceback, never a bare 500 page)."""

from __future__ import annotations

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
            return problem(exc.status, exc.reason, exc.text or exc.reason)
        raise
    except Exception as exc:
        log.error("web.unhandled", path=request.path, error=exc.__class__.__name__)
        return problem(500, "Internal error", "the node could not complete the request")
