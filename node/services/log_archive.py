"""Archiving the exchange log's oldest entries to a file (``barnplan log archive``), and
verifying such a file on its own (``barnplan log verify --archive``).

Why: the exchange log only grows, and an agency keeps it as long as its own retention decision
says, not as long as the node's store must carry it. An archive moves a prefix of the log into a
self-contained file that stays verifiable without the store:

- it ends at an entry this node signed a checkpoint of (SPEC.md §7.8), witnessed by a peer unless
  the operator allows otherwise, so the file's last entry is anchored by a signature and every
  entry before it by the hash chain; the file holds every checkpoint and witness of its range;
- the live log keeps verifying from the boundary on: the store records it (``log_archive``:
  seq, head, the signed checkpoint) and the same transaction that deletes the entries appends a
  ``log.archive`` entry naming it, so removing more entries, moving the boundary or deleting its
  record breaks ``log verify``;
- it is crash-safe: the file is written to a temporary name, flushed to disk and linked into
  place (never over an existing file) before anything is deleted, and the deletion is one
  transaction. An interrupted run leaves the file and an unchanged log; running the same
  command again finds the file, checks that it holds exactly the entries still in the store,
  and finishes.

Seqs continue after an archive, checkpoints stay in the store, and nothing of the protocol
changes: a witness sees a log that kept growing. The file, like the log, holds ids, types,
outcomes and reasons, never personal data.

File format (JSON lines, UTF-8): a header line ``{"format": "barnplan-log-archive", "v": 1,
"node", "first_seq", "first_prev", "last_seq", "created_at"}``, one line per entry (the
entry's columns as ``barnplan log --json`` prints them), one ``{"checkpoint": signed,
"witnesses": [signed, ...]}`` line per checkpoint of the range, and a closing ``{"end":
{"entries", "last_seq", "last_head"}}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.documents import verify_checkpoint, verify_witness
from protocol.errors import ProtocolError
from protocol.keys import PublicKey

from ..domain.json_object import JsonObject
from ..errors import Conflict, InvalidInput, NodeError, NotFound, Unavailable
from ..store import log_archive as store
from ..store.chain_verify import ChainProblem, ChainWalker
from ..store.exchange_log import LogDraft, entry_json
from ..store.log_entry import COLUMNS, GENESIS
from .ports import FederationNode

log = structlog.get_logger("barnplan.log_archive")
FORMAT = "barnplan-log-archive"


@dataclass
class ArchiveReport:
    """What ``log archive`` did (or would have done)."""

    path: str
    first_seq: int
    last_seq: int
    entries: int
    witnesses: int
    requested_through: int  # the last entry logged before the date asked for
    sha256: str
    resumed: bool = False

    def to_json(self) -> JsonObject:
        return asdict(self)


@dataclass
class ArchiveCheck:
    """What ``log verify --archive`` found."""

    ok: bool
    node: str | None = None
    first_seq: int = 0
    last_seq: int = 0
    first_prev: str = GENESIS
    last_head: str = GENESIS
    entries: int = 0
    checkpoints: int = 0
    witnesses: int = 0
    problems: list[JsonObject] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> JsonObject:
        return asdict(self)


def _problem(seq: int, kind: str, detail: str) -> JsonObject:
    return asdict(ChainProblem(seq, kind, detail))


# --- archiving -----------------------------------------------------------------------------------


async def archive_log(
    node: FederationNode, before: datetime, path: Path, *, unwitnessed: bool = False
) -> ArchiveReport | None:
    """Move the entries logged before ``before`` (up to the last checkpoint among them) into
    the file ``path``; None if there is nothing to archive. Refuses (and changes nothing) when
    no checkpoint covers an entry before ``before`` or ``path`` exists and is not this very
    archive left by an interrupted run."""
    async with node.store.reading() as conn:
        previous = await store.boundary(conn)
        through = await store.last_seq_before(conn, before)
        above = previous.seq if previous is not None else 0
        if through <= above:
            return None
        point = await store.checkpoint_at_or_below(conn, above, through, not unwitnessed)
        if point is None:
            raise Conflict(_no_checkpoint(through, above, unwitnessed), code="no_checkpoint")
        first = above + 1
        first_prev = previous.head_hash if previous is not None else GENESIS
        checkpoints = await store.checkpoints_between(conn, first, point.seq)
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise Conflict(
                f"{path} exists and is not a file: choose another name", code="archive_exists"
            )
        sha = await _resumable(node, path, first, point.seq)
        resumed = True
    else:
        sha = await _write_file(node, path, first, first_prev, point.seq, checkpoints)
        resumed = False
        written = await verify_archive(node, path)
        if not written.ok:  # the store's own log does not verify: keep it whole, and say so
            path.unlink()
            problem = written.problems[0]
            raise Conflict(
                f"the archive of entries {first} to {point.seq} does not verify (entry "
                f"{problem['seq']}: {problem['kind']}: {problem['detail']}): nothing was "
                "deleted and no file kept; run 'barnplan log verify' and see "
                "deploy/OPERATIONS.md §6",
                code="archive_unverified",
            )
    try:
        entries = await _delete(node, point, first, sha)
    except NodeError:
        raise
    except Exception as exc:  # the store failed mid-way: its transaction rolled back
        log.error("log.archive_failed", last_seq=point.seq, error=exc.__class__.__name__)
        raise Unavailable(
            f"{path} is written and kept, but deleting the archived entries from the store "
            f"failed ({exc.__class__.__name__}: {exc}); the log is unchanged. Run the same "
            "command again to finish",
            code="archive_unfinished",
        ) from exc
    log.info("log.archived", first_seq=first, last_seq=point.seq, entries=entries)
    return ArchiveReport(
        str(path), first, point.seq, entries, point.witnesses, through, sha, resumed
    )


def _no_checkpoint(through: int, above: int, unwitnessed: bool) -> str:
    which = "checkpoint witnessed by a peer" if not unwitnessed else "checkpoint"
    return (
        f"no {which} covers an entry between {above + 1} and {through} (the entries before "
        "that date): an archive must end at a signed checkpoint. Run 'barnplan log checkpoint' "
        "(with the peers reachable) and archive again, or give a later --before"
        + ("" if unwitnessed else "; --unwitnessed accepts a checkpoint no peer countersigned")
    )


async def _write_file(
    node: FederationNode,
    path: Path,
    first: int,
    first_prev: str,
    last: int,
    checkpoints: list[tuple[JsonObject, list[JsonObject]]],
) -> str:
    """Write the archive to a temporary file beside ``path``, flush it to disk and link it into
    place (failing if ``path`` appeared meanwhile); the file's SHA-256."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InvalidInput(f"{directory}: no such directory", code="archive_path")
    temporary = directory / f".{path.name}.{os.getpid()}.partial"
    digest = hashlib.sha256()
    header = {
        "format": FORMAT,
        "v": 1,
        "node": node.node_id,
        "first_seq": first,
        "first_prev": first_prev,
        "last_seq": last,
        "created_at": node.clock.now().astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }
    count, head = 0, first_prev
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with open(descriptor, "w", encoding="utf-8") as out:

            def line(value: JsonObject) -> None:
                text = json.dumps(value, ensure_ascii=False, sort_keys=True) + "\n"
                digest.update(text.encode("utf-8"))
                out.write(text)

            line(header)
            async for part in store.entries_between(node.engine, first, last):
                for values in part:
                    entry = entry_json(dict(zip(COLUMNS, values, strict=True)))
                    line(entry)
                    count += 1
                    head = str(entry["hash"])
            if count != last - first + 1:
                raise Conflict(
                    f"the store holds {count} of the entries {first} to {last}: run "
                    "'barnplan log verify' before archiving",
                    code="log_incomplete",
                )
            for checkpoint, witnesses in checkpoints:
                line({"checkpoint": checkpoint, "witnesses": witnesses})
            line({"end": {"entries": count, "last_seq": last, "last_head": head}})
            out.flush()
            os.fsync(out.fileno())
        os.link(temporary, path)  # never replaces: fails if the name is taken
    except FileExistsError:
        raise Conflict(
            f"{path} exists: an archive never overwrites a file; choose another name",
            code="archive_exists",
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    _fsync_directory(directory)
    return digest.hexdigest()


def _fsync_directory(directory: Path) -> None:
    """Make the new name durable (a crash after this keeps the file under its name)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


async def _resumable(node: FederationNode, path: Path, first: int, last: int) -> str:
    """``path`` exists: go on only if it is this node's archive of exactly the entries ``first``
    to ``last``, intact, with the store's hash at ``last`` (an interrupted run left it)."""
    check = await verify_archive(node, path)
    if not check.ok or check.node != node.node_id or check.first_seq != first:
        raise Conflict(
            f"{path} exists and is not an unfinished archive of this log from entry {first}: "
            "an archive never overwrites a file; choose another name",
            code="archive_exists",
        )
    rows: list[Sequence[object]] = []
    async for part in store.entries_between(node.engine, check.last_seq, check.last_seq):
        rows.extend(part)
    if check.last_seq != last or not rows or rows[0][COLUMNS.index("hash")] != check.last_head:
        raise Conflict(
            f"{path} exists and archives entries {check.first_seq} to {check.last_seq}, which "
            "is not what this run would archive: an archive never overwrites a file; choose "
            "another name",
            code="archive_exists",
        )
    return _file_sha256(path)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


async def _delete(node: FederationNode, point: store.ArchivePoint, first: int, sha: str) -> int:
    """In one transaction: delete the entries up to the checkpoint, record the boundary and
    append the ``log.archive`` entry naming it. Nothing is deleted if another archive moved
    the boundary meanwhile."""
    now = node.clock.now()
    deleted = 0

    async def change(conn: AsyncConnection) -> None:
        nonlocal deleted
        current = await store.boundary(conn)
        if (current.seq if current is not None else 0) != first - 1:
            raise Conflict("another archive ran meanwhile: run this again", code="log_moved")
        deleted = await delete_entries(conn, point.seq)
        await store.record_archive(
            conn,
            store.Boundary(
                point.seq, point.head, first, deleted, point.signed, sha, archived_at=now
            ),
        )

    draft = LogDraft(
        direction="out",
        peer=node.node_id,
        message_type=store.ARCHIVE_TYPE,
        message_id=store.archive_message_id(point.seq),
        outcome=store.ARCHIVED,
        released=0,
        at=now,
    )
    await node.exchange_log.append(draft, change)
    return deleted


async def delete_entries(conn: AsyncConnection, through: int) -> int:
    """The deletion step (a seam: a test makes it fail, as a crash would, to see that the
    file is kept and the log unchanged)."""
    return await store.delete_through(conn, through)


# --- verifying an archive file --------------------------------------------------------------------


def _lines(f: TextIO) -> Iterator[tuple[int, JsonObject]]:
    for number, text in enumerate(f, start=1):
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(f"line {number} is not a JSON object")
        yield number, value


def _whole(value: object) -> int:
    """An archive's number (a JSON integer); ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not a whole number: {value!r}")
    return value


def _object(value: object) -> JsonObject:
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


def _seq(checkpoint: object) -> int:
    """The entry a checkpoint read from an archive names (-1: none), before it is verified."""
    seq = checkpoint.get("seq") if isinstance(checkpoint, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1


def _at_text(value: object) -> str | None:
    if not isinstance(value, str) or not value.endswith("Z"):
        return None
    parsed = datetime.fromisoformat(value[:-1])
    if parsed.tzinfo is not None or parsed.year < 1000:
        return None
    return parsed.isoformat("T", "microseconds")


def _at_value(value: object) -> datetime:
    return datetime.fromisoformat(str(value)).astimezone(UTC)


async def verify_archive(node: FederationNode, path: Path) -> ArchiveCheck:
    """Check an archive file on its own: its hash chain from its first entry, the checkpoint of
    its last entry (signed by this node; old keys stay listed), every checkpoint and witness it
    holds. Raises ``NotFound`` for a missing file; a file that is not an archive fails."""
    if not path.is_file():
        raise NotFound(f"{path}: no such file", code="archive_missing")
    check = ArchiveCheck(ok=False)
    own_keys = node.identity.public_keys()
    header: JsonObject | None = None
    end: JsonObject | None = None
    walker: ChainWalker | None = None
    checkpoints: list[tuple[object, list[object]]] = []  # as read: checked one by one below
    rows: list[Sequence[object]] = []  # entries read, fed to the walker in parts
    try:
        with path.open(encoding="utf-8") as f:
            for number, value in _lines(f):
                if header is None:
                    if value.get("format") != FORMAT or value.get("v") != 1:
                        raise ValueError("not a barnplan log archive (no header line)")
                    header = value
                    check.node = str(value["node"])
                    check.first_seq = _whole(value["first_seq"])
                    check.last_seq = _whole(value["last_seq"])
                    check.first_prev = str(value["first_prev"])
                    walker = ChainWalker(
                        None, _at_text, _at_value, expected=check.first_seq, prev=check.first_prev
                    )
                    continue
                assert walker is not None
                if end is not None:
                    raise ValueError(f"line {number}: text after the end line")
                if "end" in value:
                    end = _object(value["end"])
                elif "checkpoint" in value:
                    witnesses = value.get("witnesses", [])
                    if not isinstance(witnesses, list):
                        raise ValueError(f"line {number}: witnesses is not a list")
                    checkpoints.append((value["checkpoint"], witnesses))
                elif checkpoints:
                    raise ValueError(f"line {number}: an entry after the checkpoints")
                else:
                    rows.append(tuple(value[c] for c in COLUMNS))
                    if len(rows) >= 10_000:
                        walker.feed(rows)
                        rows.clear()
                if rows and ("end" in value or "checkpoint" in value):
                    walker.feed(rows)
                    rows.clear()
            if walker is not None and rows:
                walker.feed(rows)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        check.problems.append(_problem(0, "unreadable", f"{path}: {exc}"))
        return check
    if header is None or walker is None:
        check.problems.append(_problem(0, "unreadable", f"{path}: empty"))
        return check
    segment = walker.segment
    check.entries = segment.entries
    check.last_head = segment.last_hash if segment.entries else check.first_prev
    if segment.problem is not None:
        check.problems.append(asdict(segment.problem))
    elif segment.last_seq != check.last_seq or end is None:
        check.problems.append(
            _problem(
                segment.last_seq + 1,
                "truncated",
                f"the archive says it ends at entry {check.last_seq}, its entries end at "
                f"{segment.last_seq}" + ("" if end is not None else " and its end line is missing"),
            )
        )
    elif end.get("entries") != segment.entries or end.get("last_head") != segment.last_hash:
        check.problems.append(
            _problem(check.last_seq, "edited", "the end line does not match the entries")
        )
    wanted = {_seq(cp) for cp, _ in checkpoints} - {-1}
    hashes = _hashes_of(path, wanted) if segment.problem is None else {}
    _check_checkpoints(node, check, checkpoints, own_keys, hashes)
    await _link_note(node, check)
    check.ok = not check.problems
    return check


def _hashes_of(path: Path, wanted: set[int]) -> dict[int, str]:
    """seq → hash of the archive's entries at ``wanted`` seqs (the checkpoints', which come
    after the entries in the file: so it is read again rather than every hash kept)."""
    hashes: dict[int, str] = {}
    with path.open(encoding="utf-8") as f:
        for _, value in _lines(f):
            seq = value.get("seq")
            if isinstance(seq, int) and seq in wanted and "format" not in value:
                hashes[seq] = str(value["hash"])
    return hashes


def _check_checkpoints(
    node: FederationNode,
    check: ArchiveCheck,
    checkpoints: list[tuple[object, list[object]]],
    own_keys: Sequence[PublicKey],
    hashes: dict[int, str],
) -> None:
    covered = False
    for signed, witnesses in checkpoints:
        seq = _seq(signed)
        try:
            if not isinstance(signed, dict):
                raise ValueError("not a JSON object")
            cp = verify_checkpoint(signed, own_keys)
        except (ProtocolError, ValueError) as exc:
            check.problems.append(_problem(seq, "bad_checkpoint", f"checkpoint signature: {exc}"))
            continue
        check.checkpoints += 1
        if cp.node != check.node or hashes.get(cp.seq) != cp.head:
            check.problems.append(
                _problem(
                    cp.seq,
                    "rewritten",
                    f"entry {cp.seq} does not have the head its checkpoint signed",
                )
            )
            continue
        covered = covered or cp.seq == check.last_seq
        for witnessed in witnesses:
            peer = str(witnessed.get("witness", "?")) if isinstance(witnessed, dict) else "?"
            keys = node.keyring.keys_for(peer) or []
            if not keys:
                check.notes.append(f"witness by {peer} of entry {cp.seq}: no key of {peer} held")
                continue
            try:
                if not isinstance(witnessed, dict):
                    raise ValueError("not a JSON object")
                w = verify_witness(witnessed, keys)
            except (ProtocolError, ValueError) as exc:
                check.problems.append(_problem(cp.seq, "bad_witness", f"witness by {peer}: {exc}"))
                continue
            if w.seq != cp.seq or w.head != cp.head or w.origin != cp.node:
                check.problems.append(
                    _problem(cp.seq, "witness_mismatch", f"{peer} witnessed another head")
                )
                continue
            check.witnesses += 1
    if not covered and not any(p["kind"] == "unreadable" for p in check.problems):
        check.problems.append(
            _problem(
                check.last_seq,
                "no_checkpoint",
                f"no valid checkpoint of this node signs the archive's last entry {check.last_seq}",
            )
        )


async def _link_note(node: FederationNode, check: ArchiveCheck) -> None:
    """Say whether the archive continues one this node recorded (archives chain by head)."""
    if check.first_seq <= 1 or check.node != node.node_id:
        return
    async with node.store.reading() as conn:
        head = await store.boundary_head(conn, check.first_seq - 1)
    if head is None:
        check.notes.append(
            f"continues an archive ending at entry {check.first_seq - 1} (head "
            f"{check.first_prev[:16]}…) that this node has no record of"
        )
    elif head != check.first_prev:
        check.problems.append(
            _problem(
                check.first_seq,
                "broken_link",
                f"the archive that ended at entry {check.first_seq - 1} had another head",
            )
        )
    else:
        check.notes.append(f"continues the archive that ended at entry {check.first_seq - 1}")
