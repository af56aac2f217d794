"""Signed objects other than envelopes: node documents, fragments and consent statements.

Each is signed with the same rule as envelopes (``signing.sign_object``) so that it carries its own
provenance: a fragment keeps its origin's signature through assembly and export; a consent
statement keeps the lead node's.

Each is read one way (``parse_document``): a text through the one strict parser
(``jsontext.parse_json_object``, as envelopes are), then strict JSON-mode validation against its
model. The ``verify_*`` functions take the received text, or an object that parser returned
(one nested in a verified envelope); a node document fetched by ``peers add``, one read back from
the store and a consent statement inside a ``consent.statement`` are judged alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from . import PROTOCOL_VERSION
from .clock import format_time, parse_time
from .errors import MalformedError, ProtocolError, Reason, VerificationError
from .jsontext import parse_json_object, refuse_floats
from .keys import PublicKey, SigningKey, key_owner
from .models import (
    Checkpoint,
    ConsentStatement,
    Fragment,
    NodeDocument,
    RestoreDeclaration,
    Witness,
)
from .signing import read_sig, sign_object, signing_input

M = TypeVar("M", bound=BaseModel)
# a signed object as received: its text, or the object the strict parser made of it
Received = bytes | str | Mapping[str, Any]


def parse_document(model: type[M], data: Received, what: str | None = None) -> M:
    """Read a signed object (no signature check): for one this node verified when it arrived
    and reads back from its store, or signed itself."""
    return read_signed(model, data, what or model.__name__)[1]


def read_signed(model: type[M], data: Received, what: str) -> tuple[Mapping[str, Any], M]:
    """The object (parsed strictly if it is text; as received, never a re-serialization: what
    its signature covers) and its model: the first check of every signed object (§4.4 step 1,
    §6.3 step 1, member lists), ``malformed`` if it fails."""
    if isinstance(data, bytes | str):
        try:
            obj: Mapping[str, Any] = parse_json_object(data)
        except ProtocolError as exc:
            raise MalformedError(f"{what}: {exc.detail}", exc.reason) from None
    else:
        obj = data
        refuse_floats(obj)
    return obj, _validate(model, obj, what)


def _validate(model: type[M], obj: Mapping[str, Any], what: str) -> M:
    """Validate a signed object as JSON, strictly: what the JSON Schemas in schemas/ and
    envelope bodies demand (``verify_envelope``). Lax Python-mode validation took "2" for the
    integer 2 and 0 for the date 1970-01-01 inside a verified signature, so another
    implementation checking the schema would have refused an object this one accepted."""
    try:
        return model.model_validate_json(orjson.dumps(obj), strict=True)
    except orjson.JSONEncodeError as exc:
        raise MalformedError(f"{what}: cannot be encoded as JSON: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise MalformedError(f"{what}.{where}: {first.get('msg', 'invalid')}") from exc


def check_signature(
    obj: Mapping[str, Any],
    signer: str,
    keys: Sequence[PublicKey],
    at: datetime,
) -> str:
    """Check ``obj``'s signature by one of ``signer``'s ``keys`` valid at ``at``; return key id."""
    key_id, signature = read_sig(obj)
    if key_owner(key_id) != signer:
        raise VerificationError(f"signed by {key_id!r}, not by {signer!r}", Reason.UNKNOWN_KEY)
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        raise VerificationError(f"key {key_id!r} is not listed for {signer!r}", Reason.UNKNOWN_KEY)
    if not key.valid_at(at):
        raise VerificationError(f"key {key_id!r} was not valid then", Reason.KEY_NOT_VALID)
    if not key.verify(signature, signing_input(obj)):
        raise VerificationError("signature does not verify", Reason.BAD_SIGNATURE)
    return key_id


# --- node documents -------------------------------------------------------------------------


def build_node_document(
    *,
    node_id: str,
    agency_name: str,
    agency_kind: str,
    base_url: str,
    key: SigningKey,
    old_keys: Sequence[PublicKey] = (),
    issued_at: datetime,
) -> dict[str, Any]:
    """Self-sign a node document with ``key``; old keys stay listed for old signatures."""
    doc = {
        "v": PROTOCOL_VERSION,
        "type": "node",
        "id": node_id,
        "agency_name": agency_name,
        "agency_kind": agency_kind,
        "base_url": base_url.rstrip("/"),
        "keys": [key.public().to_json()] + [k.to_json() for k in old_keys],
        "protocol_versions": [PROTOCOL_VERSION],
        "issued_at": format_time(issued_at),
    }
    signed = sign_object(doc, key)
    read_signed(NodeDocument, signed, "node")  # what every receiver will check
    return signed


def verify_node_document(
    data: Received, expected_id: str | None = None
) -> tuple[NodeDocument, list[PublicKey]]:
    """Check a self-signed node document (§4.4); return it and its keys as ``PublicKey``s."""
    obj, doc = read_signed(NodeDocument, data, "node")
    if expected_id is not None and doc.id != expected_id:
        raise VerificationError(
            f"document is for {doc.id!r}, not {expected_id!r}", Reason.UNKNOWN_SENDER
        )
    keys = [PublicKey.from_json(k.model_dump(exclude_none=True)) for k in doc.keys]
    for key in keys:
        if key_owner(key.key_id) != doc.id:
            raise MalformedError(f"key {key.key_id!r} does not belong to {doc.id!r}")
    check_signature(obj, doc.id, keys, parse_time(doc.issued_at))
    return doc, keys


# --- fragments --------------------------------------------------------------------------------


def sign_fragment(fragment: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """Sign a fragment as its origin node; the origin must be the key's node."""
    if fragment.get("origin") != key.node_id:
        raise MalformedError("a node signs only fragments whose origin is itself")
    signed = sign_object({"v": PROTOCOL_VERSION, "type": "fragment", **fragment}, key)
    read_signed(Fragment, signed, "fragment")  # what every receiver will check
    return signed


