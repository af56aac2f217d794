"""Detached-in-place signatures over RFC 8785 canonical JSON, shared by every signed object.

An object is signed by adding ``sig = {"alg": "Ed25519", "key": <key id>, "value": <b64url>}``
where ``value`` is Ed25519 over ``canonicalize(object without "sig")``. Envelopes, node documents,
fragments and consent statements all use exactly this rule (SPEC.md §3).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .canonical import canonicalize
from .encoding import b64url_decode, b64url_encode
from .errors import MalformedError
from .keys import SigningKey


def signing_input(obj: Mapping[str, Any]) -> bytes:
    """The exact bytes a signature covers: the canonical form of the object minus ``sig``."""
    return canonicalize({k: v for k, v in obj.items() if k != "sig"})


def sign_object(obj: Mapping[str, Any], key: SigningKey) -> dict[str, Any]:
    """Return a copy of ``obj`` with a fresh ``sig`` block made by ``key``."""
    unsigned = {k: v for k, v in obj.items() if k != "sig"}
    value = key.sign(canonicalize(unsigned))
    return {**unsigned, "sig": {"alg": "Ed25519", "key": key.key_id, "value": b64url_encode(value)}}


def read_sig(obj: Mapping[str, Any]) -> tuple[str, bytes]:
    """Return (key id, signature bytes) or raise ``MalformedError`` naming what is wrong."""
    sig = obj.get("sig")
    if not isinstance(sig, dict):
        raise MalformedError("missing signature block 'sig'")
    if set(sig) != {"alg", "key", "value"}:
        raise MalformedError("'sig' must have exactly alg, key and value")
    if sig["alg"] != "Ed25519":
        raise MalformedError("'sig.alg' must be Ed25519")
    key_id = sig["key"]
    if not isinstance(key_id, str) or "#" not in key_id:
        raise MalformedError("'sig.key' must be a key id '<node>#<fingerprint>'")
    try:
        value = b64url_decode(sig["value"])
    except ValueError as exc:
        raise MalformedError("'sig.value' is not base64url") from exc
    if len(value) != 64:
        raise MalformedError("'sig.value' must be a 64-byte Ed25519 signature")
    return key_id, value
