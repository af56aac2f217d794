"""Walking the exchange log's hash chain: the check behind ``barnplan log verify``.

A node's log grows to millions of entries and an operator verifies all of them, so this is a hot
loop. It was ~25-50 µs an entry when SQLAlchemy typed every column, a dict was made per row and
a new ``json.dumps`` encoder per row. One walk, the same on SQLite and PostgreSQL:

- rows are read through the store's engine in batches by seq (``_RANGE``: an untyped query, so
  each value comes as the driver stored it), and each batch is walked in a worker thread, so a
  running node's event loop keeps serving while ``/ops/log`` verifies;
- each entry is hashed from its stored values by ``log_entry.values_hash``, the one definition
  of the entry's text form and hash (SPEC.md §7.8), without a dict per row;
- a long chain is cut into seq ranges, one per core: this process walks the first and a child
  process (``child_main``) walks each other range through an engine of its own on the same
  store, since the walk is pure Python and one process gets one core (threads would share the
  GIL; hashlib releases it only for inputs far longer than an entry). Each range is checked on
  its own (links, seq continuity, hashes), then the ranges are joined in order, checking only
  the link and seq continuity across each cut, so the result, including which entry is named
  first and why, is exactly that of one sequential walk.

A child process imports this module, the pure ``log_entry`` and the engine module in a few
hundred milliseconds, against seconds of walking. A store another process cannot open (an
in-memory SQLite) is walked in one range here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from .engine import create_engine
from .log_entry import COLUMNS, GENESIS, format_at, stored_at, stored_at_text, values_hash

# the next batch of a range, by seq; untyped, so every value is the driver's own
_RANGE = text(
    f"SELECT {', '.join(COLUMNS)} FROM exchange_log WHERE seq >= :lo AND seq <= :hi "
    "ORDER BY seq LIMIT :batch"
)
BATCH = 20_000  # rows per read: a few tens of ms on the loop, then walked in a worker thread
# below this many entries a child process costs more than it saves (it starts in ~50 ms and an
# entry costs a few µs); tests pass ``parts`` to exercise the split on small chains
PARALLEL_MIN_ENTRIES = 100_000
MAX_PARTS = 4


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    kind: str  # edited | missing | reordered | broken_link
    detail: str


@dataclass
class ChainResult:
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    hashes: dict[int, str] = field(default_factory=dict)
    problem: ChainProblem | None = None


def missing(expected: int, seq: int) -> ChainProblem:
    kind = "missing" if seq > expected else "reordered"
    return ChainProblem(expected, kind, f"expected entry {expected}, found {seq}")


def broken_link(seq: int) -> ChainProblem:
    return ChainProblem(
        seq,
        "broken_link",
        "prev_hash does not match the entry before: an entry was removed, inserted or swapped here",
    )


def edited(seq: int) -> ChainProblem:
    return ChainProblem(seq, "edited", "the entry's content does not match its hash")


@dataclass
class Segment:
    """What walking one run of consecutive entries found.

    ``first_seq``/``first_prev`` are the first entry's seq and ``prev_hash`` (a range walked
    on its own takes them on trust; the join checks them against the range before), ``last_seq``
    and ``last_hash`` the last entry that passed. Entries after a problem are not walked."""

    first_seq: int | None = None
    first_prev: str = ""
    last_seq: int = 0
    last_hash: str = GENESIS
    entries: int = 0
    hashes: dict[int, str] = field(default_factory=dict)
    problem: ChainProblem | None = None

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "hashes": {str(k): v for k, v in self.hashes.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Segment:
        problem = data.get("problem")
        return cls(
            first_seq=data["first_seq"],
            first_prev=data["first_prev"],
            last_seq=data["last_seq"],
            last_hash=data["last_hash"],
            entries=data["entries"],
            hashes={int(k): v for k, v in data["hashes"].items()},
            problem=ChainProblem(**problem) if problem else None,
        )


class ChainWalker:
    """Checks entries in seq order, fed in parts; stops at the first entry that does not fit.

    Per entry, in this order: its seq is the one expected (else ``missing``/``reordered``), its
    ``prev_hash`` is the previous entry's hash (``broken_link``), its hash is that of its content
    (``edited``). ``at_text`` turns the driver's ``at`` into ``format_at`` text (or None: then
    ``at_value`` parses it and ``format_at`` formats it). With ``expected=None`` the
    first entry's own seq and ``prev_hash`` are taken (a range that the join checks later).
    """

    def __init__(
        self,
        keep: set[int] | None,
        at_text: Callable[[Any], str | None],
        at_value: Callable[[Any], datetime],
        expected: int | None = 1,
        prev: str = GENESIS,
    ) -> None:
        self.keep = keep
        self.at_text = at_text
        self.at_value = at_value
        self.trust_first = expected is None
        self.expected = 1 if expected is None else expected
        self.prev = prev
        self.segment = Segment()

    def feed(self, rows: Iterable[Sequence[Any]]) -> bool:
        """Walk ``rows``; False once a problem is found (then stop feeding)."""
        segment = self.segment
        if segment.problem is not None:
            return False
        keep, hashes, at_text, at_value = self.keep, segment.hashes, self.at_text, self.at_value
        expected, prev = self.expected, self.prev
        walked = 0
        try:
            for values in rows:
                seq, prev_hash, digest = values[0], values[15], values[16]
                if segment.first_seq is None:
                    segment.first_seq, segment.first_prev = seq, prev_hash
                    if self.trust_first:  # a range walked on its own: the join checks these
                        expected, prev = seq, prev_hash
                if seq != expected:
                    segment.problem = missing(expected, seq)
                    return False
                if prev_hash != prev:
                    segment.problem = broken_link(seq)
                    return False
                try:
                    at = values[1]
                    at_iso = at_text(at)
                    if at_iso is None:  # not as the driver returns a stored time: parse it
                        at_iso = format_at(at_value(at))[:-1]
                    computed = values_hash(values, at_iso)
                except (ValueError, TypeError):  # not a time at all, or not JSON: by hand
                    segment.problem = edited(seq)
                    return False
                if computed != digest:
                    segment.problem = edited(seq)
                    return False
                prev = digest
                if keep is not None and seq in keep:
                    hashes[seq] = digest
                expected += 1
                walked += 1
        finally:
            self.expected, self.prev = expected, prev
            segment.entries += walked
            if walked:
                segment.last_seq, segment.last_hash = expected - 1, prev
        return True

    def result(self, start: tuple[int, str] = (1, GENESIS)) -> ChainResult:
        """This walk as the whole chain's result (a walk that started at ``start``)."""
        return join([self.segment], start)


