"""Loopback ports for nodes a command starts itself (the demo): below the kernel's ephemeral
range, each handed out once.

A node's port is chosen when its directory is made and bound when its server starts, seconds or
minutes and many outgoing connections later. A port from the ephemeral range (what binding port
0 returns) can be taken meanwhile as the local end of one of those connections, by this or any
other program, and the node then fails to start with EADDRINUSE (seen: the demo's social
services node, while other programs on the machine made thousands of connections). Ports below
that range are never handed out that way. The tests' and benchmarks' ``tests/support/ports``
pick from the same range through ``pick_port``.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


def below_ephemeral() -> tuple[int, int]:
    """The ports to pick from: from 20,000 (or 1,000 below the range, if it starts lower) up
    to where the kernel's ephemeral range begins (32768 where it cannot be read)."""
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return min(20000, low - 1000), low


def pick_port(start: int, end: int, taken: set[int]) -> int:
    """A loopback port in ``start``..``end`` that nothing listens on now and that is not in
    ``taken`` (the ports already handed out, not yet bound); added to ``taken``. If none is
    found in 200 tries, one the kernel picks."""
    pick = random.Random()
    for _ in range(200):
        port = pick.randrange(start, end)
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        taken.add(port)
        return port
    with socket.socket() as sock:  # everything tried was taken: let the kernel pick
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
