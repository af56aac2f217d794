"""Process logs: structlog, one JSON object per line on stdout (DESIGN.md invariant 6).

Only ids, types, counts and outcomes are ever passed to the logger; names, identity numbers and
plan content never are. ``request_id`` is bound per HTTP request through contextvars.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """JSON lines with ISO timestamps, level, event, and any bound context (request_id)."""
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(ensure_ascii=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
