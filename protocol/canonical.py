r"""RFC 8785 (JCS) canonical JSON, the signing input of every signature in the protocol.

The ``rfc8785`` package is the reference. For objects that hold no floats, no integers beyond
2**53 and no object keys outside the Basic Multilingual Plane, RFC 8785 output is byte-identical to
``orjson.dumps`` with sorted keys (compact, UTF-8, the same escapes: ``\b \t \n \f \r``, other
control characters as lower-case ``\u00xx``; and UTF-16 key order equals code-point order inside
the BMP). That fast path is about 7x faster than the standard library's encoder and 20x faster
than the reference (measured in ``bench/envelope.py``'s run); ``tests/protocol/test_canonical.py``
checks fast path and reference agree on arbitrary JSON. Deciding whether the fast path applies
takes a walk over the value that costs several times the encoding; ``canonicalize_float_free``
skips most of it for values a caller knows to be float-free, such as a message just parsed with
floats refused (``tests/protocol/test_canonical_float_free.py``).
"""

from __future__ import annotations

import json
from typing import Any

import orjson
import rfc8785

from .errors import MalformedError

_MAX_SAFE_INT = 2**53 - 1

_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_STRICT_INTEGER
# For ``canonicalize_float_free``: should a value hold what it was promised not to (a datetime, a
# dataclass, a str/int/dict/list subclass), the encoder raises and the general path decides.
_ORJSON_FLOAT_FREE = (
    _ORJSON_OPTIONS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# Lead bytes of 4-byte UTF-8 sequences: the characters outside the Basic Multilingual Plane.
_NON_BMP_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


class Precanonical:
    """A JSON value together with its canonical bytes, computed once.

    A holder resends the same signed fragment object to every request under a consent; the
    canonical form of a reply holding it is the reply's canonical form with these bytes spliced in
    (RFC 8785 is compositional: an object's form is its sorted members' forms), so the fragment is
    neither walked nor re-encoded per reply. ``canonicalize`` and ``encode_json`` (how replies are
    written to the wire) accept it wherever a JSON value may stand. On the wire the value is
    written as its canonical bytes too, unless it holds a float: RFC 8785 writes 1e17 as integer
    digits, which a receiver would parse as an integer, so such a value keeps ordinary JSON there.
    The value must not be mutated after wrapping: the bytes would no longer be its form.
    """

    __slots__ = ("_canonical", "_wire", "canonical", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.canonical = canonicalize(value)
        self._canonical = orjson.Fragment(self.canonical)
        self._wire = (
            orjson.Fragment(encode_json(plain(value))) if _holds_float(value) else self._canonical
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Precanonical) and other.canonical == self.canonical

    def __hash__(self) -> int:
        return hash(self.canonical)

    def __repr__(self) -> str:
        return f"Precanonical({self.value!r})"


def _holds_float(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, Precanonical):
            stack.append(item.value)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _canonical_of(value: Any) -> Any:
    """orjson's ``default`` hook for canonical output: a ``Precanonical`` as its bytes."""
    if isinstance(value, Precanonical):
        return value._canonical
    raise TypeError(f"{type(value).__name__} is not JSON")


def _wire_of(value: Any) -> Any:
    """orjson's ``default`` hook for the wire: a ``Precanonical`` as its wire bytes."""
    if isinstance(value, Precanonical):
        return value._wire
    raise TypeError(f"{type(value).__name__} is not JSON")


def plain(value: Any) -> Any:
    """``value`` with every ``Precanonical`` inside replaced by the value it wraps (for code
    that needs ordinary JSON types, such as the reference encoder)."""
    if isinstance(value, Precanonical):
        return plain(value.value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def encode_json(value: Any) -> bytes:
    """Compact UTF-8 JSON of ``value`` (not necessarily canonical), ``Precanonical`` included:
    how replies are written to the wire."""
    try:
        return orjson.dumps(value, default=_wire_of)
    except orjson.JSONEncodeError:  # integers beyond 64 bits: the standard library writes them
        return json.dumps(plain(value), ensure_ascii=False, separators=(",", ":")).encode()


def _fast_path_ok(value: Any) -> bool:
    """True when the fast encoder's output is exactly RFC 8785 for ``value`` (see module docstring).

    This walk runs on every sign and every verify, so it is written for speed: exact-type checks
    first for the common JSON types (``isinstance`` remains the fallback, so subclasses are
    treated as before), string values are never pushed, and a key is checked for non-BMP
    characters with ``str.isascii`` / ``max`` in C rather than a per-character generator.
    """
    stack = [value]
    pop = stack.pop
    push = stack.append
    while stack:
        item = pop()
        kind = type(item)
        if kind is str or kind is bool or item is None:
            continue
        if kind is dict or (kind is not list and isinstance(item, dict)):
            for key, sub in item.items():
                if type(key) is not str and not isinstance(key, str):
                    return False
                if not key.isascii() and max(key) > "\uffff":
                    return False
                if type(sub) is not str:
                    push(sub)
        elif kind is list or isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            continue
        elif isinstance(item, int):
            if abs(item) > _MAX_SAFE_INT:
                return False
        elif kind is Precanonical:
            continue  # its bytes were made by ``canonicalize``
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
            return orjson.dumps(value, option=_ORJSON_OPTIONS, default=_canonical_of)
        except (orjson.JSONEncodeError, UnicodeEncodeError, ValueError) as exc:
            raise MalformedError(f"cannot canonicalize: {exc}") from None
    return canonicalize_reference(plain(value))


def canonicalize_float_free(value: Any) -> bytes:
    """``canonicalize`` for a value known to hold only dict, list, str, int, bool and None.

    ``verify_envelope`` knows that of a message its fast parser took (that parser refuses floats
    and NaN/Infinity). Of the fast path's conditions only two are then left, and both are cheaper
    to check on the encoder's output than by walking the value: integers beyond 2**53 make the
    encoder raise (``OPT_STRICT_INTEGER``), and a character outside the BMP is written as raw
    4-byte UTF-8, whose lead bytes 0xF0–0xF4 occur nowhere else (so a non-BMP character in any
    string, not just a key, sends the value the general way). Whatever is not certain goes to
    ``canonicalize``, which decides as it always has. Types the encoder writes natively but the
    promise rules out (UUID, Enum) are the caller's responsibility.
    """
    try:
        encoded = orjson.dumps(value, option=_ORJSON_FLOAT_FREE)
    except (orjson.JSONEncodeError, UnicodeEncodeError, ValueError):
        return canonicalize(value)
    if not encoded.isascii() and any(lead in encoded for lead in _NON_BMP_LEADS):
        return canonicalize(value)
    return encoded


def canonicalize_reference(value: Any) -> bytes:
    """RFC 8785 via the ``rfc8785`` package, for every value the fast path declines."""
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError, ValueError) as exc:
        raise MalformedError(f"cannot canonicalize: {exc}") from None
