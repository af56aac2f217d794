"""Problem documents (RFC 9457) for the local API: every 4xx says what to fix.

This is the one place a node error becomes an HTTP status: ``answer_for`` maps the error tree's
branches (``node/errors.py``), and the few codes that answer differently from their branch, to
a status and a title. The API and the pages both ask it; services know no status.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from ..errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NodeError,
    NotFound,
    Refusal,
    Unavailable,
)

PROBLEM_TYPE = "application/problem+json"

# code -> (status, title): where a code answers otherwise than its branch
_BY_CODE: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "Malformed JSON"),
}
# branch -> (status, title); the first that the error is an instance of wins
_BY_BRANCH: tuple[tuple[type[NodeError], int, str], ...] = (
    (InvalidInput, 422, "Invalid input"),
    (NotFound, 404, "Not found"),
    (Forbidden, 403, "Forbidden"),
    (Conflict, 409, "Conflict"),
    (Unavailable, 503, "Service unavailable"),
    (Refusal, 400, "Refused"),
)


def answer_for(exc: NodeError) -> tuple[int, str]:
    """The HTTP status and problem title a node error is answered with."""
    by_code = _BY_CODE.get(exc.code)
    if by_code is not None:
        return by_code
    for branch, status, title in _BY_BRANCH:
        if isinstance(exc, branch):
            return status, title
    return 400, "Bad request"


def problem_for(exc: NodeError) -> web.Response:
    """The problem document of a node error: its English sentence, its code, its fields."""
    status, title = answer_for(exc)
    return problem(status, title, exc.detail, exc.errors, code=exc.code)


def problem(
    status: int,
    title: str,
    detail: str,
    errors: dict[str, str] | None = None,
    code: str | None = None,
) -> web.Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if code:
        body["code"] = code
    if errors:
        body["errors"] = errors
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_TYPE,
    )
