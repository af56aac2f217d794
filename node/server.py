"""Running a node's HTTP server: open the node, serve the app, close cleanly on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import structlog
from aiohttp import web

from protocol.clock import SystemClock

from .config import ConfigError, NodeConfig
from .instance_lock import serving_lock
from .logs import configure_logging
from .runtime import open_node
from .store.engine import create_engine, sqlite_file
from .tls import client_ssl
from .web.app import create_app


async def serve_forever(config: NodeConfig) -> None:
    client_ssl(config)  # a wrong [tls] setting stops the node here, not its first request
    # a missing, damaged or foreign store is refused before the lock file is made, so a node
    # that cannot start creates nothing
    probe = create_engine(config.database_url, config.store.schema_name)
    try:
        async with probe.connect():
            pass
    finally:
        await probe.dispose()
    store_file = sqlite_file(config.database_url)
    with serving_lock(config.directory, store_file, SystemClock().now()):
        await _serve(config)


async def _serve(config: NodeConfig) -> None:
    configure_logging()
    log = structlog.get_logger("barnplan.node")
    stop = asyncio.Event()
    stopped_by: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):

        def on_signal(sig: signal.Signals = sig) -> None:
            stopped_by.append(sig.name)
            stop.set()

        loop.add_signal_handler(sig, on_signal)
    node = await open_node(config)
    app = create_app(node)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.server.host, config.server.port)
        try:
            await site.start()
        except OSError as exc:
            where = f"{config.server.host}:{config.server.port}"
            raise ConfigError(
                f"cannot listen on {where}: {exc.strerror or exc}: another program (or "
                "another barnplan serve) may be using it; set server.host and server.port in "
                "barnplan.toml (or serve --port)"
            ) from None
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
        await stop.wait()
    finally:
        log.info("node.stopping", node=config.node.id, signal=",".join(stopped_by) or None)
        await runner.cleanup()
        await node.close()


def run_server(config: NodeConfig) -> None:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(config))
