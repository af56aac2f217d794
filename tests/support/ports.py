"""Loopback ports for test and benchmark nodes (set-up only: the product never picks its own
port). One copy, used by tests/support and by bench/."""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"


# the ports free_port has returned in this process (test and benchmark set-up only: the
# product never picks its own port)
_HANDED_OUT: set[int] = set()


def worker_range(start: int, end: int) -> tuple[int, int]:
    """This test process's share of ports ``start``..``end``: under pytest-xdist each worker
    (``gw0``, ``gw1``, ...) picks from its own slice, so two workers never hand out the same
    port between choosing it and binding it; outside xdist, all of them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if not worker.startswith("gw") or count <= 1:
        return start, end
    share = (end - start) // count
    index = int(worker[2:]) % count
    return start + index * share, start + (index + 1) * share


def free_port() -> int:
    """A loopback port nothing uses right now, below the kernel's ephemeral range.

    A node's port is chosen when its directory is made and bound when its server starts,
    possibly minutes and thousands of outgoing connections later (the assembly benchmark
    restarts its host). A port from the ephemeral range (what binding port 0 returns) can be
    taken meanwhile as the local end of one of those connections, and the server then fails to
    start with EADDRINUSE; ports below that range are never handed out that way.

    Nor is a port handed out twice by one process: the 33 node directories of the assembly
    benchmark are all made before any of them binds, and 33 random picks from ~12,700 ports
    share one about one time in twenty-five (seen: the host failed to start with EADDRINUSE).
    """
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    start, end = worker_range(min(20000, low - 1000), low)
    pick = random.Random()
    for _ in range(200):
        port = pick.randrange(start, end)
        if port in _HANDED_OUT:
            continue
        with socket.socket() as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    with socket.socket() as sock:  # everything below the range taken: let the OS pick
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])
