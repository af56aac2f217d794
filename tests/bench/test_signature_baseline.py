"""The signatures-only baseline does the cryptography it claims, and answers the reply bytes.

``bench.bare_server --signatures`` is the ceiling the serve and assembly goals are compared
with; if it skipped its verification or its signing, that ceiling would be a lie."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bench.bare_server import FEDERATION_PATH, SignatureWork, bare_app

REPLY = b'{"v":1,"type":"fragments.response","body":{"fragments":[]}}'


def test_verify_like_verifies_a_real_signature_per_length() -> None:
    work = SignatureWork()
    work.verify_like(b"x" * 600)
    work.verify_like(b"y" * 600)  # same length: the same signed message, verified again
    work.verify_like(b"z" * 41)
    assert sorted(work._signed) == [41, 600]
    assert len(work.sign(REPLY)) == 64


def test_verify_like_fails_on_a_bad_signature() -> None:
    work = SignatureWork()
    work.verify_like(b"x" * 100)
    message, signature = work._signed[100]
    work._signed[100] = (message, bytes([signature[0] ^ 1]) + signature[1:])
    with pytest.raises(RuntimeError, match="did not verify"):
        work.verify_like(b"x" * 100)


async def test_signatures_server_answers_the_reply_bytes_over_loopback() -> None:
    work = SignatureWork()
    server = TestServer(bare_app(REPLY, signatures=work), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            url = str(server.make_url(FEDERATION_PATH))
            async with session.post(url, data=b"r" * 700) as resp:
                assert resp.status == 200
                assert await resp.read() == REPLY
    finally:
        await server.close()
    assert list(work._signed) == [700]  # the request's length was verified
