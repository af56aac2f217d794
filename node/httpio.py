"""Reading a whole HTTP body up to a limit (``StreamReader.read(n)`` may return less)."""

from __future__ import annotations

from aiohttp import StreamReader


async def read_limited(stream: StreamReader, limit: int) -> bytes:
    """Read until the end of the body or ``limit + 1`` bytes, whichever comes first, so the
    caller can tell 'exactly at the limit' from 'over it' without buffering an unbounded body."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream.iter_chunked(65_536):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]
