"""The shared plan's shape, as types: what ``services.assembly`` builds for one request and the
pages, the FHIR export and the family's copy read. Plain ``TypedDict``s over the JSON the API
serves (``schemas/shared_plan.json`` is the published contract; ``tests/node/
test_shared_plan_schema.py`` holds the two together), so mypy checks every key a reader takes
and the runtime value stays the dict the API writes."""

# no "from __future__ import annotations": TypedDict reads NotRequired from the evaluated
# annotations (__required_keys__, which tests compare with the schema)
from typing import Literal, NotRequired, TypedDict

from .statement_json import ConsenterJson, GrantJson


class Provenance(TypedDict):
    """Who said it: the origin node, its fragment and version, the key that signed it."""

    origin: str
    fragment_id: str
    version: int
    category: str
    key_id: str
    signature_verified: bool


class WrittenBy(TypedDict):
    """The family member whose own words a family fragment holds (SPEC §6.1), by ref."""

    ref: str
    role: str


class Text(TypedDict):
    text: str
    provenance: Provenance


class View(TypedDict):
    text: str
    provenance: Provenance
    written_by: NotRequired[WrittenBy]


class Need(TypedDict):
    what: str
    provenance: Provenance


class Goal(TypedDict):
    what: str
    by: str | None
    provenance: Provenance


class Action(TypedDict):
    what: str
    who: str
    start: str | None
    end: str | None
    status: str
    indicator: str
    provenance: Provenance


class IndicatorContent(TypedDict):
    needs: list[Need]
    goals: list[Goal]
    actions: list[Action]


class Views(TypedDict):
    child: list[View]
    family: list[View]


class Event(TypedDict):
    on: str
    what: str
    provenance: Provenance


class Review(TypedDict):
    date: str
    provenance: Provenance


class Merged(TypedDict):
    """What the verified fragments say, arranged (``domain.shared_plan.merge_fragments``)."""

    summaries: list[Text]
    indicators: dict[str, IndicatorContent]
    actions: list[Action]
    views: Views
    chronology: list[Event]
    next_review: Review | None
    fragments: list[Provenance]


class Withheld(TypedDict):
    category: str | None
    reason: str


class Participant(TypedDict):
    """One participant's part in this assembly (schema ``$defs/Participant``)."""

    node_id: str
    status: str
    role: NotRequired[Literal["lead"]]
    reason: NotRequired[str | None]
    requested: NotRequired[list[str]]
    fragments: NotRequired[int]
    categories: NotRequired[list[str]]
    withheld: NotRequired[list[Withheld]]
    viewer: NotRequired[bool]
    not_granted: NotRequired[list[Withheld]]


class NotShown(TypedDict):
    node_id: str
    status: str
    reason: str | None
    categories: list[str]


class Child(TypedDict):
    name: str
    personnummer: str


class Viewer(TypedDict):
    node_id: str
    role: str


class ConsentPart(TypedDict):
    consent_id: str
    issued_at: str
    valid_from: str
    valid_until: str
    expired: bool
    given_by: list[ConsenterJson]
    waiting_for: NotRequired[list[str]]  # always set by the assembly; optional in the schema
    grants: list[GrantJson]


class Agency(TypedDict):
    name: str
    kind: str
    org_number: NotRequired[str]
    hsa_id: NotRequired[str]


class SharedPlan(Merged):
    """One assembly's shared plan (``services.assembly.assemble``); never stored."""

    plan_id: str
    assembled_at: str
    status: Literal["active", "revoked", "closed"]
    revoked_at: str | None
    purpose: str
    reason: str
    child: Child | None
    lead_node: str
    viewer: Viewer
    lead_professional: str
    responsible_node: str
    consent: ConsentPart
    agencies: dict[str, Agency]
    participants: list[Participant]
    not_shown: list[NotShown]
    not_granted: list[str]
