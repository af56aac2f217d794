"""Secrets a node makes for itself and keeps in its directory (mode 0600): made once, on first
use, and shared by every process serving that directory (``web-session.key`` for the pages'
cookies, ``subject-hash.key`` for keyed hashes of identity numbers)."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from .config import ConfigError

SECRET_BYTES = 32


def load_or_create_secret(path: Path) -> bytes:
    """32 random bytes from ``path`` (base64url), created there first if it does not exist;
    a ``ConfigError`` naming the file if it holds anything else (so it is never replaced)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_secret(path)
    key = secrets.token_bytes(SECRET_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(base64.urlsafe_b64encode(key).decode("ascii") + "\n")
    return key


def _read_secret(path: Path) -> bytes:
    try:
        key = base64.urlsafe_b64decode(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "not base64url"
        raise ConfigError(f"{path}: {why}: restore it from the backup") from None
    if len(key) != SECRET_BYTES:
        raise ConfigError(
            f"{path} must hold {SECRET_BYTES} bytes, base64url-encoded: restore it from the backup"
        )
    return key
