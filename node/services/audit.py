"""Tamper evidence for the exchange log: signed checkpoints, peers' witnesses, verification.

A checkpoint is the log head (seq, hash) signed with the node key, made by a scheduled job and
on demand. Each checkpoint is sent to every peer, which keeps a copy and countersigns it (a
witness) if it extends what that peer witnessed before (``services.witness``). ``verify_log``
recomputes the chain, checks every checkpoint against it and every witness against its
checkpoint: deletion, editing, reordering and truncation break the chain;
a consistent rewrite of the chain from some point on no longer matches a signed checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import structlog
from sqlalchemy import select

from protocol.documents import sign_checkpoint, verify_checkpoint, verify_witness
from protocol.errors import ProtocolError

from ..domain.json_object import JsonObject
from ..store import log_archive, witnessed
from ..store.exchange_log import GENESIS, ChainProblem, log_head, verify_chain
from ..store.tables import CheckpointWitness, LogCheckpoint, LogVerification
from ..store.verifications import record_verification
from .ports import FederationNode
from .witness import declaration_problems, witness_round

log = structlog.get_logger("barnplan.audit")
T_CHECKPOINT = LogCheckpoint.__table__  # type: ignore[attr-defined]
T_WITNESS = CheckpointWitness.__table__  # type: ignore[attr-defined]


async def make_checkpoint(node: FederationNode) -> JsonObject | None:
    """Sign the current head (if it moved since the last checkpoint) and store it."""
    seq, head = await log_head(node.engine)
    if seq == 0:
        return None
    async with node.store.writing() as conn:
        if (
            await conn.execute(select(T_CHECKPOINT.c.seq).where(T_CHECKPOINT.c.seq == seq))
        ).first():
            return None
        signed = sign_checkpoint(
            node_id=node.node_id, seq=seq, head=head, at=node.clock.now(), key=node.identity.key
        )
        await conn.execute(
            T_CHECKPOINT.insert().values(
                seq=seq, head_hash=head, signed=json.dumps(signed), created_at=node.clock.now()
            )
        )
    return signed


async def checkpoint_and_witness(node: FederationNode) -> dict[str, str]:
    """Make a checkpoint and ask every peer to countersign the ones it has not, in order
    (``services.witness``); returns the outcome per peer."""
    await make_checkpoint(node)
    return await witness_round(node)


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    head_seq: int
    checkpoints: int
    witnesses: int
    problems: list[JsonObject] = field(default_factory=list)
    archived_through: int = 0  # the live log starts after this entry (``log archive``)

    def to_json(self) -> JsonObject:
        return asdict(self)


async def verify_log(node: FederationNode) -> VerifyReport:
    """Check the chain, every checkpoint's signature and head, every witness held."""
    async with node.store.reading() as conn:
        checkpoints = (
            (await conn.execute(select(T_CHECKPOINT).order_by(T_CHECKPOINT.c.seq))).mappings().all()
        )
        witnesses = (await conn.execute(select(T_WITNESS))).mappings().all()
        declarations = await witnessed.declarations(conn)
        boundary = await log_archive.boundary(conn)
        archive_entries = (
            await log_archive.archive_entries(conn, node.node_id, boundary.seq)
            if boundary is not None
            else []
        )
    archived = boundary.seq if boundary is not None else 0
    keep = {int(c["seq"]) for c in checkpoints} | {seq for seq, _ in declarations}
    keep |= set(archive_entries)
    start = (archived + 1, boundary.head_hash) if boundary is not None else (1, GENESIS)
    chain = await verify_chain(node.engine, keep=keep, start=start)
    problems: list[ChainProblem] = []
    if chain.problem is not None:
        problems.append(chain.problem)
    own_keys = node.identity.public_keys()
    if boundary is not None and chain.problem is None:
        problems.extend(_boundary_problems(node, boundary, archive_entries, chain.hashes))
    problems.extend(
        declaration_problems(node, [(s, d) for s, d in declarations if s > archived], chain.hashes)
    )
    checked: dict[int, str] = {}
    last_good = 0
    for row in checkpoints:
        seq = int(row["seq"])
        try:
            cp = verify_checkpoint(json.loads(row["signed"]), own_keys)
        except (ProtocolError, ValueError) as exc:
            problems.append(ChainProblem(seq, "bad_checkpoint", f"checkpoint signature: {exc}"))
            continue
        if cp.seq != seq or cp.head != row["head_hash"] or cp.node != node.node_id:
            problems.append(ChainProblem(seq, "bad_checkpoint", "checkpoint row altered"))
            continue
        checked[seq] = cp.head
        if seq <= archived:  # its entry is in an archive file: 'log verify --archive' checks it
            if seq == archived and cp.head != boundary.head_hash:  # type: ignore[union-attr]
                problems.append(
                    ChainProblem(seq, "bad_archive", "the archive boundary is not this checkpoint")
                )
            continue
        if chain.problem is None and seq > chain.head_seq:
            problems.append(
                ChainProblem(
                    chain.head_seq + 1,
                    "truncated",
                    f"a signed checkpoint covers entry {seq}, the log ends at {chain.head_seq}",
                )
            )
        elif seq in chain.hashes and chain.hashes[seq] != cp.head:
            problems.append(
                ChainProblem(
                    seq,
                    "rewritten",
                    f"entry {seq} no longer has the hash its signed checkpoint states: the chain "
                    f"was rewritten after entry {last_good} and at or before entry {seq}",
                )
            )
        elif seq in chain.hashes:
            last_good = seq
    for row in witnesses:
        seq, peer = int(row["seq"]), str(row["witness"])
        try:
            w = verify_witness(json.loads(row["signed"]), node.keyring.keys_for(peer) or [])
        except (ProtocolError, ValueError) as exc:
            problems.append(ChainProblem(seq, "bad_witness", f"witness by {peer}: {exc}"))
            continue
        if seq not in checked or w.head != checked[seq] or w.origin != node.node_id:
            problems.append(
                ChainProblem(
                    seq,
                    "witness_mismatch",
                    f"{peer} witnessed a different head for entry {seq} than our checkpoint",
                )
            )
    problems.sort(key=lambda p: p.seq)
    report = VerifyReport(
        ok=not problems,
        entries=chain.entries,
        head_seq=chain.head_seq,
        checkpoints=len(checkpoints),
        witnesses=len(witnesses),
        problems=[asdict(p) for p in problems],
        archived_through=archived,
    )
    await record_verification(
        node.engine,
        LogVerification(
            at=node.clock.now(),
            ok=report.ok,
            entries=report.entries,
            checkpoints=report.checkpoints,
            witnesses=report.witnesses,
            problems=len(report.problems),
        ),
    )
    return report


def _boundary_problems(
    node: FederationNode,
    boundary: log_archive.Boundary,
    archive_entries: list[int],
    hashes: dict[int, str],
) -> list[ChainProblem]:
    """The live log starts after an archive: its boundary must be this node's signed checkpoint
    of the boundary entry, and the live chain must hold the ``log.archive`` entry that names it
    (appended in the transaction that deleted the entries). Moving the boundary, deleting its
    record or removing the entry that names it breaks one of these."""
    seq = boundary.seq
    try:
        cp = verify_checkpoint(boundary.signed, node.identity.public_keys())
    except (ProtocolError, ValueError) as exc:
        return [ChainProblem(seq, "bad_archive", f"the archive boundary's checkpoint: {exc}")]
    if cp.seq != seq or cp.head != boundary.head_hash or cp.node != node.node_id:
        return [ChainProblem(seq, "bad_archive", "the archive boundary record was altered")]
    if not any(s > seq and s in hashes for s in archive_entries):
        return [
            ChainProblem(
                seq + 1,
                "bad_archive",
                f"no intact log.archive entry names the archive that ended at entry {seq}: "
                "entries were removed after it, or the boundary was moved",
            )
        ]
    return []
