"""RFC 8785 (JCS) canonical JSON, the signing input of every signature in the protocol.

The ``rfc8785`` package is the reference. For objects that hold no floats and no object keys
outside the Basic Multilingual Plane, RFC 8785 output is byte-identical to ``json.dumps`` with
sorted keys, no whitespace and no ASCII escaping (integers serialize the same, strings escape the
same set the same way, and UTF-16 key order equals code-point order inside the BMP). That fast path
runs ~3x faster; ``tests/protocol/test_canonical.py`` checks both agree on arbitrary JSON.
"""

from __future__ import annotations

import json
from typing import Any

import rfc8785

from .errors import MalformedError

_MAX_SAFE_INT = 2**53 - 1


def _fast_path_ok(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str) or any(ord(ch) > 0xFFFF for ch in key):
                    return False
                stack.append(sub)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        elif isinstance(item, int):
            if abs(item) > _MAX_SAFE_INT:
                return False
        else:
            return False
    return True


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    Raises ``MalformedError`` for values RFC 8785 cannot represent (lone surrogates, NaN,
    integers beyond IEEE 754 double precision).
    """
    if _fast_path_ok(value):
        try:
            return json.dumps(
                value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            ).encode("utf-8")
        except (UnicodeEncodeError, ValueError) as exc:
            raise MalformedError(f"cannot canonicalize: {exc}") from None
    return canonicalize_reference(value)


def canonicalize_reference(value: Any) -> bytes:
    """RFC 8785 via the ``rfc8785`` package, for every value the fast path declines."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError) as exc:
        raise MalformedError(f"cannot canonicalize: {exc}") from None