def verify_fragment(data: Received, keys: Sequence[PublicKey]) -> tuple[Fragment, str]:
    """Verify a fragment against its origin's keys (valid at ``signed_at``); return model, key id.

    Fragments are signed when released (they carry the consent id they were released under), so
    the key must be valid at ``signed_at``, not when the professional wrote the content.
    """
    obj, fragment = read_signed(Fragment, data, "fragment")
    key_id = check_signature(obj, fragment.origin, keys, parse_time(fragment.signed_at))
    return fragment, key_id


# --- consent statements -----------------------------------------------------------------------


def sign_consent(statement: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    if statement.get("lead") != key.node_id:
        raise MalformedError("only the lead node signs a consent statement")
    signed = sign_object({"v": PROTOCOL_VERSION, "type": "consent", **statement}, key)
    read_signed(ConsentStatement, signed, "consent")  # what every receiver will check
    return signed


def verify_consent(data: Received, keys: Sequence[PublicKey]) -> tuple[ConsentStatement, str]:
    """Verify a consent statement against its lead's keys (valid at ``issued_at``)."""
    obj, statement = read_signed(ConsentStatement, data, "consent")
    key_id = check_signature(obj, statement.lead, keys, parse_time(statement.issued_at))
    return statement, key_id


# --- log checkpoints and witnesses ------------------------------------------------------------


def sign_checkpoint(
    *, node_id: str, seq: int, head: str, at: datetime, key: SigningKey
) -> dict[str, Any]:
    obj = {
        "v": PROTOCOL_VERSION,
        "type": "checkpoint",
        "node": node_id,
        "seq": seq,
        "head": head,
        "at": format_time(at),
    }
    signed = sign_object(obj, key)
    read_signed(Checkpoint, signed, "checkpoint")  # what every receiver will check
    return signed


def verify_checkpoint(data: Received, keys: Sequence[PublicKey]) -> Checkpoint:
    obj, checkpoint = read_signed(Checkpoint, data, "checkpoint")
    check_signature(obj, checkpoint.node, keys, parse_time(checkpoint.at))
    return checkpoint


def sign_witness(checkpoint: Checkpoint, key: SigningKey, at: datetime) -> dict[str, Any]:
    obj = {
        "v": PROTOCOL_VERSION,
        "type": "witness",
        "witness": key.node_id,
        "origin": checkpoint.node,
        "seq": checkpoint.seq,
        "head": checkpoint.head,
        "at": format_time(at),
    }
    signed = sign_object(obj, key)
    read_signed(Witness, signed, "witness")  # what every receiver will check
    return signed


def verify_witness(data: Received, keys: Sequence[PublicKey]) -> Witness:
    obj, witness = read_signed(Witness, data, "witness")
    check_signature(obj, witness.witness, keys, parse_time(witness.at))
    return witness


def sign_restore(
    *, node_id: str, seq: int, head: str, at: datetime, key: SigningKey, note: str | None = None
) -> dict[str, Any]:
    """A restore declaration (SPEC.md §7.8): the node's log continues from entry ``seq``."""
    obj: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "type": "restore",
        "node": node_id,
        "seq": seq,
        "head": head,
        "at": format_time(at),
    }
    if note:
        obj["note"] = note
    signed = sign_object(obj, key)
    read_signed(RestoreDeclaration, signed, "restore")  # what every receiver will check
    return signed


def verify_restore(data: Received, keys: Sequence[PublicKey]) -> RestoreDeclaration:
    obj, declaration = read_signed(RestoreDeclaration, data, "restore")
    check_signature(obj, declaration.node, keys, parse_time(declaration.at))
    return declaration
