"""Many servers in one process and one event loop: real nodes, or bare baseline servers.

Thirty-three node processes would only time-share this machine's two cores, so the benchmarks
that need many peers run them here side by side: each a real node (its own directory, SQLite
store, keys and aiohttp app on its own loopback port, exactly ``create_app(open_node(...))``), or
each a bare server (``bench.bare_server``) returning fixed reply bytes. ``--delay-ms`` delays
every federation request by that much before the node (or bare handler) sees it.

``python -m bench.host nodes --log FILE [--delay-ms MS] DIR...``
``python -m bench.host bare [--delay-ms MS] [--signatures] PORT=REPLYFILE...`` (``--signatures``:
each server also verifies one signature and signs its reply, see ``bench.bare_server``)

Prints ``ready`` once every server listens; runs until SIGTERM, then closes every node.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Middleware

from .bare_server import FEDERATION_PATH, SignatureWork, bare_app, serve

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def delay_middleware(delay_s: float) -> Middleware:
    """Hold every federation request ``delay_s`` before the app sees it."""

    @web.middleware
    async def delay(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == FEDERATION_PATH:
            await asyncio.sleep(delay_s)
        return await handler(request)

    return delay


async def run_nodes(directories: list[Path], delay_s: float, log: Path) -> None:
    from node.config import load_config
    from node.logs import configure_logging
    from node.runtime import Node, open_node
    from node.web.app import create_app

    with log.open("a", encoding="utf-8") as stream:
        configure_logging(stream)
        nodes: list[Node] = []
        try:
            apps: list[tuple[int, web.Application]] = []
            for directory in directories:
                config = load_config(directory)
                node = await open_node(config, run_migrations=False)
                nodes.append(node)
                app = create_app(node)
                if delay_s:
                    app.middlewares.insert(0, delay_middleware(delay_s))
                apps.append((config.server.port, app))
            gc.freeze()  # as `serve` does: the nodes' long-lived objects are never walked again
            await serve(apps)
        finally:
            for node in nodes:
                await node.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.host")
    sub = parser.add_subparsers(dest="mode", required=True)
    nodes = sub.add_parser("nodes")
    nodes.add_argument("--log", type=Path, required=True)
    nodes.add_argument("--delay-ms", type=float, default=0.0)
    nodes.add_argument("dirs", nargs="+", type=Path)
    bare = sub.add_parser("bare")
    bare.add_argument("--delay-ms", type=float, default=0.0)
    bare.add_argument("--signatures", action="store_true")
    bare.add_argument("servers", nargs="+", metavar="PORT=REPLYFILE")
    args = parser.parse_args()
    if args.mode == "nodes":
        asyncio.run(run_nodes(args.dirs, args.delay_ms / 1000, args.log))
        return
    apps: list[tuple[int, web.Application]] = []
    work = SignatureWork() if args.signatures else None  # one key: the servers share a process
    for spec in args.servers:
        port, _, path = spec.partition("=")
        apps.append((int(port), bare_app(Path(path).read_bytes(), args.delay_ms / 1000, work)))
    asyncio.run(serve(apps))


if __name__ == "__main__":
    main()
