"""Signing and verifying envelopes: the one gate every message and reply passes through.

``verify_envelope`` is a pure function of (bytes or object, trusted keys, audience, clock, seen-id
store). It either returns a ``Verified`` message with a typed body, or raises ``ProtocolError``
whose ``reason`` is the first failed check in the fixed order of SPEC.md §5.3.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from . import SUPPORTED_VERSIONS
from .clock import Clock, format_time, parse_wire_time
from .errors import MalformedError, ProtocolError, Reason, VerificationError
from .keys import PublicKey, SigningKey, key_owner
from .messages import MESSAGE_TYPES, PARSED_BODY_TYPES
from .models import UUID_PATTERN
from .signing import read_sig, sign_object, signing_input

DEFAULT_TTL_S = 60
DEFAULT_SKEW_S = 30
MAX_LIFETIME_S = 300
MAX_DEPTH = 32

ENVELOPE_FIELDS = frozenset(
    {"v", "type", "id", "re", "from", "to", "issued_at", "expires_at", "body", "sig"}
)
REQUIRED_FIELDS = ENVELOPE_FIELDS - {"re"}
_UUID = re.compile(UUID_PATTERN)
_CONTAINERS = (dict, list)


class KeyRing(Protocol):
    """Trusted verification keys by node id (the federation's member list or pairwise peers)."""

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None: ...


class SeenIds(Protocol):
    """Replay memory: remember (sender, id) until ``expires_at``; say whether it was seen."""

    def check_and_remember(self, sender: str, message_id: str, expires_at: datetime) -> bool:
        """Return True when (sender, id) was already seen; otherwise remember it."""
        ...


class StaticKeyRing:
    """A ``KeyRing`` over a dict; what tests and the CLI use."""

    def __init__(self, keys: Mapping[str, Sequence[PublicKey]] | None = None) -> None:
        self._keys: dict[str, list[PublicKey]] = {k: list(v) for k, v in (keys or {}).items()}

    def add(self, node_id: str, keys: Sequence[PublicKey]) -> None:
        self._keys[node_id] = list(keys)

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None:
        return self._keys.get(node_id)


class MemorySeenIds:
    """An in-memory ``SeenIds``; nodes wrap it with a persistent table."""

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], datetime] = {}

    def check_and_remember(self, sender: str, message_id: str, expires_at: datetime) -> bool:
        key = (sender, message_id)
        if key in self._seen:
            return True
        self._seen[key] = expires_at
        return False

    def prune(self, now: datetime) -> int:
        old = [k for k, until in self._seen.items() if until < now]
        for k in old:
            del self._seen[k]
        return len(old)


@dataclass(frozen=True)
class Verified:
    """A message that passed every check; ``raw`` is the object exactly as received.

    ``body`` may share nested containers with ``raw`` (a free-form object such as a consent
    statement is not copied), so treat both as read-only.
    """

    type: str
    id: str
    re: str | None
    sender: str
    to: str
    issued_at: datetime
    expires_at: datetime
    key_id: str
    body: BaseModel
    raw: dict[str, Any]
    # parsed from bytes holding no float: so does every object in raw and body, whose
    # canonical form ``signing_input(..., float_free=True)`` may then find faster
    float_free: bool = field(default=False, compare=False)  # how it came, not what it says


def new_message_id() -> str:
    return str(uuid.uuid4())


def sign_envelope(
    *,
    type: str,
    body: Mapping[str, Any] | BaseModel,
    sender: str,
    to: str,
    key: SigningKey,
    clock: Clock,
    ttl_s: int = DEFAULT_TTL_S,
    message_id: str | None = None,
    re: str | None = None,
) -> dict[str, Any]:
    """Build and sign an envelope; the body is validated against its type's model first."""
    model = MESSAGE_TYPES.get(type)
    if model is None:
        raise ProtocolError(f"unknown message type {type!r}", Reason.UNKNOWN_TYPE)
    if isinstance(body, BaseModel):
        body_json = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    else:
        body_json = model.model_validate(body).model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    return _sign(type, body_json, sender, to, key, clock, ttl_s, message_id, re)


