"""Running a node's HTTP server: open the node, serve the app, close cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from .config import NodeConfig
from .logs import configure_logging
from .runtime import Node, open_node
from .store.engine import create_engine
from .store.migration_head import at_head
from .tls import client_ssl
from .web.app import create_app


async def open_for_serving(config: NodeConfig) -> Node:
    """``open_node``, with alembic run only when the store is not already at head.

    Why: alembic's import and script loading were a tenth of start-up, spent on every start
    of a node that was migrated long ago, while a returning peer still answers nothing. A new
    or older store (or any doubt) is migrated exactly as before; ``barnplan migrate`` and
    ``init`` always run alembic.
    """
    probe = create_engine(config.database_url, config.store.schema_name)
    try:
        current = await at_head(probe)
    finally:
        await probe.dispose()
    return await open_node(config, run_migrations=not current)


async def serve_forever(config: NodeConfig) -> None:
    client_ssl(config)  # a wrong [tls] setting stops the node here, not its first request
    configure_logging()
    log = structlog.get_logger("barnplan.node")
    node = await open_for_serving(config)
    app = create_app(node)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        log.info(
            "node.started",
            node=config.node.id,
            host=config.server.host,
            port=config.server.port,
            store=config.database_url.split(":", 1)[0],
            peers=len(node.keyring.node_ids()),
            checkpoint_interval_s=config.log.checkpoint_interval_s,
            assembly_deadline_s=config.assembly.deadline_s,
        )
        await asyncio.Event().wait()
    finally:
        log.info("node.stopping", node=config.node.id)
        await runner.cleanup()
        await node.close()


def run_server(config: NodeConfig) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(config))
