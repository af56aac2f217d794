r"""RFC 8785 (JCS) canonical JSON, the signing input of every signature in the protocol.

``canonicalize`` is the one canonicaliser. The ``rfc8785`` package defines its output. One
accelerator stands in front of it for the values the protocol actually signs, where it is
byte-identical and about 20 times faster: ``orjson.dumps`` with sorted keys, taken only when

- the value holds nothing but ``dict`` (string keys), ``list``, ``str``, ``int``, ``bool`` and
  ``None``, exact types (``_only_json_types``: no float, whose number form differs, and nothing
  orjson would write that RFC 8785 refuses, such as a UUID, an enum or a tuple);
- every integer is within ±(2**53 − 1) (``OPT_STRICT_INTEGER`` makes orjson raise otherwise);
- no string holds a character outside the Basic Multilingual Plane (no 4-byte UTF-8 sequence in
  the output, whose lead bytes 0xF0–0xF4 occur nowhere else): then UTF-16 member order equals
  code-point order.

There both write compact UTF-8 with the same string escapes (``\" \\ \b \t \n \f \r``, other
control characters as lower-case ``\u00xx``, everything else literally) and the same integers.
Whatever the accelerator declines or fails on (a lone surrogate) goes to ``rfc8785``, which
writes it or refuses it. ``tests/protocol/test_canonical.py`` holds the two equal, byte for
byte, on hypothesis-generated JSON.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import rfc8785

from .errors import MalformedError

_SORTED_STRICT = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
_SCALARS = frozenset({str, int, bool, type(None)})
# Lead bytes of 4-byte UTF-8 sequences: the characters outside the Basic Multilingual Plane.
_NON_BMP_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


def canonicalize(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of a JSON value.

    Raises ``MalformedError`` for values RFC 8785 cannot represent (lone surrogates, NaN,
    integers beyond IEEE 754 double precision, types that are not JSON).
    """
    if _only_json_types(value):
        try:
            encoded = orjson.dumps(value, option=_SORTED_STRICT)
        except (orjson.JSONEncodeError, UnicodeEncodeError, ValueError):
            encoded = None  # an integer beyond 2**53 or a lone surrogate: rfc8785 decides
        if encoded is not None and (
            encoded.isascii() or not any(lead in encoded for lead in _NON_BMP_LEADS)
        ):
            return encoded
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError, TypeError) as exc:
        raise MalformedError(f"cannot canonicalize: {exc}") from None


def _only_json_types(value: Any) -> bool:
    """True when ``value`` holds only dicts, lists, strings, integers, booleans and None, all of
    exactly those types (a subclass may write itself differently). Dict keys are left to orjson,
    which refuses a key that is not a string."""
    stack = [value]
    pop, extend = stack.pop, stack.extend
    scalars = _SCALARS
    while stack:
        item = pop()
        kind = type(item)
        if kind in scalars:
            continue
        if kind is dict:
            extend(item.values())
        elif kind is list:
            extend(item)
        else:
            return False
    return True


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value`` (not necessarily canonical): how replies and requests are
    written to the wire."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the standard library writes them
        return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
