"""The one strict JSON parser: every protocol text a node receives is parsed here.

Envelopes (SPEC.md §5.3 steps 1 and 2, with the fragments, consent statements, checkpoints and
witnesses in their bodies), node documents (fetched by ``peers add`` or read back from the
store), federation member lists and stored consent statements come through
``parse_json_object``, so that no path judges a text more leniently than the federation endpoint
does (SPEC.md §1). A text that is not UTF-8, starts with a byte-order mark, repeats a member name
at any depth, holds ``NaN`` or ``Infinity``, writes a number with a fraction or an exponent
(``1.0``, ``1e0``: every number in the protocol is an integer), nests deeper than the limit, or
whose top level is not an object, is ``malformed`` (``too_deep`` for the nesting).

A parsed value therefore holds only ``dict``, ``list``, ``str``, ``int``, ``bool`` and ``None``;
``canonicalize_float_free`` may compute its canonical form. ``refuse_floats`` applies the number
rule to a value that did not come from here (a mapping built in process).
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from .errors import MalformedError, Reason

MAX_DEPTH = 32

_CONTAINERS = (dict, list)
_NOT_AN_INTEGER = "a number with a fraction or an exponent (every number is an integer)"


def json_depth(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0), computed without recursion.

    Level by level: each pass keeps only the containers one level down, so scalars are looked at
    once and never pushed; this runs on every received message that has more than ``MAX_DEPTH``
    brackets, which a ~2 KB body easily has.
    """
    depth = 0
    level = [value] if isinstance(value, _CONTAINERS) else []
    while level:
        depth += 1
        level = [
            sub
            for item in level
            for sub in (item.values() if isinstance(item, dict) else item)
            if isinstance(sub, _CONTAINERS)
        ]
    return depth


def parse_json_object(data: bytes | str, max_depth: int = MAX_DEPTH) -> dict[str, Any]:
    """Parse a protocol text into a JSON object, or raise ``MalformedError`` saying why.

    ``_parse_reference`` defines the result. Most messages take ``_parse_fast``, which returns the
    same object for a fraction of the cost or declines; then the reference parses, decides and
    words any error.
    """
    value = _parse_fast(data, max_depth)
    if value is not None:
        return value
    return _parse_reference(data, max_depth)


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


# For duplicate and depth checks: quotes and brackets are kept (braces become brackets).
_BRACES_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS_OR_QUOTES = bytes(b for b in range(256) if b not in b'[]{}"')


class _NotFast(Exception):
    """Raised inside the fast parser for what only the reference parser may decide."""


def _refuse(text: str) -> Any:
    raise _NotFast(text)


def _has_escaped_quote(text: bytes) -> bool:
    return b"\\" in text and b'\\"' in text  # the first test is a fast memchr


# The standard library's parser refusing floats and NaN/Infinity outright, so that only the
# reference parser ever handles them. Configuration, not state: like ``json.loads``'s own default
# decoder it keeps nothing between calls, and building one costs a microsecond per message.
_FLOAT_FREE_DECODER = json.JSONDecoder(parse_float=_refuse, parse_constant=_refuse)


def _parse_fast(data: bytes | str, max_depth: int) -> dict[str, Any] | None:
    """The parsed object, or None when the reference parser must decide.

    The parser is ``_FLOAT_FREE_DECODER``: the reference's own, minus its per-object duplicate
    hook, which alone costs more than the parse. Duplicate names are caught by counting instead:
    when no string holds an escaped quote, every quote delimits a string, so re-encoding the
    result gives fewer quotes exactly when a duplicate was dropped (its name was a string). Depth
    is read off the text reduced to quotes and brackets: there every string is ``""`` unless it
    holds a bracket (then the object is walked instead), and once they are removed each
    ``replace`` pass removes exactly the innermost level of brackets.
    """
    try:
        raw = data.encode() if isinstance(data, str) else data
        # strict UTF-8: a byte order mark, UTF-16 or encoded surrogates go to the reference
        value = _FLOAT_FREE_DECODER.decode(data if isinstance(data, str) else data.decode())
        if type(value) is not dict or _has_escaped_quote(raw):
            return None
        reencoded = orjson.dumps(value)  # raises for integers beyond 64 bits
    except (ValueError, RecursionError, _NotFast, orjson.JSONEncodeError):
        return None
    quotes_and_brackets = raw.translate(_BRACES_AS_BRACKETS, _NOT_BRACKETS_OR_QUOTES)
    if _has_escaped_quote(reencoded) or reencoded.count(b'"') != quotes_and_brackets.count(b'"'):
        return None
    level = quotes_and_brackets.replace(b'""', b"")
    if b'"' in level:  # a string holds a bracket
        too_deep = level.count(b"[") > max_depth and json_depth(value) > max_depth
    else:
        for _ in range(max_depth):
            level = level.replace(b"[]", b"")
            if not level:
                break
        too_deep = bool(level)
    if too_deep:
        raise MalformedError(f"JSON nested deeper than {max_depth}", Reason.TOO_DEEP)
    return value


def _parse_reference(data: bytes | str, max_depth: int) -> dict[str, Any]:
    """The standard library's parser over strictly decoded UTF-8, with duplicate-name, number,
    constant and depth checks.

    Bytes are decoded here rather than by ``json.loads``, which would take a byte-order mark,
    UTF-16 and UTF-32 (it guesses the encoding) and encoded surrogates."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise MalformedError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_fractions(text: str) -> Any:
        raise MalformedError(f"{_NOT_AN_INTEGER}: {text[:40]}")

    def no_constants(name: str) -> Any:
        raise MalformedError(f"{name} is not valid JSON")

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
        value = json.loads(
            text,
            object_pairs_hook=no_duplicates,
            parse_float=no_fractions,
            parse_constant=no_constants,
        )
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # a MalformedError from a hook passes through as it is
        raise MalformedError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedError("not a JSON object")
    if text.count("[") + text.count("{") > max_depth and json_depth(value) > max_depth:
        raise too_deep
    return value
