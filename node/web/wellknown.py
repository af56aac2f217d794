"""Public, unauthenticated endpoints: the signed node document and the health check."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from ..services.peers import WELL_KNOWN
from ..store.log_counts import counts_after
from ..store.verifications import last_verification
from .keys import NODE_KEY

routes = web.RouteTableDef()


@routes.get(WELL_KNOWN)
async def node_document(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    # a key change made by the CLI a moment ago is published at once, never the old key's
    # document signed after it ended (SPEC.md §4.6)
    await node.refresh_identity()
    return web.json_response(node.identity.node_document(node.clock.now()))


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Up, and what runs: the release and the store schema revision. A node whose store lacks
    that schema never gets this far: it refuses to start (``node.store.schema_check``)."""
    node = request.app[NODE_KEY]
    build = node.build
    return web.json_response(
        {"status": "ok", "node": node.node_id, "version": build.version, "schema": build.schema}
    )


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition: counts and latencies by type, outcome and reason; no personal
    data. Restrict it to the monitoring network at the proxy. The exchange log's counts are
    brought up to date first, so messages other processes (CLI commands) logged are in them."""
    node = request.app[NODE_KEY]
    node.metrics.count_log(await counts_after(node.engine, node.metrics.log_counted_to))
    verification = await last_verification(node.engine)
    if verification is not None:
        node.metrics.set_last_verification(verification.ok, verification.at)
    body = node.metrics.render()
    return web.Response(body=body, headers={"Content-Type": node.metrics.content_type})


@routes.get("/openapi.yaml")
async def openapi(request: web.Request) -> web.Response:
    """The local API's OpenAPI 3.1 document, as packaged with this node."""
    text = (resources.files("node.web") / "openapi.yaml").read_text(encoding="utf-8")
    return web.Response(text=text, content_type="application/vnd.oai.openapi")