def join(segments: Iterable[Segment], start: tuple[int, str] = (1, GENESIS)) -> ChainResult:
    """Chain the ranges' results in seq order, checking seq and link across each cut.

    A range was walked trusting its first entry's seq and ``prev_hash``; checking exactly those
    two here, before taking the range's own findings, gives what one walk from ``start`` gives.
    ``start`` is (the first entry's seq, its ``prev_hash``): (1, ``GENESIS``) for a whole log,
    (N + 1, the head of entry N) for a log whose entries up to N were archived.
    """
    expected, prev = start
    result = ChainResult(head_seq=expected - 1, head_hash=prev)
    for segment in segments:
        if segment.first_seq is None:  # an empty range
            continue
        if segment.first_seq != expected:
            result.problem = missing(expected, segment.first_seq)
            return result
        if segment.first_prev != prev:
            result.problem = broken_link(segment.first_seq)
            return result
        result.entries += segment.entries
        result.hashes.update(segment.hashes)
        if segment.problem is not None:
            result.problem = segment.problem
            return result
        expected, prev = segment.last_seq + 1, segment.last_hash
    result.head_seq, result.head_hash = expected - 1, prev
    return result


async def walk_range(
    engine: AsyncEngine, lo: int, hi: int, keep: set[int] | None, batch: int = BATCH
) -> Segment:
    """Walk the entries with ``lo <= seq <= hi`` on their own (the join checks the cuts)."""
    walker = ChainWalker(keep, stored_at_text, stored_at, expected=None)
    after = lo
    while after <= hi:
        async with engine.connect() as conn:
            result = await conn.execute(_RANGE, {"lo": after, "hi": hi, "batch": batch})
            rows = result.all()
        if not rows or not await asyncio.to_thread(walker.feed, rows):
            break
        after = rows[-1][0] + 1
    return walker.segment


