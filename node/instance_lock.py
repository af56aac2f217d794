"""One ``barnplan serve`` per node directory (and per SQLite store).

Why: a second ``serve`` on the same directory started without a word and ran a second
scheduler and a second outbox beside the first. A lock file held with ``flock`` for the life of
the process is released by the kernel however the process ends (kill -9 included), so a stale
lock never blocks a restart; the file names the holder so the refusal can say who it is.
On PostgreSQL several processes may serve one store, even from one directory (DESIGN §8: outbox
rows are claimed with SKIP LOCKED, periodic jobs take a database lock), so only a node on SQLite,
the embedded one-process store, is locked: its directory, and its store if that lives elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO

from .errors import Conflict

LOCK_NAME = "serve.lock"


class AlreadyServing(Conflict):
    """Another process serves this node directory or store; the message names it."""

    code = "already_serving"


def _hold(path: Path, now: datetime) -> IO[str]:
    handle = path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise AlreadyServing(
            f"{holder} already serves this node ({path} is locked): stop it first "
            "(systemctl stop barnplan), or give this one another --dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"barnplan serve pid {os.getpid()} since {now.isoformat(timespec='seconds')}")
    handle.flush()
    return handle


@contextlib.contextmanager
def serving_lock(directory: Path, sqlite_store: Path | None, now: datetime) -> Iterator[None]:
    """On SQLite, hold the node directory's lock (and the store's, if it lives elsewhere) while
    serving; ``AlreadyServing`` if another process holds either. Nothing on PostgreSQL."""
    if sqlite_store is None:
        yield
        return
    paths = [directory / LOCK_NAME]
    if sqlite_store is not None and sqlite_store.absolute().parent != directory.absolute():
        paths.append(sqlite_store.with_name(sqlite_store.name + ".serve.lock"))
    with contextlib.ExitStack() as stack:
        for path in paths:
            stack.callback(_hold(path, now).close)
        yield
