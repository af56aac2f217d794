"""Typed models of everything on the wire: node document, envelope, fragment, consent statement.

Models validate shape; signatures are checked by ``verify`` functions over the *received* JSON
(never a re-serialization), so a model never changes what was signed. Unknown fields are
rejected (``extra="forbid"``): a receiver must not act on fields it does not understand.

Three rules hold in every model (SPEC.md §1, §5.2):

- A pattern matches the whole string. pydantic matches with Rust's ``regex``, where ``$`` is
  the end of the text; Python code matches with ``fullmatch`` (``is_uuid``, ``is_node_id``),
  never ``re.match``/``re.search``, whose ``$`` also matches before a final line feed, so that
  ``"<uuid>\n"`` would pass.
- An optional member is absent or has a value, never ``null`` (``Omittable``).
- ``v`` and ``type`` of a signed object are required: they say what was signed.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal, TypeGuard, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
)
from pydantic_core import CoreSchema

from .clock import TIME_PATTERN as TIME_PATTERN
from .clock import parse_time
from .codes import ActionStatus, AgencyKind, Category, Indicator, Purpose

NODE_ID_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
BASE_URL_PATTERN = r"^https?://[^\s/]+(/[^\s]*)?$"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
KEY_ID_PATTERN = r"^[a-z0-9.-]+#[0-9a-f]{16}$"
_UUID = re.compile(UUID_PATTERN)
_NODE_ID = re.compile(NODE_ID_PATTERN)


def is_uuid(text: object) -> TypeGuard[str]:
    """A lower-case UUID, the whole string (SPEC.md §1)."""
    return isinstance(text, str) and _UUID.fullmatch(text) is not None


def is_node_id(text: object) -> TypeGuard[str]:
    """A node id, the whole string (SPEC.md §1)."""
    return isinstance(text, str) and len(text) <= 253 and _NODE_ID.fullmatch(text) is not None


class _NotNull:
    """Drops ``None`` from what an ``Optional`` member accepts: absent means "no value" and
    ``null`` is ``malformed`` (SPEC.md §5.2), so the JSON Schema has no ``null`` either. The
    Python attribute is still ``None`` when the member was absent."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        schema = handler(source)
        return schema["schema"] if schema["type"] == "nullable" else schema


T = TypeVar("T")
# an optional member: ``name: Omittable[X] = None`` is absent or an X, never null
Omittable = Annotated[T | None, _NotNull()]


def _check_time(value: str) -> str:
    parse_time(value)
    return value


NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN, max_length=253)]
# the form, and a real moment: "2026-02-30T00:00:00Z" has the form and is malformed all the same
Timestamp = Annotated[str, StringConstraints(pattern=TIME_PATTERN), AfterValidator(_check_time)]
Uuid = Annotated[str, StringConstraints(pattern=UUID_PATTERN)]
ShortText = Annotated[str, StringConstraints(max_length=200)]
LongText = Annotated[str, StringConstraints(max_length=4000)]
ProfessionalRef = Annotated[
    str, StringConstraints(pattern=r"^[a-z0-9.-]+/u/[A-Za-z0-9_-]{1,64}$", max_length=320)
]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Signature(WireModel):
    alg: Literal["Ed25519"]
    key: Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
    value: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]


class KeyEntry(WireModel):
    kid: Annotated[str, StringConstraints(pattern=KEY_ID_PATTERN)]
    alg: Literal["Ed25519"]
    public: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
    valid_from: Timestamp
    valid_until: Omittable[Timestamp] = None


class NodeDocument(WireModel):
    """A node's self-signed identity: who it is, where it listens, which keys speak for it."""

    v: Literal[1]
    type: Literal["node"]
    id: NodeId
    agency_name: ShortText
    agency_kind: AgencyKind
    base_url: Annotated[str, StringConstraints(pattern=BASE_URL_PATTERN)]
    keys: Annotated[list[KeyEntry], Field(min_length=1, max_length=16)]
    protocol_versions: Annotated[list[int], Field(min_length=1)]
    issued_at: Timestamp
    sig: Signature


class Envelope(WireModel):
    """Every message and reply: typed, addressed, time-boxed, signed by its sender."""

    v: int
    type: Annotated[str, StringConstraints(pattern=r"^[a-z]+(\.[a-z_]+)*$", max_length=64)]
    id: Uuid
    re: Omittable[Uuid] = None
    from_: NodeId = Field(alias="from")
    to: NodeId
    issued_at: Timestamp
    expires_at: Timestamp
    body: dict[str, object]
    sig: Signature

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Action(WireModel):
    """One action of a plan: vem gör vad, när."""

    what: LongText
    who: ShortText
    start: Omittable[date] = None
    end: Omittable[date] = None
    status: ActionStatus = ActionStatus.PLANNED
    indicator: Omittable[Indicator] = None


