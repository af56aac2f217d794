"""The aiohttp application of a node: routes are wired here, handlers live in sibling modules."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from ..runtime import Node
from ..scheduler import build_scheduler
from .api import routes as api_routes
from .auth import bearer_auth
from .errors import error_pages, request_context
from .federation import federation_direct
from .federation import routes as federation_routes
from .headers import common_headers
from .keys import NODE_KEY
from .pages import setup_pages
from .wellknown import routes as wellknown_routes


def create_app(node: Node) -> web.Application:
    """Build the app for ``node``; the node's HTTP client lives and dies with the app."""
    app = web.Application(
        client_max_size=node.config.server.max_body_bytes,
        # peers' messages first, straight to their handler (node/web/federation.py)
        middlewares=[federation_direct, request_context, error_pages, bearer_auth],
    )
    app[NODE_KEY] = node
    app.on_response_prepare.append(common_headers)  # every response, errors included
    app.add_routes(wellknown_routes)
    app.add_routes(federation_routes)
    app.add_routes(api_routes)
    setup_pages(app, node)  # HTML pages: session, CSRF, templates (after the API's middlewares)

    async def background(_app: web.Application) -> AsyncIterator[None]:
        node.http_session()
        scheduler = build_scheduler(node)
        scheduler.start()
        node.start_background()
        yield
        scheduler.shutdown(wait=False)
        if node.http is not None:
            await node.http.close()
            node.http = None

    app.cleanup_ctx.append(background)
    return app
