"""The node's one error tree: every error the node raises on purpose derives from ``NodeError``.

Why one tree: the callers decide what an error means for their audience, and they decide it by
branch (and, where a branch is too coarse, by ``code``), never by a list of unrelated classes.
The web layer maps branches and codes to HTTP statuses and problem documents
(``node/web/problems.py``), the CLI to exit codes (``node/cli/main.py``); nothing here knows
either. Each error carries a stable snake_case ``code`` and the ``params`` a sentence needs, so a
page renders it in its own language from the message catalogs; ``str(error)`` is the English
sentence the CLI, the API and the process log show.

Branches:
- ``InvalidInput``: what a user gave (an argument, a form, a configuration file) is wrong.
- ``NotFound``: the record asked for is not on this node.
- ``Forbidden``: the user's role may not do this.
- ``Conflict``: the record's state forbids the action (exists already, already revoked, ...).
- ``Refusal``: a protocol refusal of a peer's message; carries the wire ``Reason``
  (``protocol.errors``, the protocol's own vocabulary), so nothing here duplicates it.
- ``Unavailable``: something the node needs cannot be reached (the store, a peer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from protocol.errors import Reason

if TYPE_CHECKING:  # the CLI imports this module; pydantic is not cheap to import
    from pydantic import ValidationError

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field: a stable ``code``, the values its sentence needs, and the
    English sentence (the API's ``errors`` member shows that)."""

    code: str
    message: str
    params: Mapping[str, Any] = field(default_factory=dict)


class NodeError(Exception):
    """The root. ``code`` names the error (snake_case, stable); ``params`` fill its sentence.

    A subclass sets a default ``code``; a raise site may name a finer one. ``fields`` lists
    per-field problems for input that names fields (a form, a JSON body)."""

    code = "node_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        params: Mapping[str, Any] | None = None,
        fields: Mapping[str, FieldProblem] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.params: Mapping[str, Any] = params or _EMPTY
        self.fields: Mapping[str, FieldProblem] = fields or _EMPTY

    @property
    def detail(self) -> str:
        """The English sentence (the problem document's ``detail``)."""
        return self.message

    @property
    def errors(self) -> dict[str, str]:
        """Field → English sentence, as the API's problem document lists them."""
        return {name: problem.message for name, problem in self.fields.items()}

    def __str__(self) -> str:
        return self.message


class InvalidInput(NodeError):
    """Input a user gave is wrong; the message says what to fix."""

    code = "invalid_input"


class NotFound(NodeError):
    code = "not_found"


class Forbidden(NodeError):
    code = "forbidden"


class Conflict(NodeError):
    code = "conflict"


class Unavailable(NodeError):
    """Something the node needs (its store, a peer) cannot be reached or used."""

    code = "unavailable"


class Refusal(NodeError):
    """The node refuses a peer's message for a protocol reason: a signed ``error`` reply with
    ``reason`` (SPEC.md §9). ``code`` says what kind of refusal it is, which the web layer
    answers with its HTTP status (``node/web/federation.py``): ``refused`` (the default) is a
    handler refusing what a message says; the reason's own value a refusal of the envelope; a
    raise site names a finer one where the answer differs."""

    code = "refused"

    def __init__(self, reason: Reason, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, params={"reason": reason.value})
        self.reason = reason


def field_problems(exc: ValidationError, prefix: str = "") -> dict[str, FieldProblem]:
    """A pydantic validation error as field problems: the dotted location (``body`` for the
    whole input), pydantic's error ``type`` as the code and its ``ctx`` as the parameters, so a
    page words each in its own language without reading pydantic's English."""
    problems: dict[str, FieldProblem] = {}
    for error in exc.errors():
        where = prefix + ".".join(str(part) for part in error["loc"]) or "body"
        params = {k: v for k, v in (error.get("ctx") or {}).items() if _plain(v)}
        problems.setdefault(where, FieldProblem(error["type"], error["msg"], params))
    return problems


def _plain(value: Any) -> bool:
    """A value a sentence may show (pydantic's ``ctx`` can hold the exception it caught)."""
    return isinstance(value, str | int | float)
