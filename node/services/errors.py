"""Errors the use cases raise for bad input or a state that forbids the action.

The web layer maps them to problem documents (RFC 9457) and the CLI to one line on stderr.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base: ``status`` is the HTTP status the web layer answers with."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}


class InvalidInput(ServiceError):
    status = 422
    title = "Invalid input"


class NotFound(ServiceError):
    status = 404
    title = "Not found"


class Forbidden(ServiceError):
    status = 403
    title = "Forbidden"


class Conflict(ServiceError):
    status = 409
    title = "Conflict"
