"""Running a node's HTTP server: open the node, serve the app, close cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from .config import NodeConfig
from .runtime import open_node
from .web.app import create_app


async def serve_forever(config: NodeConfig) -> None:
    node = await open_node(config)
    app = create_app(node)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.server.host, config.server.port)
        await site.start()
        print(
            f"barnplan node {config.node.id} serving on "
            f"http://{config.server.host}:{config.server.port}",
            flush=True,
        )
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        await node.close()


def run_server(config: NodeConfig) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(config))
