"""Bodies of every message type (DESIGN.md §5) and the registry mapping type names to them.

Request/reply pairs: plan.invite → plan.invite.reply; plan.link → ack; consent.statement →
consent.ack; fragments.request → fragments.response; consent.revoke → consent.revoke.ack;
revocations.since → revocations.list; hello → hello.ack; log.checkpoint → log.witness;
keys.update → keys.update.ack; plan.close → plan.close.ack; closures.since → closures.list;
access.report.request → access.report. Any request may instead be answered with ``error``.
Replies carry the request's id in the envelope's ``re``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, Strict, StringConstraints

from .codes import Category, Purpose
from .errors import Reason
from .models import (
    NodeId,
    Omittable,
    ProfessionalRef,
    ShortText,
    Timestamp,
    Uuid,
    WireModel,
)

Personnummer = Annotated[str, StringConstraints(pattern=r"^(19|20)[0-9]{6}-?[0-9]{4}$")]


class ChildLink(WireModel):
    """The minimum identity needed to link a plan to the invited agency's own child record."""

    personnummer: Personnummer


class PlanInvite(WireModel):
    plan_id: Uuid
    child: ChildLink
    lead_node: NodeId
    lead_professional: ProfessionalRef
    responsible_node: NodeId
    participants: Annotated[list[NodeId], Field(min_length=1, max_length=64)]
    purpose: Purpose


class PlanInviteReply(WireModel):
    """Always pending: the reply must not tell the sender whether the invited agency holds the
    child or knows the plan (SPEC 7.1); a professional's decision comes later as plan.link."""

    plan_id: Uuid
    status: Literal["pending"]


class PlanLink(WireModel):
    """Sent later by an invited node when a professional confirms or declines a pending link."""

    plan_id: Uuid
    status: Literal["linked", "declined"]
    professional: ProfessionalRef


class Ack(WireModel):
    ok: Literal[True] = True


class ConsentStatementMessage(WireModel):
    statement: dict[str, Any]


class ConsentAck(WireModel):
    consent_id: Uuid
    status: Literal["stored", "already_stored", "revoked"]


class FragmentsRequest(WireModel):
    plan_id: Uuid
    consent_id: Uuid
    categories: Annotated[list[Category], Field(min_length=1, max_length=16)]
    purpose: Purpose
    professional: ProfessionalRef


class Withheld(WireModel):
    category: Omittable[Category] = None
    reason: Reason


class FragmentsResponse(WireModel):
    plan_id: Uuid
    consent_id: Uuid
    fragments: Annotated[list[dict[str, Any]], Field(max_length=500)]
    withheld: Annotated[list[Withheld], Field(max_length=64)]


class ConsentRevoke(WireModel):
    notice_id: Uuid
    consent_id: Uuid
    plan_id: Uuid
    revoked_at: Timestamp
    revoked_by: NodeId
    professional: ProfessionalRef


class ConsentRevokeAck(WireModel):
    notice_id: Uuid
    consent_id: Uuid


class RevocationsSince(WireModel):
    # Strict: a model validated in Python (lax) mode must not take "5" for 5 any more than the
    # wire's strict JSON validation and the JSON Schema do
    cursor: Annotated[int, Strict(), Field(ge=0)]


class Revocation(WireModel):
    seq: Annotated[int, Strict(), Field(ge=1)]
    consent_id: Uuid
    plan_id: Uuid
    revoked_at: Timestamp
    revoked_by: NodeId


class RevocationsList(WireModel):
    revocations: Annotated[list[Revocation], Field(max_length=1000)]
    cursor: Annotated[int, Strict(), Field(ge=0)]
    more: Annotated[bool, Strict()] = False


class Hello(WireModel):
    started_at: Timestamp


class CheckpointRef(WireModel):
    """An entry of the sender's exchange log by seq and hash: the link (its previous checkpoint
    or restore declaration) that a checkpoint follows (SPEC.md §7.8)."""

    seq: Annotated[int, Strict(), Field(ge=0)]
    head: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]


class LogCheckpointMessage(WireModel):
    """Asks the receiver to countersign (witness) the sender's log checkpoint. ``prior`` names
    the link the checkpoint follows in the sender's log, ``restore`` the sender's latest restore
    declaration: the witness signs only a consistent extension of what it witnessed."""

    checkpoint: dict[str, Any]
    prior: Omittable[CheckpointRef] = None
    restore: Omittable[dict[str, Any]] = None


class LogWitnessMessage(WireModel):
    witness: dict[str, Any]


class KeysUpdate(WireModel):
    """A node's changed node document (SPEC.md §4.6), sent to each peer until acknowledged."""

    document: dict[str, Any]


class KeysUpdateAck(WireModel):
    """What the peer did with the announced document (``protocol.key_updates.UpdateStatus``)."""

    issued_at: Timestamp
    status: Literal["applied", "current", "superseded"]


