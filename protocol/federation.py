"""Signed federation member lists: which nodes trust each other, vouched for by a federation key.

A federation's participating authorities hold one Ed25519 **federation key**. With it they sign a
**member list** (``type`` = ``federation.members``)::

    {"v": 1, "type": "federation.members", "federation": "halland.barnplan.se", "version": 3,
     "issued_at": "2026-11-23T09:00:00Z",
     "members": [{"id": "skola.kungsbacka.se", "base_url": "https://skola.kungsbacka.se",
                  "agency_kind": "school", "keys": ["<64 hex digits>", {<key entry>}]}, ...],
     "sig": {"alg": "Ed25519", "key": "halland.barnplan.se#<16 hex>", "value": "..."}}

The signature follows the same rule as every signed object (``signing.sign_object``); its key id is
``<federation>#<first 16 hex digits of SHA-256(raw public key)>``, so it names the federation it
speaks for. A verifier holds the federation's public key out of band and checks, in order:
schema (``malformed``), that ``sig.key`` is the given key's id for this ``federation``
(``unknown_key``), the signature (``bad_signature``), and that member ids are unique and every
key entry belongs to its member (``malformed``).

A member's ``keys`` are the keys the federation vouches for: each either a full SHA-256
fingerprint (64 lower-case hex digits of the raw public key, as ``barnplan peers add`` shows) or a
key entry exactly as in a node document. A node applying the list fetches each member's node
document from the listed ``base_url`` and trusts it only when :func:`document_mismatches` finds
nothing: same id, base URL and agency kind, and **every** key the document lists (current and
retired) is among the member's listed keys. Extra listed keys (e.g. a member's next key, announced
ahead of rotation) are allowed; they are never trusted by themselves, only the document's keys are.
``version`` increases with every list a federation signs, so a node can refuse an older list.

Pure: no I/O. Reading and writing files is the CLI's business.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from . import PROTOCOL_VERSION
from .clock import format_time
from .codes import AgencyKind
from .documents import Received, read_signed
from .encoding import b64url_decode, b64url_encode
from .errors import MalformedError, Reason, VerificationError
from .keys import PublicKey, SigningKey, fingerprint, key_owner, make_key_id
from .models import KeyEntry, NodeDocument, NodeId, Omittable, Signature, Timestamp, WireModel
from .signing import read_sig, sign_object, signing_input

MEMBERS_TYPE = "federation.members"
MAX_MEMBERS = 5000
MAX_KEYS_PER_MEMBER = 16

Fingerprint = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
BaseUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]


class Member(WireModel):
    """One member node as the federation vouches for it."""

    id: NodeId
    base_url: BaseUrl
    agency_kind: AgencyKind
    keys: Annotated[
        list[Fingerprint | KeyEntry], Field(min_length=1, max_length=MAX_KEYS_PER_MEMBER)
    ]


class FederationMembers(WireModel):
    """A federation's signed member list."""

    v: Literal[1]
    type: Literal["federation.members"]
    federation: NodeId
    version: Annotated[int, Field(ge=1)]
    issued_at: Timestamp
    members: Annotated[list[Member], Field(min_length=1, max_length=MAX_MEMBERS)]
    sig: Signature


class MemberListDraft(BaseModel):
    """What an operator writes before signing: the list without ``v``, ``type`` and ``sig``.

    ``issued_at`` may be left out; :func:`sign_members` fills it in."""

    model_config = ConfigDict(extra="forbid")

    federation: NodeId
    version: Annotated[int, Field(ge=1)]
    issued_at: Omittable[Timestamp] = None
    members: Annotated[list[Member], Field(min_length=1, max_length=MAX_MEMBERS)]


def _check_members(members: Sequence[Member]) -> None:
    seen: set[str] = set()
    for member in members:
        if member.id in seen:
            raise MalformedError(f"member {member.id!r} is listed twice")
        seen.add(member.id)
        for entry in member.keys:
            if isinstance(entry, KeyEntry):
                key = PublicKey.from_json(entry.model_dump(exclude_none=True))
                if key_owner(key.key_id) != member.id:
                    raise MalformedError(f"key {key.key_id!r} does not belong to {member.id!r}")


def federation_key_id(federation: str, public_raw: bytes) -> str:
    return make_key_id(federation, public_raw)


