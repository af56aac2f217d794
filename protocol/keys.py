"""Ed25519 node keys: stable key ids, PEM files, and the public key records peers trust.

Signing and verifying go through libsodium (PyNaCl); key files, PEM and passphrases through
``cryptography``. Both are plain RFC 8032 Ed25519 and produce identical signatures
(``tests/protocol/test_rfc8032.py``: the RFC's vectors, and libsodium against OpenSSL on random
keys and messages). libsodium verifies in about half the time OpenSSL's Ed25519 takes (measured
on this project's machines: ~50 µs against ~105 µs), and a verify is the largest single cost of
every message a node receives. It is also stricter: it refuses small-order keys, with which
OpenSSL accepts one signature for every message (SPEC §3.1).

A key id is ``<node id>#<fingerprint>`` where the fingerprint is the first 16 hex digits of the
SHA-256 of the raw 32-byte public key. It is derived from the key itself, so it is stable across
restarts and re-publication, and it names its node so a key can never be claimed by another node.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .clock import format_time, parse_wire_time
from .encoding import b64url_decode, b64url_encode
from .errors import KeyFileError, MalformedError


def fingerprint(public_raw: bytes) -> str:
    """Full SHA-256 hex fingerprint of a raw public key, shown to operators before trusting."""
    return hashlib.sha256(public_raw).hexdigest()


def make_key_id(node_id: str, public_raw: bytes) -> str:
    return f"{node_id}#{fingerprint(public_raw)[:16]}"


def key_owner(key_id: str) -> str:
    """The node id part of a key id."""
    owner, sep, _ = key_id.partition("#")
    if not sep or not owner:
        raise MalformedError(f"key id {key_id!r} is not '<node id>#<fingerprint>'")
    return owner


@dataclass(frozen=True)
class PublicKey:
    """A verification key as listed in a node document: id, raw key and validity window."""

    key_id: str
    raw: bytes
    valid_from: datetime
    valid_until: datetime | None = None

    def valid_at(self, when: datetime) -> bool:
        return self.valid_from <= when and (self.valid_until is None or when < self.valid_until)

    @cached_property
    def _loaded(self) -> nacl.signing.VerifyKey:
        """The key object, loaded on the first verify and kept on this record: every verify
        needs one, and the record lives as long as the key ring that trusts it. Bytes of the
        wrong length raise ``ValueError`` each time (a raising property is not cached)."""
        return nacl.signing.VerifyKey(bytes(self.raw))

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True only for a valid signature; a wrong-length signature or key is simply invalid."""
        try:
            self._loaded.verify(data, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError):
            return False
        return True

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "kid": self.key_id,
            "alg": "Ed25519",
            "public": b64url_encode(self.raw),
            "valid_from": format_time(self.valid_from),
        }
        if self.valid_until is not None:
            doc["valid_until"] = format_time(self.valid_until)
        return doc

    @classmethod
    def from_json(cls, doc: object) -> PublicKey:
        if not isinstance(doc, dict):
            raise MalformedError("key entry must be an object")
        try:
            if doc.get("alg") != "Ed25519":
                raise MalformedError("key alg must be Ed25519")
            raw = b64url_decode(doc["public"])
            if len(raw) != 32:
                raise MalformedError("Ed25519 public key must be 32 bytes")
            key_id = doc["kid"]
            if not isinstance(key_id, str):
                raise MalformedError("kid must be a string")
            if key_id != make_key_id(key_owner(key_id), raw):
                raise MalformedError(f"kid {key_id!r} does not match its public key")
            until = doc.get("valid_until")
            return cls(
                key_id=key_id,
                raw=raw,
                valid_from=parse_wire_time(doc["valid_from"]),
                valid_until=parse_wire_time(until) if until is not None else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedError(f"bad key entry: {exc}") from exc


class SigningKey:
    """A node's private Ed25519 key with its key id and validity start."""

    def __init__(self, node_id: str, private: Ed25519PrivateKey, valid_from: datetime) -> None:
        self.node_id = node_id
        self._private = private
        self.public_raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = make_key_id(node_id, self.public_raw)
        self._signer = nacl.signing.SigningKey(
            private.private_bytes(
                serialization.Encoding.Raw,
                serialization.PrivateFormat.Raw,
                serialization.NoEncryption(),
            )
        )
        self.valid_from = valid_from.replace(microsecond=0)  # wire times are whole seconds

    @classmethod
    def generate(cls, node_id: str, valid_from: datetime) -> SigningKey:
        return cls(node_id, Ed25519PrivateKey.generate(), valid_from)

    @classmethod
    def from_seed(cls, node_id: str, seed: bytes, valid_from: datetime) -> SigningKey:
        """Deterministic key from a 32-byte seed; used for test vectors only."""
        return cls(node_id, Ed25519PrivateKey.from_private_bytes(seed), valid_from)

    def sign(self, data: bytes) -> bytes:
        return self._signer.sign(data).signature

    def public(self, valid_until: datetime | None = None) -> PublicKey:
        return PublicKey(self.key_id, self.public_raw, self.valid_from, valid_until)

    def to_pem(self, passphrase: bytes | None = None) -> bytes:
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(passphrase)
            if passphrase
            else serialization.NoEncryption()
        )
        return self._private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
        )

    @classmethod
    def from_pem(
        cls, pem: bytes, node_id: str, valid_from: datetime, passphrase: bytes | None = None
    ) -> SigningKey:
        try:
            private = serialization.load_pem_private_key(pem, password=passphrase or None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"cannot load private key: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise KeyFileError("private key is not Ed25519")
        return cls(node_id, private, valid_from)


def save_private_key(key: SigningKey, path: Path, passphrase: bytes | None = None) -> None:
    """Write the key as PKCS#8 PEM, created with mode 0600 so no other user can ever read it."""
    data = key.to_pem(passphrase)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def load_private_key(
    path: Path, node_id: str, valid_from: datetime, passphrase: bytes | None = None
) -> SigningKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc.strerror}") from exc
    return SigningKey.from_pem(data, node_id, valid_from, passphrase)
