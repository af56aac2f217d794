"""The witness rule (SPEC.md §7.8), pure: may this checkpoint be countersigned, given what the
witness signed before for the same node?

A node's exchange log is a hash chain; its checkpoints name (seq, head) pairs of that chain. A
witness keeps every checkpoint it signed, and signs a new one only if it is a consistent
extension of them, as certificate-transparency witnesses do:

- a seq it signed before must come with the same head (else the history was rewritten);
- a seq below the highest it signed is a shorter log (a rewound one);
- a higher seq must name, as the link it follows (``prior``), exactly the latest (seq, head)
  the witness holds. A node sends its checkpoints to each witness in order, each naming the one
  before it, so an intact log always can; a log rewound below that entry cannot, because its
  entry at that seq has another hash or does not exist.

A restore declaration the witness accepted is a link too: its (seq, head) counts as witnessed,
and what the witness held above its seq is set aside (``node.store.witnessed``).

No I/O: the caller reads what it holds and acts on the verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Problem(StrEnum):
    """Why a checkpoint is not a consistent extension (the metric's and the page's words)."""

    DIFFERENT_HEAD = "different_head"  # another hash at a seq witnessed before
    SHORTER_LOG = "shorter_log"  # below the highest seq witnessed
    NOT_EXTENSION = "not_extension"  # above it, but not naming it as its prior link


@dataclass(frozen=True)
class Link:
    """An entry of a node's log by seq and hash (a checkpoint's, a prior's, a declaration's)."""

    seq: int
    head: str


@dataclass(frozen=True)
class Held:
    """What a witness holds of one node's log: the head it holds at the checkpoint's seq (if
    any) and its latest link (the highest seq), both from its current history of that node."""

    at_seq: str | None
    latest: Link | None


def judge(checkpoint: Link, prior: Link | None, held: Held) -> Problem | None:
    """None if ``checkpoint`` (following ``prior``) may be signed; else why not."""
    if held.at_seq is not None:
        return None if held.at_seq == checkpoint.head else Problem.DIFFERENT_HEAD
    latest = held.latest
    if latest is None:
        return None  # nothing witnessed of this node yet: the first checkpoint is taken as is
    if checkpoint.seq < latest.seq:
        return Problem.SHORTER_LOG
    # checkpoint.seq > latest.seq: it must say it follows the latest link
    if prior is None or prior.seq != latest.seq:
        return Problem.NOT_EXTENSION
    if prior.head != latest.head:
        return Problem.DIFFERENT_HEAD
    return None


def declaration_problem(declared: Link, held_at_declared: str | None) -> Problem | None:
    """None if a restore declaration may open a new history: the entry it restores to must
    have the hash the witness holds for that seq, if it holds one. A restore goes back to an
    earlier state of the history witnessed, never to another history."""
    if held_at_declared is not None and held_at_declared != declared.head:
        return Problem.DIFFERENT_HEAD
    return None
