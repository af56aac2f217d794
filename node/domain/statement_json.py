"""A consent statement as the node holds it: the JSON of a ``protocol.models.ConsentStatement``
the node verified (its signature and its shape) before storing it, so the store can hand it
out typed (``store.records``) and the services read its keys checked by mypy."""

# no "from __future__ import annotations": TypedDict reads NotRequired from the evaluated
# annotations (__required_keys__, which tests compare with the schema)
from typing import NotRequired, TypedDict


class ConsenterJson(TypedDict):
    ref: str
    role: str


# "from" is a keyword, so the functional form: the ``from`` node may release ``categories`` to
# every node in ``to``
GrantJson = TypedDict("GrantJson", {"from": str, "to": list[str], "categories": list[str]})


class SignatureJson(TypedDict):
    alg: str
    key: str
    value: str


class StatementJson(TypedDict):
    v: int
    type: str
    consent_id: str
    plan_id: str
    lead: str
    purpose: str
    required: list[ConsenterJson]
    given_by: list[ConsenterJson]
    grants: list[GrantJson]
    valid_from: str
    valid_until: str
    evidence_ref: str
    recorded_by: str
    issued_at: str
    replaces: NotRequired[str | None]
    sig: SignatureJson
