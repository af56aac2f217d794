"""The one strict JSON parser: every protocol text a node receives is parsed here.

Envelopes (SPEC.md §5.3 steps 1 and 2, with the fragments, consent statements, checkpoints and
witnesses in their bodies), node documents (fetched by ``peers add`` or read back from the
store), federation member lists and stored consent statements come through
``parse_json_object``, so that no path judges a text more leniently than the federation endpoint
does (SPEC.md §1). A text that is not UTF-8, starts with a byte-order mark, repeats a member name
at any depth, holds ``NaN`` or ``Infinity``, writes a number with a fraction or an exponent
(``1.0``, ``1e0``: every number in the protocol is an integer), nests deeper than the limit, or
whose top level is not an object, is ``malformed`` (``too_deep`` for the nesting).

A parsed value therefore holds only ``dict``, ``list``, ``str``, ``int``, ``bool`` and ``None``.
``refuse_floats`` applies the number rule to a value that did not come from here (a mapping
built in process).
"""

from __future__ import annotations

import json
from typing import Any

from .errors import MalformedError, Reason

MAX_DEPTH = 32

_NOT_AN_INTEGER = "a number with a fraction or an exponent (every number is an integer)"


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), computed without recursion.

    Level by level: each pass keeps only the containers one level down, so scalars are looked at
    once and never pushed. The value is what the parser built: exact ``dict`` and ``list``.
    """
    depth = 0
    level = [value] if type(value) is dict or type(value) is list else []
    while level:
        depth += 1
        level = [
            sub
            for item in level
            for sub in (item.values() if type(item) is dict else item)
            if type(sub) is dict or type(sub) is list
        ]
    return depth


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members, refusing a repeated name (the standard parser keeps the last)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise MalformedError(f"duplicate key {key!r}")
            seen.add(key)
    return result


def _fraction(text: str) -> Any:
    raise MalformedError(f"{_NOT_AN_INTEGER}: {text[:40]}")


def _constant(name: str) -> Any:
    raise MalformedError(f"{name} is not valid JSON")


# The standard library's parser with the protocol's hooks. Configuration, not state: like
# ``json.loads``'s own default decoder it keeps nothing between calls.
_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_float=_fraction, parse_constant=_constant
)


def parse_json_object(data: bytes | str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a protocol text into a JSON object, or raise ``MalformedError`` saying why.

    Bytes are decoded here as strict UTF-8 rather than by ``json.loads``, which would take a
    byte-order mark, UTF-16 and UTF-32 (it guesses the encoding) and encoded surrogates.
    """
    if isinstance(data, str):
        text = data
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MalformedError(f"not UTF-8: {exc.reason} at byte {exc.start}") from None
    if text.startswith("\ufeff"):
        raise MalformedError("a byte-order mark before the JSON text")
    too_deep = MalformedError(f"JSON nested deeper than {max_depth}", Reason.TOO_DEEP)
    try:
        value = _DECODER.decode(text)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # a MalformedError from a hook is not one: it passes as it is
        raise MalformedError(f"not valid JSON: {exc}") from exc
    if type(value) is not dict:
        raise MalformedError("not a JSON object")
    if text.count("[") + text.count("{") > max_depth and json_depth(value) > max_depth:
        raise too_deep
    return value


def refuse_floats(value: Any) -> None:
    """Raise ``MalformedError`` if ``value`` holds a float anywhere (SPEC.md §1: every number is
    an integer). What ``parse_json_object`` returns never does; a mapping built in process may."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            raise MalformedError(_NOT_AN_INTEGER)
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