# the most releases one access.report carries; the lead asks again with the cursor for more
ACCESS_REPORT_PAGE = 200


class AccessReportRequest(WireModel):
    """The plan's lead asks a holder which releases it made under the plan's consents
    (SPEC.md §7.12). ``cursor``: 0 the first time, then the previous reply's ``cursor``."""

    plan_id: Uuid
    cursor: Annotated[int, Strict(), Field(ge=0)]
    purpose: Purpose
    professional: ProfessionalRef


class ReleaseRecord(WireModel):
    """One release decision the holder made: a ``fragments.request`` it answered for the plan,
    as its own exchange log records it. ``role``: the acting (requesting) professional's role
    as the holder knows it; ``professional`` only where the holder's policy names staff."""

    seq: Annotated[int, Strict(), Field(ge=1)]
    at: Timestamp
    recipient: NodeId
    consent_id: Uuid
    purpose: Purpose
    released: Annotated[list[Category], Field(max_length=16)]
    withheld: Annotated[list[Withheld], Field(max_length=64)]
    role: Literal["lead_professional", "professional"]
    professional: Omittable[ProfessionalRef] = None


class AccessReport(WireModel):
    plan_id: Uuid
    releases: Annotated[list[ReleaseRecord], Field(max_length=ACCESS_REPORT_PAGE)]
    cursor: Annotated[int, Strict(), Field(ge=0)]
    more: Annotated[bool, Strict()] = False
    # the holder moved the start of its exchange log into an archive: its release decisions
    # for the plan made before this time are in the archive, not in this report
    archived_before: Omittable[Timestamp] = None


class PlanClose(WireModel):
    """The lead closed its plan (SPEC.md §7.11): final, sent to each participant until
    acknowledged, as a revocation is."""

    notice_id: Uuid
    plan_id: Uuid
    closed_at: Timestamp
    closed_by: NodeId
    professional: ProfessionalRef


class PlanCloseAck(WireModel):
    notice_id: Uuid
    plan_id: Uuid


class ClosuresSince(WireModel):
    cursor: Annotated[int, Strict(), Field(ge=0)]


class Closure(WireModel):
    seq: Annotated[int, Strict(), Field(ge=1)]
    plan_id: Uuid
    closed_at: Timestamp
    closed_by: NodeId


class ClosuresList(WireModel):
    closures: Annotated[list[Closure], Field(max_length=1000)]
    cursor: Annotated[int, Strict(), Field(ge=0)]
    more: Annotated[bool, Strict()] = False


class ErrorBody(WireModel):
    reason: Reason
    detail: ShortText = ""


MESSAGE_TYPES: dict[str, type[BaseModel]] = {
    "plan.invite": PlanInvite,
    "plan.invite.reply": PlanInviteReply,
    "plan.link": PlanLink,
    "plan.link.ack": Ack,
    "consent.statement": ConsentStatementMessage,
    "consent.ack": ConsentAck,
    "fragments.request": FragmentsRequest,
    "fragments.response": FragmentsResponse,
    "consent.revoke": ConsentRevoke,
    "consent.revoke.ack": ConsentRevokeAck,
    "revocations.since": RevocationsSince,
    "revocations.list": RevocationsList,
    "hello": Hello,
    "hello.ack": Ack,
    "log.checkpoint": LogCheckpointMessage,
    "log.witness": LogWitnessMessage,
    "keys.update": KeysUpdate,
    "keys.update.ack": KeysUpdateAck,
    "plan.close": PlanClose,
    "plan.close.ack": PlanCloseAck,
    "closures.since": ClosuresSince,
    "closures.list": ClosuresList,
    "access.report.request": AccessReportRequest,
    "access.report": AccessReport,
    "error": ErrorBody,
}

REPLY_TYPES: dict[str, str] = {
    "plan.invite": "plan.invite.reply",
    "plan.link": "plan.link.ack",
    "consent.statement": "consent.ack",
    "fragments.request": "fragments.response",
    "consent.revoke": "consent.revoke.ack",
    "revocations.since": "revocations.list",
    "hello": "hello.ack",
    "log.checkpoint": "log.witness",
    "keys.update": "keys.update.ack",
    "plan.close": "plan.close.ack",
    "closures.since": "closures.list",
    "access.report.request": "access.report",
}

REQUEST_TYPES = frozenset(REPLY_TYPES)
OTHER_TYPE = "other"


def type_label(claimed: object) -> str:
    """``claimed`` if it is a message type of this version, else ``other``: what a node records
    (metrics, the log of a refusal) for a type it has not verified, so that made-up types
    cannot add label values or log vocabulary."""
    return claimed if isinstance(claimed, str) and claimed in MESSAGE_TYPES else OTHER_TYPE


__all__ = [
    "MESSAGE_TYPES",
    "OTHER_TYPE",
    "REPLY_TYPES",
    "REQUEST_TYPES",
    "ShortText",
    "type_label",
]
