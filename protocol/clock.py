"""Injected time (DESIGN.md invariant 8): code asks a clock, tests move it instead of sleeping."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Protocol

# the wire's one time form (SPEC.md §1): whole seconds or 1–6 fraction digits, always "Z"
# ([0-9], not \d: both Python's and pydantic's \d match any Unicode digit)
TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z$"
_WIRE_TIME = re.compile(TIME_PATTERN)


class Clock(Protocol):
    """Anything with ``now()`` returning an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told to; for tests and deterministic vectors."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self._now = when


def format_time(when: datetime) -> str:
    """RFC 3339 UTC with a ``Z`` and whole seconds: the only time form on the wire."""
    w = when.astimezone(UTC)
    # field by field rather than strftime: half the cost, and %Y would drop leading zeros
    return f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}Z"


def parse_wire_time(text: str) -> datetime:
    """Parse a timestamp received on the wire, which must be in the wire's form exactly.

    ``parse_time`` takes anything ``fromisoformat`` does (offsets such as ``+01:00``, a space
    for the ``T``, basic format, week dates), which is right for what a person types but would
    let two nodes judge the same signed message differently (SPEC.md §1, §5.3 step 8)."""
    if not isinstance(text, str) or _WIRE_TIME.fullmatch(text) is None:
        raise ValueError("not a wire timestamp (YYYY-MM-DDTHH:MM:SSZ, UTC)")
    return parse_time(text)


def parse_time(text: str) -> datetime:
    """Parse a wire timestamp; accepts fractional seconds, requires an explicit offset."""
    if not isinstance(text, str) or not text:
        raise ValueError("timestamp must be a non-empty string")
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError("timestamp must carry a UTC offset")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
