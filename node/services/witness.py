"""Witnessing peers' exchange logs, and being witnessed (SPEC.md §7.8).

As a witness (``handle_checkpoint``): countersign a peer's checkpoint only if it is a consistent
extension of what this node witnessed of that peer's log (``domain.witness_rule``); otherwise
refuse with ``checkpoint_inconsistent`` and raise the alarm: a warning in the process log (ids
and seqs only), ``barnplan_witness_refusals_total``, the refusal in the exchange log and a
witness event on ``/ops``. A restore declaration the peer sends along opens a new history of its
log at the declared entry, once: accepted, recorded, counted and shown the same way.

As the witnessed node (``witness_round``): send each peer the checkpoints it has not
countersigned, oldest first, each naming the link it follows, with this node's latest restore
declaration (``declare_restore``, from ``barnplan log restored``).
"""

from __future__ import annotations

import asyncio
import json

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.clock import parse_time
from protocol.documents import (
    sign_restore,
    sign_witness,
    verify_checkpoint,
    verify_restore,
    verify_witness,
)
from protocol.envelope import Verified
from protocol.errors import ProtocolError, Reason
from protocol.messages import LogCheckpointMessage, LogWitnessMessage
from protocol.models import Checkpoint, RestoreDeclaration

from ..domain.json_object import JsonObject
from ..domain.witness_rule import Held, Link, Problem, declaration_problem, judge
from ..errors import Conflict, InvalidInput, Refusal
from ..store import witnessed
from ..store.exchange_log import GENESIS, ChainProblem, LogDraft, log_head
from ..store.tables import CheckpointWitness
from .inbound import Outcome, RecordedRefusal
from .ports import FederationNode

log = structlog.get_logger("barnplan.witness")
T_WITNESS = CheckpointWitness.__table__  # type: ignore[attr-defined]
# checkpoints sent to one peer in one round: a peer that was away catches up over a few rounds
ROUND_LIMIT = 256
BAD_DECLARATION = "bad_declaration"
RESTORE_ACCEPTED = "restore_accepted"
CONFLICT = "checkpoint_conflict"  # the refusal's code: answered with HTTP 409


# --- as a witness ---------------------------------------------------------------------------------


async def handle_checkpoint(node: FederationNode, message: Verified) -> Outcome:
    """Countersign a peer's checkpoint that extends what this node witnessed of its log; refuse
    (and raise the alarm) one that does not. A restore declaration not yet accepted opens a new
    history at its entry first, if it is well-formed, signed by the peer and consistent."""
    body = message.body
    assert isinstance(body, LogCheckpointMessage)
    keys = node.keyring.keys_for(message.sender) or []
    try:
        checkpoint = verify_checkpoint(body.checkpoint, keys)
    except ProtocolError as exc:
        raise Refusal(exc.reason, f"checkpoint: {exc.detail}") from None
    if checkpoint.node != message.sender:
        raise Refusal(Reason.UNKNOWN_KEY, "a node sends only its own checkpoints")
    link = Link(checkpoint.seq, checkpoint.head)
    prior = Link(body.prior.seq, body.prior.head) if body.prior is not None else None
    async with node.store.reading() as conn:
        held = await witnessed.witnessed_log(conn, checkpoint.node, checkpoint.seq)
    origin = checkpoint.node
    declaration: RestoreDeclaration | None = None
    state = held.held
    if body.restore is not None and not _same_declaration(body.restore, held.declaration):
        declaration = _check_declaration(node, origin, body.restore, link, held)
        async with node.store.reading() as conn:
            at_declared = await witnessed.witnessed_log(conn, origin, declaration.seq)
        problem = declaration_problem(
            Link(declaration.seq, declaration.head), at_declared.held.at_seq
        )
        if problem is not None:
            raise _refusal(
                node,
                origin,
                link,
                problem.value,
                state.latest,
                "the restore declaration names another head than one witnessed",
            )
        # judged as the new history, in which the declared entry is the latest link
        state = Held(None, Link(declaration.seq, declaration.head))
    problem = judge(link, prior, state)
    if problem is not None:
        raise _refusal(node, origin, link, problem.value, state.latest, _SAYS[problem])
    return _sign(node, body, checkpoint, link, prior, declaration)


def _same_declaration(restore: JsonObject, accepted: str | None) -> bool:
    """Is ``restore`` the declaration accepted last? (Ed25519 signatures are deterministic:
    the same signed object has the same signature value, however its members are ordered.)"""
    if accepted is None:
        return False
    sig = restore.get("sig")
    return isinstance(sig, dict) and sig == json.loads(accepted).get("sig")


_SAYS = {
    Problem.DIFFERENT_HEAD: "a different head than one witnessed for the same entry",
    Problem.SHORTER_LOG: "a shorter log than one witnessed",
    Problem.NOT_EXTENSION: "does not follow the latest checkpoint witnessed",
}