def sign_prepared_envelope(
    *,
    type: str,
    body: dict[str, Any],
    sender: str,
    to: str,
    key: SigningKey,
    clock: Clock,
    ttl_s: int = DEFAULT_TTL_S,
    message_id: str | None = None,
    re: str | None = None,
) -> dict[str, Any]:
    """``sign_envelope`` for a body this node assembled from values it validated already, which
    may hold ``Precanonical`` parts (signed fragments resent from the release cache).

    The body is not validated again: that, and walking and re-encoding kilobytes of fragments,
    was most of the cost of a release reply. The caller answers for the body matching its type's
    model; ``tests/node/test_release_reply.py`` checks the holder's replies against it.
    """
    if type not in MESSAGE_TYPES:
        raise ProtocolError(f"unknown message type {type!r}", Reason.UNKNOWN_TYPE)
    return _sign(type, body, sender, to, key, clock, ttl_s, message_id, re)


def _sign(
    type: str,
    body_json: dict[str, Any],
    sender: str,
    to: str,
    key: SigningKey,
    clock: Clock,
    ttl_s: int,
    message_id: str | None,
    re: str | None,
) -> dict[str, Any]:
    now = clock.now()
    envelope: dict[str, Any] = {
        "v": 1,
        "type": type,
        "id": message_id or new_message_id(),
        "from": sender,
        "to": to,
        "issued_at": format_time(now),
        "expires_at": format_time(now + timedelta(seconds=ttl_s)),
        "body": body_json,
    }
    if re is not None:
        envelope["re"] = re
    return sign_object(envelope, key)


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
    """Parse bytes into a JSON object, rejecting too-deep nesting, duplicates and non-objects.

    ``_parse_reference`` defines the result. Most messages take ``_parse_fast``, which returns the
    same object for a fraction of the cost or declines; then the reference parses, decides and
    words any error.
    """
    return _parse(data, max_depth)[0]


