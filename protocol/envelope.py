"""Signing and verifying envelopes: the one gate every message and reply passes through.

``verify_envelope`` is a pure function of (bytes or object, trusted keys, audience, clock, seen-id
store). It either returns a ``Verified`` message with a typed body, or raises ``ProtocolError``
whose ``reason`` is the first failed check in the fixed order of SPEC.md §5.3.
``read_claims`` says to whom the ``error`` reply to a refused request goes (SPEC.md §8).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ValidationError

from . import SUPPORTED_VERSIONS
from .clock import Clock, format_time, parse_wire_time
from .errors import MalformedError, ProtocolError, Reason, VerificationError
from .jsontext import MAX_DEPTH, parse_json_object, refuse_floats
from .keys import PublicKey, SigningKey, key_owner
from .messages import MESSAGE_TYPES, REQUEST_TYPES
from .models import is_node_id, is_uuid
from .signing import read_sig, sign_object, signing_input

DEFAULT_TTL_S = 60
DEFAULT_SKEW_S = 30
MAX_LIFETIME_S = 300
# the addressee of an error reply to a request whose sender cannot be read (SPEC.md §8)
ANONYMOUS = "anonymous.invalid"

ENVELOPE_FIELDS = frozenset(
    {"v", "type", "id", "re", "from", "to", "issued_at", "expires_at", "body", "sig"}
)
REQUIRED_FIELDS = ENVELOPE_FIELDS - {"re"}


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
    """``sign_envelope`` for a body this node assembled from values it validated already
    (signed fragments resent from the release cache).

    The body is not validated again: that was most of the cost of a release reply. The caller
    answers for the body matching its type's model; ``tests/node/test_release_reply.py`` checks
    the holder's replies against it.
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
        if name in obj and not is_uuid(obj[name]):
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


@dataclass(frozen=True)
class Claims:
    """What a request says about itself, for answering it when it is refused (SPEC.md §8).

    Never trusted: read only from the request's own top-level object, and only where well-formed,
    so that neither a member nested in the body nor a string in a text that is not a JSON object
    decides to whom a node signs an error."""

    sender: str | None = None  # ``from``, if a node id
    id: str | None = None  # ``id``, if a lower-case UUID
    type: str | None = None  # ``type``, if a message type of this version

    @property
    def to(self) -> str:
        """The ``to`` of the error reply: the claimed sender, or ``anonymous.invalid``."""
        return self.sender or ANONYMOUS


def read_claims(
    data: bytes | str, max_depth: int = MAX_DEPTH, max_bytes: int | None = None
) -> Claims:
    """The claims of a refused request's received text: nothing from a text over the size limit
    (it is not parsed) or one that is not a JSON object the strict parser accepts."""
    if max_bytes is not None and len(data) > max_bytes:
        return Claims()
    try:
        obj = parse_json_object(data, max_depth)
    except ProtocolError:
        return Claims()
    sender, message_id, message_type = obj.get("from"), obj.get("id"), obj.get("type")
    known_type = isinstance(message_type, str) and message_type in MESSAGE_TYPES
    return Claims(
        sender=sender if is_node_id(sender) else None,
        id=message_id if is_uuid(message_id) else None,
        type=message_type if known_type else None,
    )


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
    request: bool = False,
    max_depth: int = MAX_DEPTH,
    max_bytes: int | None = None,
) -> Verified:
    """Verify an envelope; the checks run in the order SPEC.md §5.3 fixes.

    Say what is being verified: a reply to a request whose reply type is ``expect_type``, or
    (``request=True``) a request received at the federation endpoint; steps 5 and 6 differ.
    A failure after the signature verified (steps 15–19) names the sender it verified as in
    the error's ``signer``; before that, nothing the envelope says is known to be true.

    Pass the received bytes where you have them: they are parsed by the one strict parser
    (``jsontext``). A mapping is taken as it is, with floats refused (SPEC.md §1).
    ``max_bytes`` (step 0) and ``max_depth`` (step 2) apply to bytes.
    """
    if isinstance(message, bytes | str):
        if max_bytes is not None and len(message) > max_bytes:
            raise MalformedError(f"body larger than {max_bytes} bytes", Reason.TOO_LARGE)
        obj = parse_json_object(message, max_depth)
    else:
        obj = dict(message)
        refuse_floats(obj)
    _structure(obj)
    if obj["v"] not in SUPPORTED_VERSIONS:
        raise VerificationError(
            f"protocol version {obj['v']} not supported", Reason.UNSUPPORTED_VERSION
        )
    model = MESSAGE_TYPES.get(obj["type"])
    if model is None:
        raise VerificationError(f"unknown message type {obj['type']!r}", Reason.UNKNOWN_TYPE)
    if request and obj["type"] not in REQUEST_TYPES:
        raise VerificationError(f"{obj['type']} is not a request", Reason.UNKNOWN_TYPE)
    if request and "re" in obj:
        raise MalformedError("a request carries no 're'")
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
    if not key.verify(signature, signing_input(obj)):
        raise VerificationError("signature does not verify", Reason.BAD_SIGNATURE)
    try:
        body = _after_signature(
            obj, model, issued_at, expires_at, clock, skew_s, max_lifetime_s, seen
        )
    except ProtocolError as exc:
        exc.signer = sender
        raise
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
    )


def _after_signature(
    obj: dict[str, Any],
    model: type[BaseModel],
    issued_at: datetime,
    expires_at: datetime,
    clock: Clock,
    skew_s: int,
    max_lifetime_s: int,
    seen: SeenIds | None,
) -> BaseModel:
    """Steps 15–19, once the sender is known: time window, body, replay memory (last, so that
    only an envelope that passed everything else occupies its id)."""
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
        # date — the same types the JSON Schemas in schemas/ demand.
        body = model.model_validate_json(orjson.dumps(obj["body"]), strict=True)
    except orjson.JSONEncodeError as exc:
        raise MalformedError(f"body cannot be encoded: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise MalformedError(f"body.{where}: {first.get('msg', 'invalid')}") from exc
    if seen is not None and seen.check_and_remember(obj["from"], obj["id"], expires_at + skew):
        raise VerificationError(f"message id {obj['id']} already seen", Reason.REPLAYED)
    return body
