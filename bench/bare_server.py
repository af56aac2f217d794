"""A bare aiohttp server: the baseline that the node's federation endpoint is measured against.

It answers ``POST /federation/v1/messages`` by reading the whole body and returning fixed reply
bytes (captured from a real node), with no verification, store, log or signing: what aiohttp and
the loopback cost by themselves. ``--delay-ms`` makes every answer that much late.

``--signatures`` adds exactly the cryptography a signed exchange cannot do without, and nothing
else: one Ed25519 verification of a signature over a message as long as the request, and one
signature over the reply, with the product's own key classes (libsodium). It is the ceiling the
issues' goals were reasoned from ("one verify and one sign per request"), measured in the same
run rather than estimated: what a node would reach if everything besides its two signatures —
parsing, validation, the consent decision, the store, the exchange log — cost nothing.

``python -m bench.bare_server --port PORT --reply FILE [--delay-ms MS] [--signatures]``; prints
``ready`` once it listens and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web

from protocol.keys import SigningKey

FEDERATION_PATH = "/federation/v1/messages"
MAX_BODY = 262_144  # the node's default server.max_body_bytes


class SignatureWork:
    """One verify and one sign per exchange, on messages of the exchange's own sizes.

    The verified message is not the request itself (its bytes carry a node's signature over a
    canonical form this server does not build): it is a message of the request's length signed
    once at first sight of that length, so each verification hashes as many bytes and does the
    same curve arithmetic. An Ed25519 verification's cost depends on nothing else."""

    def __init__(self) -> None:
        self._key = SigningKey.generate("signatures.bench.invalid", datetime.now(UTC))
        self._public = self._key.public()
        self._signed: dict[int, tuple[bytes, bytes]] = {}

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def verify_like(self, data: bytes) -> None:
        """Verify one signature over a message as long as ``data``; raise if it fails."""
        pair = self._signed.get(len(data))
        if pair is None:
            message = bytes(len(data))
            pair = self._signed[len(data)] = (message, self._key.sign(message))
        message, signature = pair
        if not self._public.verify(signature, message):
            raise RuntimeError("a signature made here did not verify")


def bare_app(
    reply: bytes, delay_s: float = 0.0, signatures: SignatureWork | None = None
) -> web.Application:
    async def messages(request: web.Request) -> web.Response:
        data = await request.read()
        if delay_s:
            await asyncio.sleep(delay_s)
        if signatures is not None:
            signatures.verify_like(data)
            signatures.sign(reply)
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
    parser.add_argument(
        "--signatures",
        action="store_true",
        help="verify one signature and sign the reply per request (the cryptography alone)",
    )
    args = parser.parse_args()
    work = SignatureWork() if args.signatures else None
    app = bare_app(args.reply.read_bytes(), args.delay_ms / 1000, work)
    asyncio.run(serve([(args.port, app)]))


if __name__ == "__main__":
    main()
