"""Loopback ports for test and benchmark nodes: the product's picker
(``node.cli.loopback_ports``, which the demo uses) over this worker's share of the range. One
copy, used by tests/support and by bench/."""

from __future__ import annotations

import os

from node.cli.loopback_ports import LOOPBACK as LOOPBACK
from node.cli.loopback_ports import below_ephemeral, pick_port

# the ports free_port has returned in this process (test and benchmark set-up only)
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
    """A loopback port nothing uses right now, below the kernel's ephemeral range
    (``node.cli.loopback_ports`` says why), from this worker's share of it.

    Nor is a port handed out twice by one process: the 33 node directories of the assembly
    benchmark are all made before any of them binds, and 33 random picks from ~12,700 ports
    share one about one time in twenty-five (seen: the host failed to start with EADDRINUSE).
    """
    return pick_port(*worker_range(*below_ephemeral()), _HANDED_OUT)