def sign_members(draft: Mapping[str, Any], key: SigningKey, now: datetime) -> dict[str, Any]:
    """Sign a member list draft with the federation key; ``key.node_id`` must be the federation.

    Load the key with ``SigningKey.from_pem(pem, <federation>, now)`` so its key id names the
    federation."""
    parsed = read_signed(MemberListDraft, draft, "members")[1]
    if parsed.federation != key.node_id:
        raise MalformedError(
            f"key speaks for {key.node_id!r}, but the list is for {parsed.federation!r}"
        )
    _check_members(parsed.members)
    obj = {
        "v": PROTOCOL_VERSION,
        "type": MEMBERS_TYPE,
        "federation": parsed.federation,
        "version": parsed.version,
        "issued_at": parsed.issued_at or format_time(now),
        "members": [m.model_dump(mode="json", exclude_none=True) for m in parsed.members],
    }
    signed = sign_object(obj, key)
    read_signed(FederationMembers, signed, "members")  # what every receiver will check
    return signed


def verify_members(data: Received, federation_key: bytes) -> FederationMembers:
    """Verify a signed member list (its text, or what the strict parser made of it) against
    the federation's raw 32-byte public key."""
    obj, members = read_signed(FederationMembers, data, "members")
    key_id, signature = read_sig(obj)
    expected = federation_key_id(members.federation, federation_key)
    if key_id != expected:
        raise VerificationError(
            f"signed by {key_id!r}, not by the given federation key {expected!r}",
            Reason.UNKNOWN_KEY,
        )
    data_signed = signing_input(obj)
    # the federation key has no validity window of its own: the same verify as a node key's
    trusted = PublicKey(expected, federation_key, datetime.min.replace(tzinfo=UTC))
    if not trusted.verify(signature, data_signed):
        raise VerificationError("member list signature does not verify", Reason.BAD_SIGNATURE)
    _check_members(members.members)
    return members


def member_fingerprints(member: Member) -> set[str]:
    """The SHA-256 fingerprints of every key the federation lists for ``member``."""
    result: set[str] = set()
    for entry in member.keys:
        if isinstance(entry, KeyEntry):
            result.add(fingerprint(b64url_decode(entry.public)))
        else:
            result.add(entry)
    return result


def document_mismatches(
    member: Member, document: NodeDocument, document_fingerprints: Sequence[str]
) -> list[str]:
    """Why a (verified) node document does not match its member entry; empty when it matches.

    ``document_fingerprints`` are the fingerprints of ``document.keys`` in order."""
    problems: list[str] = []
    if document.id != member.id:
        problems.append(f"document is for {document.id!r}, not {member.id!r}")
    if document.base_url.rstrip("/") != member.base_url.rstrip("/"):
        problems.append(f"document base_url {document.base_url} is not {member.base_url}")
    if document.agency_kind != member.agency_kind:
        problems.append(
            f"document agency_kind {document.agency_kind.value} is not {member.agency_kind.value}"
        )
    listed = member_fingerprints(member)
    for entry, fp in zip(document.keys, document_fingerprints, strict=True):
        if fp not in listed:
            state = "current" if entry.valid_until is None else "retired"
            problems.append(f"{state} key {entry.kid} (SHA-256 {fp}) is not in the member list")
    return problems


# --- the federation key's public half ---------------------------------------------------------


def public_key_pem(public_raw: bytes) -> bytes:
    """SubjectPublicKeyInfo PEM of a raw Ed25519 public key (what ``create-key`` writes)."""
    return Ed25519PublicKey.from_public_bytes(public_raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def parse_public_key(text: str | bytes) -> bytes:
    """A raw Ed25519 public key from PEM (SubjectPublicKeyInfo) or 43 base64url characters."""
    data = text.encode() if isinstance(text, str) else text
    if b"-----BEGIN" in data:
        try:
            key = serialization.load_pem_public_key(data)
        except ValueError as exc:
            raise MalformedError(f"not a PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise MalformedError("the federation key must be Ed25519")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        raw = b64url_decode(data.decode("ascii").strip())
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedError("a federation key is a PEM public key or 43 base64url chars") from exc
    if len(raw) != 32:
        raise MalformedError("an Ed25519 public key is 32 bytes")
    return raw


def public_key_text(public_raw: bytes) -> str:
    """The raw public key as 43 base64url characters, for ``--federation-key``."""
    return b64url_encode(public_raw)
