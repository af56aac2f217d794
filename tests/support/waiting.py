"""Waiting for a condition with a deadline, instead of sleeping a fixed time and hoping.

A fixed sleep is either too short on a loaded machine (the test fails for no reason) or too long
everywhere else (the suite is slow for no reason). These poll the condition and return as soon as
it holds; at the deadline they fail with a message that says what did not happen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")
What = str | Callable[[], object]


def _failure(what: What, timeout: float) -> AssertionError:
    said = what() if callable(what) else what  # a callable says what it saw, evaluated only now
    return AssertionError(f"not within {timeout:g} s: {said}")


def wait_until(
    predicate: Callable[[], T], *, timeout: float, what: What, interval: float = 0.05
) -> T:
    """Call ``predicate`` until it returns something true, and return that.

    Fails with ``AssertionError("not within TIMEOUT s: WHAT")`` once ``timeout`` seconds have
    passed; ``what`` may be a callable, for a message that shows the state at the deadline. The
    predicate is always tried at least once, and once more at the deadline.
    """
    deadline = time.monotonic() + timeout
    while True:
        last = time.monotonic() >= deadline
        result = predicate()
        if result:
            return result
        if last:
            raise _failure(what, timeout)
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def wait_until_async(
    predicate: Callable[[], Awaitable[T] | T],
    *,
    timeout: float,
    what: What,
    interval: float = 0.02,
) -> T:
    """``wait_until`` for async tests: the predicate may be a coroutine function, and the event
    loop keeps running (other tasks, in-process servers) between tries."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        last = loop.time() >= deadline
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if last:
            raise _failure(what, timeout)
        await asyncio.sleep(min(interval, max(0.0, deadline - loop.time())))
