"""The demo's (and the tests') loopback ports: below the ephemeral range, each handed out once,
never one something listens on."""

from __future__ import annotations

import socket

from node.cli.loopback_ports import LOOPBACK, below_ephemeral, pick_port


def test_ports_come_from_below_the_ephemeral_range_each_once() -> None:
    start, end = below_ephemeral()
    assert start < end
    taken: set[int] = set()
    picked = [pick_port(start, end, taken) for _ in range(30)]
    assert len(set(picked)) == 30 and set(picked) == taken
    assert all(start <= port < end for port in picked)


def test_a_port_in_use_is_never_picked() -> None:
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen()
        busy = listener.getsockname()[1]
        # the only port in range is busy: the kernel picks another
        assert pick_port(busy, busy + 1, set()) != busy
