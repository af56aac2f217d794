"""Running a node's HTTP server: open the node, serve the app, close cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib

import structlog
from aiohttp import web

from .config import NodeConfig
from .logs import configure_logging
from .runtime import open_node
from .web.app import create_app


async def serve_forever(config: NodeConfig) -> None:
    configure_logging()
    log = structlog.get_logger("barnplan.node")
    node = await open_node(config)
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
