"""A bare aiohttp server: the baseline that the node's federation endpoint is measured against.

It answers ``POST /federation/v1/messages`` by reading the whole body and returning fixed reply
bytes (captured from a real node), with no verification, store, log or signing: what aiohttp and
the loopback cost by themselves. ``--delay-ms`` makes every answer that much late.

``python -m bench.bare_server --port PORT --reply FILE [--delay-ms MS]``; prints ``ready`` once
it listens and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from aiohttp import web

FEDERATION_PATH = "/federation/v1/messages"
MAX_BODY = 262_144  # the node's default server.max_body_bytes


def bare_app(reply: bytes, delay_s: float = 0.0) -> web.Application:
    async def messages(request: web.Request) -> web.Response:
        await request.read()
        if delay_s:
            await asyncio.sleep(delay_s)
        return web.Response(body=reply, content_type="application/json")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(FEDERATION_PATH, messages)
    return app


async def serve(apps: list[tuple[int, web.Application]]) -> None:
    """Serve each app on its loopback port; print ``ready``; stop on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runners: list[web.AppRunner] = []
    try:
        for port, app in apps:
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            runners.append(runner)
            await web.TCPSite(runner, "127.0.0.1", port).start()
        print("ready", flush=True)
        await stop.wait()
    finally:
        for runner in runners:
            await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_server")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reply", type=Path, required=True)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    app = bare_app(args.reply.read_bytes(), args.delay_ms / 1000)
    asyncio.run(serve([(args.port, app)]))


if __name__ == "__main__":
    main()