class Goal(WireModel):
    what: LongText
    by: Omittable[date] = None
    indicator: Omittable[Indicator] = None


class Need(WireModel):
    what: LongText
    indicator: Omittable[Indicator] = None


class Event(WireModel):
    """A significant dated event for the plan's chronology."""

    on: date
    what: LongText


class Consenter(WireModel):
    """A person whose consent the statement records, by role and a plan-local reference."""

    ref: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,32}$")]
    role: Literal["guardian", "child", "young_person"]


class FragmentContent(WireModel):
    """What a professional wrote for the plan, or a family member at the lead (``written_by``);
    the only part of a fragment that is plan content.

    An agency's internal note is not a member: it never leaves the agency's own node (SPEC.md
    §6.1), so a fragment carrying one is ``malformed`` like any other unknown member."""

    summary: LongText = ""
    needs: Annotated[list[Need], Field(max_length=50)] = []
    goals: Annotated[list[Goal], Field(max_length=50)] = []
    actions: Annotated[list[Action], Field(max_length=100)] = []
    child_view: LongText = ""
    family_view: LongText = ""
    next_review: Omittable[date] = None
    events: Annotated[list[Event], Field(max_length=100)] = []
    # the family member who wrote this content themselves at the lead (SPEC.md §6.1), by the
    # plan-local reference and role its consent statements use: never a name or number
    written_by: Omittable[Consenter] = None


class Fragment(WireModel):
    """One agency's signed contribution to a plan, released under one consent."""

    v: Literal[1]
    type: Literal["fragment"]
    fragment_id: Uuid
    plan_id: Uuid
    consent_id: Uuid
    origin: NodeId
    category: Category
    indicators: Annotated[list[Indicator], Field(max_length=8)] = []
    version: Annotated[int, Field(ge=1)]
    authored_at: Timestamp
    signed_at: Timestamp
    content: FragmentContent
    sig: Signature


class Grant(WireModel):
    """``from_node`` may release ``categories`` to each of ``to``."""

    from_: NodeId = Field(alias="from")
    to: Annotated[list[NodeId], Field(min_length=1, max_length=64)]
    categories: Annotated[list[Category], Field(min_length=1)]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ConsentStatement(WireModel):
    """The family's consent as the lead node signs and distributes it."""

    v: Literal[1]
    type: Literal["consent"]
    consent_id: Uuid
    plan_id: Uuid
    lead: NodeId
    purpose: Purpose
    required: Annotated[list[Consenter], Field(min_length=1, max_length=8)]
    given_by: Annotated[list[Consenter], Field(max_length=8)]
    grants: Annotated[list[Grant], Field(min_length=1, max_length=64)]
    valid_from: Timestamp
    valid_until: Timestamp
    evidence_ref: ShortText
    recorded_by: ProfessionalRef
    issued_at: Timestamp
    # the consent_id of an earlier statement of the same plan by the same lead that this one
    # replaces (a completed or changed consent, SPEC.md §6.2 and §7.3)
    replaces: Omittable[Uuid] = None
    sig: Signature


class Checkpoint(WireModel):
    """A node's signed exchange-log head: entry ``seq`` has hash ``head``."""

    v: Literal[1]
    type: Literal["checkpoint"]
    node: NodeId
    seq: Annotated[int, Field(ge=0)]
    head: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    at: Timestamp
    sig: Signature


class RestoreDeclaration(WireModel):
    """A node's signed statement that its exchange log was restored from a backup: the log
    now continues from entry ``seq`` (hash ``head``), and what its peers witnessed above that
    entry is no longer its history (SPEC.md §7.8)."""

    v: Literal[1]
    type: Literal["restore"]
    node: NodeId
    seq: Annotated[int, Field(ge=0)]
    head: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    at: Timestamp
    note: Omittable[ShortText] = None
    sig: Signature


class Witness(WireModel):
    """A peer's countersignature over another node's checkpoint."""

    v: Literal[1]
    type: Literal["witness"]
    witness: NodeId
    origin: NodeId
    seq: Annotated[int, Field(ge=0)]
    head: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    at: Timestamp
    sig: Signature