def _check_declaration(
    node: FederationNode,
    sender: str,
    restore: JsonObject,
    checkpoint: Link,
    held: witnessed.WitnessedLog,
) -> RestoreDeclaration:
    """A restore declaration verified with the sender's keys, for the sender, below the
    checkpoint it comes with, and not older than the one accepted last: else refused (and
    counted as a witness refusal: a forged or stale declaration is worth an alarm)."""
    seen = held.held.latest

    def refused(detail: str, reason: Reason) -> RecordedRefusal:
        return _refusal(node, sender, checkpoint, BAD_DECLARATION, seen, detail, reason)

    try:
        declaration = verify_restore(restore, node.keyring.keys_for(sender) or [])
    except ProtocolError as exc:
        raise refused(f"restore: {exc.detail}", exc.reason) from None
    if declaration.node != sender:
        raise refused("a node declares only its own restore", Reason.UNKNOWN_KEY)
    if declaration.seq >= checkpoint.seq:
        raise refused(
            "the checkpoint must lie above the entry the restore declaration names",
            Reason.MALFORMED,
        )
    if held.declaration is not None:
        accepted = json.loads(held.declaration)
        if parse_time(declaration.at) <= parse_time(accepted["at"]):
            raise refused(
                "not later than the restore declaration accepted before", Reason.MALFORMED
            )
    return declaration


def _refusal(
    node: FederationNode,
    origin: str,
    checkpoint: Link,
    problem: str,
    seen: Link | None,
    detail: str,
    reason: Reason = Reason.CHECKPOINT_INCONSISTENT,
) -> RecordedRefusal:
    """The alarm: a warning line, the metric, and (with the refusal's log entry) the event."""
    now = node.clock.now()
    log.warning(
        "witness.refused",
        peer=origin,
        problem=problem,
        seq=checkpoint.seq,
        seen=None if seen is None else seen.seq,
        reason=reason.value,
    )
    node.metrics.witness_refusals.labels(problem).inc()

    async def change(conn: AsyncConnection) -> None:
        await witnessed.record_refusal(conn, origin, checkpoint, problem, seen, now)

    # checkpoint_inconsistent is HTTP 409 (a conflict with what was witnessed), a bad
    # declaration 400 as any handler's refusal (node/web/federation.py)
    code = CONFLICT if reason is Reason.CHECKPOINT_INCONSISTENT else None
    return RecordedRefusal(reason, f"{detail} (entry {checkpoint.seq})", change, code=code)


def _sign(
    node: FederationNode,
    body: LogCheckpointMessage,
    checkpoint: Checkpoint,
    link: Link,
    prior: Link | None,
    declaration: RestoreDeclaration | None,
) -> Outcome:
    """The witness reply, and the change that keeps the copy (and opens the new history of a
    declared restore), judged again in the log's transaction against a concurrent request."""
    now = node.clock.now()
    witness = sign_witness(checkpoint, node.identity.key, now)
    origin = checkpoint.node
    declared = Link(declaration.seq, declaration.head) if declaration is not None else None

    async def change(conn: AsyncConnection) -> None:
        held = await witnessed.witnessed_log(conn, origin, link.seq)
        restore = body.restore
        declared_now = declared
        if restore is None or _same_declaration(restore, held.declaration):
            declared_now = None  # none sent, or a concurrent request accepted it already
        if declared_now is not None and restore is not None:
            moved = await witnessed.accept_restore(
                conn, origin, declared_now, json.dumps(restore), held.held.latest, now
            )
            log.warning(  # a peer's history changed: worth an operator's look, as a refusal is
                "witness.restore_accepted",
                peer=origin,
                seq=declared_now.seq,
                seen=None if held.held.latest is None else held.held.latest.seq,
                superseded=moved,
            )
            node.metrics.witness_restores.inc()
            held = await witnessed.witnessed_log(conn, origin, link.seq)
        if judge(link, prior, held.held) is not None:
            raise Refusal(
                Reason.CHECKPOINT_INCONSISTENT, "the witnessed log moved meanwhile", code=CONFLICT
            )
        await witnessed.record_witnessed(conn, origin, link, json.dumps(body.checkpoint), now)

    return Outcome(
        body={"witness": witness},
        outcome=RESTORE_ACCEPTED if declared is not None else "ok",
        change=change,
    )


# --- as the witnessed node ------------------------------------------------------------------------


async def witness_round(node: FederationNode) -> dict[str, str]:
    """Ask every peer to countersign the checkpoints it has not, in order; per peer the outcome
    of the last request (``ok`` when it signed everything asked)."""
    peers = node.keyring.node_ids()
    results = await asyncio.gather(*(_witness_by(node, peer) for peer in peers))
    return {peer: result for peer, result in zip(peers, results, strict=True) if result}