def cut(lo: int, hi: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` seq ranges of (nearly) equal length covering ``lo..hi``."""
    size = hi - lo + 1
    bounds = [lo + size * i // parts for i in range(parts)] + [hi + 1]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(parts)]


def available_cores() -> int:
    with contextlib.suppress(AttributeError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_parts(entries: int) -> int:
    """How many ranges ``verify_chain`` walks at once by default for a chain this long."""
    return min(available_cores(), MAX_PARTS) if entries >= PARALLEL_MIN_ENTRIES else 1


@dataclass(frozen=True)
class StoreAddress:
    """Where a child process finds the same store: its URL (with any password: it goes to the
    child on its standard input, never on a command line) and PostgreSQL schema."""

    url: str
    schema: str


async def store_address(engine: AsyncEngine) -> StoreAddress | None:
    """The engine's store as another process opens it; None for one it cannot (in memory)."""
    if engine.dialect.name == "sqlite":
        database = engine.url.database
        if not database or database == ":memory:" or database.startswith("file:"):
            return None
        if not os.path.isfile(database):
            return None
        return StoreAddress(f"sqlite:///{Path(database).resolve()}", "")
    async with engine.connect() as conn:
        schema = (await conn.execute(text("SELECT current_schema()"))).scalar()
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    return StoreAddress(url, str(schema or ""))


async def verify_chain(
    engine: AsyncEngine,
    keep: set[int] | None = None,
    parts: int | None = None,
    start: tuple[int, str] = (1, GENESIS),
    batch: int = BATCH,
) -> ChainResult:
    """Walk the whole chain in seq order; stop at the first entry that does not fit.

    ``keep`` names seqs whose hashes the caller wants back (to compare with checkpoints).
    ``parts`` ranges are walked at once, this process taking the first and a child process each
    other one; by default one per core (at most ``MAX_PARTS``) when the chain is long enough. A
    child that fails to start or dies leaves its range to this process: the result is the same.
    ``start`` is the first entry's seq and ``prev_hash``: after an archive (``log_archive``),
    the entry after the boundary and the boundary's head.
    """
    async with engine.connect() as conn:
        bounds = await conn.execute(text("SELECT min(seq), max(seq) FROM exchange_log"))
        lo, hi = bounds.one()
    if lo is None:
        return ChainResult(head_seq=start[0] - 1, head_hash=start[1])
    if parts is None:
        parts = default_parts(hi - lo + 1)
    ranges = cut(lo, hi, max(1, parts))
    address = await store_address(engine) if len(ranges) > 1 else None
    children = [_start_child(address, r, keep) for r in ranges[1:]]
    try:
        segments = [await walk_range(engine, *ranges[0], keep, batch)]
        for child, r in zip(children, ranges[1:], strict=True):
            if segments[-1].problem is not None:
                break  # the walk stops here; later ranges cannot change the result
            found = await asyncio.to_thread(_finish_child, child)
            segments.append(found or await walk_range(engine, *r, keep, batch))
    finally:
        for child in children:
            if child is not None and child.poll() is None:
                child.kill()
                child.wait()
    return join(segments, start)


def _start_child(
    address: StoreAddress | None, span: tuple[int, int], keep: set[int] | None
) -> subprocess.Popen[str] | None:
    """A child process walking ``span``; None if none could be started (the caller walks it).

    The child is isolated (``-I``: no PYTHON* variables, no current directory on its path) and
    imports this very file's package tree, whatever the parent's path was.
    """
    if address is None or not sys.executable:
        return None
    package_root = str(Path(__file__).resolve().parents[2])
    request: dict[str, Any] = {
        "url": address.url,
        "schema": address.schema,
        "lo": span[0],
        "hi": span[1],
    }
    if keep is not None:
        request["keep"] = sorted(s for s in keep if span[0] <= s <= span[1])
    try:
        child = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD, package_root],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
    except OSError:
        return None
    assert child.stdin is not None
    try:
        child.stdin.write(json.dumps(request))
        child.stdin.close()
    except OSError:
        child.kill()
        child.wait()
        return None
    return child


def _finish_child(child: subprocess.Popen[str] | None) -> Segment | None:
    if child is None:
        return None
    assert child.stdout is not None
    out = child.stdout.read()  # its stdin is already closed: communicate() would flush it
    if child.wait() != 0:
        return None
    try:
        return Segment.from_json(json.loads(out))
    except (ValueError, KeyError, TypeError):
        return None


async def _walk_in_child(request: dict[str, Any]) -> Segment:
    keep = set(request["keep"]) if "keep" in request else None
    # the parent has just read this store: no need to check its tables again
    engine = create_engine(request["url"], request["schema"], create=True)
    try:
        return await walk_range(engine, request["lo"], request["hi"], keep)
    finally:
        await engine.dispose()


def child_main() -> None:
    """A child process: read the store and range from stdin, walk it, print the segment."""
    segment = asyncio.run(_walk_in_child(json.load(sys.stdin)))
    json.dump(segment.to_json(), sys.stdout)


_CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from node.store.chain_verify import child_main; child_main()"
)