def _parse(data: bytes | str, max_depth: int) -> tuple[dict[str, Any], bool]:
    """``parse_json_object``, also saying whether the object holds no float anywhere (then
    ``canonicalize_float_free`` may compute its canonical form)."""
    value = _parse_fast(data, max_depth)
    if value is not None:
        return value, True
    return _parse_reference(data, max_depth), False


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
    """The standard library's parser with duplicate-name, constant and depth checks."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise MalformedError(f"duplicate key {key!r}")
            result[key] = value
        return result

    def no_constants(name: str) -> Any:
        raise MalformedError(f"{name} is not valid JSON")

    too_deep = MalformedError(f"JSON nested deeper than {max_depth}", Reason.TOO_DEEP)
    try:
        value = json.loads(data, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except RecursionError:
        raise too_deep from None
    except (ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise MalformedError(f"not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise MalformedError("message must be a JSON object")
    opening = (
        data.count("[") + data.count("{")
        if isinstance(data, str)
        else data.count(b"[") + data.count(b"{")
    )
    if opening > max_depth and json_depth(value) > max_depth:
        raise too_deep
    return value


def _structure(obj: Mapping[str, Any]) -> None:
    missing = REQUIRED_FIELDS - set(obj)
    if missing:
        raise MalformedError(f"envelope lacks {', '.join(sorted(missing))}")
    extra = set(obj) - ENVELOPE_FIELDS
    if extra:
        raise MalformedError(f"envelope has unknown fields {', '.join(sorted(extra))}")
    for name in ("type", "id", "from", "to", "issued_at", "expires_at", "re"):
        if name not in obj:
            continue
        if not isinstance(obj[name], str):
            raise MalformedError(f"envelope field {name!r} must be a string")
    for name in ("id", "re"):
        if name in obj and not _UUID.match(obj[name]):
            raise MalformedError(f"envelope field {name!r} must be a lower-case UUID")
    if not isinstance(obj["body"], dict):
        raise MalformedError("envelope field 'body' must be an object")
    if not isinstance(obj["v"], int) or isinstance(obj["v"], bool):
        raise MalformedError("envelope field 'v' must be an integer")


def _times(obj: Mapping[str, Any]) -> tuple[datetime, datetime]:
    try:
        return parse_wire_time(obj["issued_at"]), parse_wire_time(obj["expires_at"])
    except ValueError as exc:
        raise MalformedError(f"bad timestamp: {exc}") from exc


def verify_envelope(
    message: bytes | Mapping[str, Any],
    *,
    keyring: KeyRing,
    audience: str,
    clock: Clock,
    seen: SeenIds | None,
    skew_s: int = DEFAULT_SKEW_S,
    max_lifetime_s: int = MAX_LIFETIME_S,
    expect_type: str | None = None,
    max_depth: int = MAX_DEPTH,
) -> Verified:
    """Verify an envelope; the checks run in the order SPEC.md §5.3 fixes.

    Pass the received bytes rather than a parsed object where you have them: the object is then
    known to hold only JSON's own types, which lets canonicalization and body validation skip
    work (``canonicalize_float_free``, ``strict_json``) — about a third of this function's own
    cost on a 2 KB message. A mapping is taken as it is and checked the general way.
    ``max_depth`` is step 2's limit and applies to bytes.
    """
    if isinstance(message, bytes | str):
        obj, float_free = _parse(message, max_depth)
        parsed = True
    else:
        obj, float_free, parsed = dict(message), False, False
    _structure(obj)
    if obj["v"] not in SUPPORTED_VERSIONS:
        raise VerificationError(
            f"protocol version {obj['v']} not supported", Reason.UNSUPPORTED_VERSION
        )
    model = MESSAGE_TYPES.get(obj["type"])
    if model is None:
        raise VerificationError(f"unknown message type {obj['type']!r}", Reason.UNKNOWN_TYPE)
    if expect_type is not None and obj["type"] not in (expect_type, "error"):
        raise MalformedError(f"expected {expect_type!r}, got {obj['type']!r}")
    key_id, signature = read_sig(obj)
    issued_at, expires_at = _times(obj)
    if obj["to"] != audience:
        raise VerificationError(
            f"addressed to {obj['to']!r}, not {audience!r}", Reason.WRONG_AUDIENCE
        )
    sender = obj["from"]
    keys = keyring.keys_for(sender)
    if keys is None:
        raise VerificationError(f"sender {sender!r} is not a trusted peer", Reason.UNKNOWN_SENDER)
    if key_owner(key_id) != sender:
        raise VerificationError(f"key {key_id!r} belongs to another node", Reason.UNKNOWN_KEY)
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        raise VerificationError(f"key {key_id!r} is not listed for {sender!r}", Reason.UNKNOWN_KEY)
    if not key.valid_at(issued_at):
        raise VerificationError(f"key {key_id!r} was not valid at issued_at", Reason.KEY_NOT_VALID)
    if not key.verify(signature, signing_input(obj, float_free=float_free)):
        raise VerificationError("signature does not verify", Reason.BAD_SIGNATURE)
    now = clock.now()
    skew = timedelta(seconds=skew_s)
    if expires_at <= issued_at or expires_at - issued_at > timedelta(seconds=max_lifetime_s):
        raise VerificationError("lifetime outside the allowed window", Reason.OUTSIDE_SKEW)
    if issued_at > now + skew:
        raise VerificationError("issued in the future beyond clock skew", Reason.NOT_YET_VALID)
    if now > expires_at + skew:
        raise VerificationError("message expired", Reason.EXPIRED)
    try:
        # strict JSON-mode validation: "5" is not an integer, 5.0 is not a cursor, 0 is not a
        # date — the same types the JSON Schemas in schemas/ demand. A body just parsed from
        # bytes is validated as it is where strict Python mode gives the same verdict.
        if parsed and obj["type"] in PARSED_BODY_TYPES:
            body = model.model_validate(obj["body"], strict=True)
        else:
            body = model.model_validate_json(orjson.dumps(obj["body"]), strict=True)
    except orjson.JSONEncodeError as exc:
        raise MalformedError(f"body cannot be encoded: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise MalformedError(f"body.{where}: {first.get('msg', 'invalid')}") from exc
    if seen is not None and seen.check_and_remember(sender, obj["id"], expires_at + skew):
        raise VerificationError(f"message id {obj['id']} already seen", Reason.REPLAYED)
    return Verified(
        type=obj["type"],
        id=obj["id"],
        re=obj.get("re"),
        sender=sender,
        to=obj["to"],
        issued_at=issued_at,
        expires_at=expires_at,
        key_id=key_id,
        body=body,
        raw=obj,
        float_free=float_free,
    )
