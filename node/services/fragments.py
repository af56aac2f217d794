"""A professional authors their own agency's fragments; every edit is a new version.

At the lead node a family member on the plan writes their own view through this same path
(``FamilyAuthor``, ``services.family_views``): the fragment is the lead's, of category
``family``, with ``written_by`` naming the writer by the plan-local reference its consent uses,
and ``authored_by`` recording ``family:<ref>``. Only that person edits it; a professional
neither edits it nor claims ``written_by`` for their own content (SPEC.md §6.1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NotRequired, Protocol, TypedDict

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock, format_time
from protocol.codes import Category, Indicator
from protocol.documents import sign_fragment
from protocol.keys import SigningKey
from protocol.models import Consenter, FragmentContent, LongText

from ..domain.json_object import JsonObject
from ..domain.records import FragmentRecord
from ..errors import Conflict, FieldProblem, Forbidden, InvalidInput, NotFound, field_problems
from ..store import records
from ..store.store import Store
from ..store.tables import FragmentVersion, User


class Authoring(Protocol):
    """What authoring needs from the node: its store and its clock."""

    @property
    def engine(self) -> AsyncEngine: ...

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...


class AuthoredContent(FragmentContent):
    """What a professional writes and this node stores: the protocol's fragment content plus
    the agency's internal note, which stays in this store (its own professionals see it when
    they edit the fragment) and is never part of a fragment that leaves the node."""

    internal_note: LongText = ""


FAMILY_AUTHOR_PREFIX = "family:"


@dataclass(frozen=True)
class FamilyAuthor:
    """A family member writing their own words at the lead: who they are on the plan (the
    consent person's plan-local ``ref`` and ``role``), never their name or number."""

    ref: str
    role: str

    @property
    def authored_by(self) -> str:
        return FAMILY_AUTHOR_PREFIX + self.ref


class FragmentView(TypedDict):
    """One of this node's fragment versions as its professionals see it."""

    fragment_id: str
    version: int
    plan_id: str
    category: str
    indicators: list[str]
    content: JsonObject
    authored_by: NotRequired[str]
    authored_at: str


def wire_content(content: Mapping[str, object]) -> JsonObject:
    """The part of stored content that may leave the node: the members the protocol's fragment
    content has, and nothing else (so the internal note, and anything added to the store
    later, stays here unless the protocol itself gains it), with no ``null`` members."""
    return _without_nulls({k: v for k, v in content.items() if k in FragmentContent.model_fields})


def _validate(
    category: str, indicators: list[str], content: Mapping[str, object]
) -> AuthoredContent:
    errors: dict[str, FieldProblem] = {}
    if category not in {c.value for c in Category}:
        choices = ", ".join(c.value for c in Category)
        errors["category"] = FieldProblem("one_of", f"one of {choices}", {"choices": choices})
    bad = [i for i in indicators if i not in {x.value for x in Indicator}]
    if bad:
        unknown = ", ".join(bad)
        errors["indicators"] = FieldProblem(
            "unknown_indicators", f"unknown indicators: {unknown}", {"unknown": unknown}
        )
    parsed: AuthoredContent | None = None
    try:
        # the local API takes null for "no value" (openapi.yaml); the protocol model does not
        parsed = AuthoredContent.model_validate(_without_nulls(content))
    except ValidationError as exc:
        for where, problem in field_problems(exc, "content.").items():
            errors.setdefault(where, problem)
    if errors or parsed is None:
        raise InvalidInput(
            "the fragment could not be saved", code="fragment_invalid", fields=errors
        )
    return parsed


async def author_fragment(
    node: Authoring,
    actor: User | FamilyAuthor,
    plan_id: str,
    *,
    category: str,
    indicators: list[str],
    content: Mapping[str, object],
    fragment_id: str | None = None,
) -> FragmentView:
    """Save a new fragment (version 1) or a new version of an existing one: a professional's,
    or (``FamilyAuthor``) a family member's own ``family`` fragment, with ``written_by`` set
    here from who they are on the plan and never taken from the content."""
    family = isinstance(actor, FamilyAuthor)
    if not family and actor.role not in ("professional", "lead"):
        raise Forbidden("only professionals author fragments", code="not_professional")
    if family and category != "family":
        raise Forbidden("the family writes fragments of category family", code="family_only")
    parsed = _validate(category, indicators, content)
    if parsed.written_by is not None:
        raise InvalidInput(
            "the fragment could not be saved",
            code="fragment_invalid",
            fields={
                "content.written_by": FieldProblem(
                    "written_by_set", "set only by the node for the family's own words"
                )
            },
        )
    if isinstance(actor, FamilyAuthor):
        writer = Consenter.model_validate({"ref": actor.ref, "role": actor.role})
        parsed = parsed.model_copy(update={"written_by": writer})
    authored_by = actor.authored_by if isinstance(actor, FamilyAuthor) else actor.user_id
    plan = await records.get_plan(node.engine, plan_id)
    if plan is not None and plan.status == "closed":  # read-only once closed (SPEC §7.11)
        raise Conflict("the plan is closed", code="plan_closed")
    if plan is None or plan.status != "active":
        raise NotFound(
            f"no active plan {plan_id} on this node", code="no_plan", params={"plan_id": plan_id}
        )
    async with node.store.writing() as conn:
        version = 1
        if fragment_id is not None:
            latest = await records.latest_version(conn, fragment_id)
            if family and latest is None:
                pass  # the family member's first version, under the id their service chose
            elif latest is None or latest[1] != plan_id:
                raise NotFound(
                    f"no fragment {fragment_id} in plan {plan_id}",
                    code="no_fragment",
                    params={"fragment_id": fragment_id, "plan_id": plan_id},
                )
            elif latest[2] != authored_by and (
                family or latest[2].startswith(FAMILY_AUTHOR_PREFIX)
            ):
                # the family's words are their own: nobody else writes a new version of them
                raise Forbidden("the family's own words", code="family_fragment")
            else:
                version = latest[0] + 1
        stored = parsed.model_dump(mode="json", exclude=None if family else {"written_by"})
        row = FragmentVersion(
            fragment_id=fragment_id or str(uuid.uuid4()),
            version=version,
            plan_id=plan_id,
            category=category,
            indicators=",".join(dict.fromkeys(indicators)),
            content=json.dumps(stored, ensure_ascii=False),
            authored_by=authored_by,
            authored_at=node.clock.now(),
        )
        await records.insert_fragment_version(conn, row)
    return fragment_view(row)


def _stored_content(text: str) -> JsonObject:
    content = json.loads(text)
    if not isinstance(content, dict):  # the store holds what author_fragment wrote: an object
        raise TypeError("stored fragment content is not a JSON object")
    return content


def fragment_view(row: FragmentVersion) -> FragmentView:
    return {
        "fragment_id": row.fragment_id,
        "version": row.version,
        "plan_id": row.plan_id,
        "category": row.category,
        "indicators": [i for i in row.indicators.split(",") if i],
        "content": _stored_content(row.content),
        "authored_by": row.authored_by,
        "authored_at": row.authored_at.isoformat(),
    }


async def list_fragments(node: Authoring, actor: User, plan_id: str) -> list[FragmentView]:
    if actor.role not in ("professional", "lead"):
        raise Forbidden("operators do not read plan content", code="operator_reads_content")
    if await records.get_plan(node.engine, plan_id) is None:
        raise NotFound(
            f"no plan {plan_id} on this node", code="no_plan", params={"plan_id": plan_id}
        )
    async with node.store.reading() as conn:
        current = await records.latest_fragments(conn, plan_id)
    return [
        {
            "fragment_id": f.fragment_id,
            "version": f.version,
            "plan_id": f.plan_id,
            "category": f.category,
            "indicators": list(f.indicators),
            "content": f.content,
            "authored_at": f.authored_at.isoformat(),
        }
        for fs in current.values()
        for f in fs
    ]


def signed_fragment(
    record: FragmentRecord, consent_id: str, key: SigningKey, signed_at: str
) -> JsonObject:
    """One of this node's fragments as it leaves the node: signed, naming the consent it is
    released under, with the content the protocol defines and no internal note. The release
    handler and the lead's own assembly both use this; nothing else signs fragments."""
    return sign_fragment(
        {
            "fragment_id": record.fragment_id,
            "plan_id": record.plan_id,
            "consent_id": consent_id,
            "origin": key.node_id,
            "category": record.category,
            "indicators": list(record.indicators),
            "version": record.version,
            "authored_at": format_time(record.authored_at),
            "signed_at": signed_at,
            "content": wire_content(record.content),
        },
        key,
    )


def _without_nulls(content: Mapping[str, object]) -> JsonObject:
    """Content as the wire carries it: an optional member without a value is absent, never
    ``null`` (SPEC.md §5.2, §6.1). The local API and the store take and keep ``null`` for "no
    value" (every member is present in stored content), so content crosses this on its way in
    and out."""
    return {k: _no_nulls_in(v) for k, v in content.items() if v is not None}


def _no_nulls_in(value: object) -> object:
    if isinstance(value, dict):
        return _without_nulls(value)
    if isinstance(value, list):
        return [_no_nulls_in(v) for v in value]
    return value
