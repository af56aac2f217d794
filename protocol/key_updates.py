"""Key changes: the document a node signs when it rotates or withdraws a key, and the rule by
which a peer accepts a changed node document (SPEC.md §4.6).

A peer's trust in a node is the node document it holds for it (its *held* document). A changed
document reaches it in a ``keys.update`` message or by fetching the node's published document
again; either way this module alone decides whether it replaces the held one. The rule carries
trust forward only from the key the receiver already holds as the node's current key, so a key
the receiver knows to have ended (retired or withdrawn) can never add a key or change anything,
whatever time its holder writes into the document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from . import PROTOCOL_VERSION
from .clock import format_time, parse_time
from .documents import verify_node_document
from .errors import MalformedError, Reason, VerificationError
from .keys import PublicKey, SigningKey
from .models import NodeDocument
from .signing import sign_object


class UpdateStatus(StrEnum):
    """What a receiver did with a changed document it accepted (``keys.update.ack`` status)."""

    APPLIED = "applied"  # it replaced the held document
    CURRENT = "current"  # the held document already says the same
    SUPERSEDED = "superseded"  # the held document is newer; nothing changed


@dataclass(frozen=True)
class DocumentUpdate:
    """The verdict on a candidate document: its status, and the document with its keys."""

    status: UpdateStatus
    document: NodeDocument
    keys: list[PublicKey]


def sign_key_change(
    *,
    node_id: str,
    agency_name: str,
    agency_kind: str,
    base_url: str,
    new_key: SigningKey,
    outgoing: SigningKey,
    older_keys: Sequence[PublicKey],
    at: datetime,
) -> dict[str, Any]:
    """The node document announcing a key change at ``at`` (whole seconds).

    ``new_key`` is listed first, valid from ``at``, then ``older_keys`` and ``outgoing`` (valid
    until ``at``), in the order the node's own documents list retired keys. ``outgoing`` signs
    it at ``at`` - 1 s, its last whole second of validity: peers hold the outgoing key as this
    node's current key, so only its signature carries their trust over to the new key (§4.6).
    ``at`` must be at least a second after the outgoing key's valid_from.
    """
    at = at.replace(microsecond=0)
    issued_at = at - timedelta(seconds=1)
    if issued_at < outgoing.valid_from:
        raise MalformedError("a key change needs the outgoing key valid for a second before it")
    keys = [
        PublicKey(new_key.key_id, new_key.public_raw, at),
        *older_keys,
        outgoing.public(valid_until=at),
    ]
    document = {
        "v": PROTOCOL_VERSION,
        "type": "node",
        "id": node_id,
        "agency_name": agency_name,
        "agency_kind": agency_kind,
        "base_url": base_url.rstrip("/"),
        "keys": [k.to_json() for k in keys],
        "protocol_versions": [PROTOCOL_VERSION],
        "issued_at": format_time(issued_at),
    }
    signed = sign_object(document, outgoing)
    verify_node_document(signed, node_id)  # the same strict check every receiver runs
    return signed


def check_document_update(
    candidate: Mapping[str, Any],
    held: NodeDocument,
    held_keys: Sequence[PublicKey],
    *,
    now: datetime,
    skew_s: int,
) -> DocumentUpdate:
    """Judge ``candidate`` against the document held for its node (SPEC.md §4.6, in order).

    Raises ``ProtocolError`` with the first failed check's reason; otherwise says whether the
    candidate replaces the held document (``APPLIED``) or changes nothing.
    """
    document, keys = verify_node_document(candidate, held.id)  # steps 1-7 of §4.4
    issued_at = parse_time(document.issued_at)
    signer_id = document.sig.key
    signer_entry = next((k for k in keys if k.key_id == signer_id), None)
    held_signer = next((k for k in held_keys if k.key_id == signer_id), None)
    if held_signer is None or signer_entry is None or held_signer.raw != signer_entry.raw:
        raise VerificationError(
            f"{signer_id!r} is not a key held for {held.id!r}", Reason.UNKNOWN_KEY
        )
    if not held_signer.valid_at(issued_at):
        raise VerificationError(
            f"{signer_id!r} was not valid at issued_at as held", Reason.KEY_NOT_VALID
        )
    if issued_at > now + timedelta(seconds=skew_s):
        raise VerificationError("issued in the future beyond clock skew", Reason.NOT_YET_VALID)
    held_at = parse_time(held.issued_at)
    ends_its_signer = signer_entry.valid_until is not None
    if issued_at < held_at and not (ends_its_signer and held_signer.valid_until is None):
        return DocumentUpdate(UpdateStatus.SUPERSEDED, document, keys)
    if _content(document) == _content(held):
        return DocumentUpdate(UpdateStatus.CURRENT, document, keys)
    if held_signer.valid_until is not None:
        raise VerificationError(
            f"{signer_id!r} is held as ended: it cannot change the document",
            Reason.KEY_NOT_VALID,
        )
    widened = _widened(keys, held_keys)
    if widened:
        raise MalformedError(f"the document would make {widened!r} valid for longer than held")
    return DocumentUpdate(UpdateStatus.APPLIED, document, keys)


def _content(document: NodeDocument) -> dict[str, Any]:
    """What a receiver acts on: everything but when and by which key it was signed."""
    return document.model_dump(mode="json", exclude={"issued_at", "sig"})


def _widened(keys: Sequence[PublicKey], held_keys: Sequence[PublicKey]) -> str | None:
    """The first key listed in both whose window in ``keys`` reaches beyond the held one."""
    held = {k.key_id: k for k in held_keys}
    for key in keys:
        old = held.get(key.key_id)
        if old is None:
            continue
        later_end = old.valid_until is not None and (
            key.valid_until is None or key.valid_until > old.valid_until
        )
        if key.valid_from < old.valid_from or later_end or key.raw != old.raw:
            return key.key_id
    return None