async def _witness_by(node: FederationNode, peer: str) -> str | None:
    """The outcome of the last request to ``peer``; None if there was nothing to ask."""
    async with node.store.reading() as conn:
        pending = await witnessed.to_witness(conn, peer, ROUND_LIMIT)
        declared = await witnessed.latest_declaration(conn)
    outcome = None
    for item in pending:
        body: JsonObject = {"checkpoint": item.checkpoint}
        if item.prior is not None:
            body["prior"] = {"seq": item.prior.seq, "head": item.prior.head}
        if declared is not None:
            body["restore"] = declared[1]
        outcome = await _ask(node, peer, body, item.checkpoint)
        if outcome != "ok":
            break  # the next ones follow this one: a witness would refuse them
    return outcome


async def _ask(node: FederationNode, peer: str, body: JsonObject, signed: JsonObject) -> str:
    """Send one checkpoint (``signed``, in ``body``); keep the peer's witness if it is the
    right one."""
    result = await node.peers.send(peer, "log.checkpoint", body)
    if not result.ok or result.reply is None:
        return result.outcome if result.reason is None else f"{result.outcome}: {result.reason}"
    reply = result.reply.body
    assert isinstance(reply, LogWitnessMessage)
    try:
        witness = verify_witness(reply.witness, node.keyring.keys_for(peer) or [])
    except ProtocolError as exc:
        return f"bad_witness: {exc.reason.value}"
    if (
        witness.witness != peer
        or witness.origin != node.node_id
        or witness.seq != signed["seq"]
        or witness.head != signed["head"]
    ):
        return "bad_witness: mismatch"
    async with node.store.writing() as conn:
        exists = (
            await conn.execute(
                select(T_WITNESS.c.seq).where(
                    (T_WITNESS.c.seq == witness.seq) & (T_WITNESS.c.witness == peer)
                )
            )
        ).first()
        if not exists:
            await conn.execute(
                T_WITNESS.insert().values(
                    seq=witness.seq,
                    witness=peer,
                    signed=json.dumps(reply.witness),
                    received_at=node.clock.now(),
                )
            )
    return "ok"


def declaration_problems(
    node: FederationNode, declarations: list[tuple[int, JsonObject]], hashes: dict[int, str]
) -> list[ChainProblem]:
    """For ``log verify``: each of this node's restore declarations is signed by it and names
    an entry of its log with that entry's hash (``hashes``: the chain's, by seq)."""
    problems = []
    for seq, signed in declarations:
        try:
            declaration = verify_restore(signed, node.identity.public_keys())
        except ProtocolError as exc:
            problems.append(ChainProblem(seq, "bad_declaration", f"restore declaration: {exc}"))
            continue
        held = GENESIS if seq == 0 else hashes.get(seq)
        if declaration.seq != seq or declaration.node != node.node_id or held != declaration.head:
            problems.append(
                ChainProblem(
                    seq,
                    "bad_declaration",
                    f"the restore declaration of entry {seq} does not match the log",
                )
            )
    return problems


async def declare_restore(
    node: FederationNode, note: str | None, seq: int | None = None
) -> JsonObject:
    """Declare that this node's exchange log was restored from a backup: sign a restore
    declaration naming the entry the log was restored to (``seq``; by default the log's head
    now, which is that entry when the node has not run since the restore), record it and
    append its entry to the log in one transaction (nothing is written if the log moved
    meanwhile). The next checkpoint round sends it to every peer with the checkpoints above it.
    """
    current, current_hash = await log_head(node.engine)
    if seq is None:
        seq, head = current, current_hash
    else:
        if not 0 <= seq <= current:
            raise InvalidInput(
                f"the log has entries 1 to {current}: name one of them (or 0)",
                code="restore_seq",
            )
        async with node.store.reading() as conn:
            try:
                head = await witnessed.entry_hash_at(conn, seq)
            except LookupError:  # archived ('barnplan log archive'): not in the store now
                raise InvalidInput(
                    f"entry {seq} is not in the live log (it was archived): name an entry "
                    "after the last archive ('barnplan status' shows where the log starts)",
                    code="restore_seq",
                ) from None
    now = node.clock.now()
    signed = sign_restore(
        node_id=node.node_id, seq=seq, head=head, at=now, key=node.identity.key, note=note
    )
    declared = Link(seq, head)

    async def change(conn: AsyncConnection) -> None:
        if await witnessed.entry_hash_at(conn, await witnessed.head_seq(conn)) != current_hash:
            raise Conflict(
                "the exchange log moved while the restore was declared: stop the node "
                "(barnplan serve) and declare again",
                code="log_moved",
            )
        await witnessed.record_declaration(conn, declared, signed, now)

    draft = LogDraft(
        direction="out",
        peer=node.node_id,
        message_type="log.restore",
        message_id="-",
        outcome="declared",
        at=now,
    )
    await node.exchange_log.append(draft, change)
    log.warning("log.restore_declared", seq=seq)
    return signed
