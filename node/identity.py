"""This node's identity: its signing key, its retired keys and its self-signed node document."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from protocol.documents import build_node_document
from protocol.encoding import b64url_decode
from protocol.errors import KeyFileError
from protocol.keys import PublicKey, SigningKey, load_private_key

from .config import NodeConfig
from .errors import InvalidInput
from .store.engine import RESTORE, store_name
from .store.tables import OwnKey


class IdentityError(InvalidInput):
    """The key file and the store do not make one node; the message says which and what to do."""


@dataclass
class Identity:
    """Who this node is on the wire; built once at start-up from config, key file and store."""

    config: NodeConfig
    key: SigningKey
    old_keys: list[PublicKey] = field(default_factory=list)
    # the key change document that introduced the current key (SPEC.md §4.6), while it still
    # describes this node; None when the node signs a fresh document for every fetch
    published: dict[str, Any] | None = None

    @property
    def node_id(self) -> str:
        return self.config.node.id

    def public_keys(self) -> list[PublicKey]:
        return [self.key.public(), *self.old_keys]

    def node_document(self, issued_at: datetime) -> dict[str, Any]:
        """The document to publish: the one that introduced the current key while it still
        says what a fresh one would (signed by the key before, it lets a peer that missed the
        announcement carry its trust over, §4.6), else a fresh one signed at ``issued_at``."""
        if self.published is not None:
            return self.published
        return self.fresh_document(issued_at)

    def fresh_document(self, issued_at: datetime) -> dict[str, Any]:
        return build_node_document(
            node_id=self.node_id,
            agency_name=self.config.node.agency_name,
            agency_kind=self.config.node.agency_kind.value,
            base_url=self.config.node.base_url,
            key=self.key,
            old_keys=self.old_keys,
            issued_at=issued_at,
        )


def load_identity(
    config: NodeConfig,
    keys: list[OwnKey],
    key_path: Path | None = None,
    introduction: str | None = None,
) -> Identity:
    """Load the current private key (the row without ``valid_until``) and list retired ones.

    ``key_path`` overrides ``keys.file`` (a running node reloading after ``keys rotate`` reads
    the file the store names, which the command also wrote into the config it read at start).
    ``introduction`` is the key change document of the current key, to publish (SPEC.md §4.6)."""
    current = [k for k in keys if k.valid_until is None]
    if len(current) != 1:
        store = store_name(config.database_url, config.store.schema_name)
        found = "no current key" if not current else f"{len(current)} current keys"
        raise IdentityError(
            f"the store {store} holds {found} of this node (a node's store holds exactly "
            f"one): {RESTORE}"
        )
    row = current[0]
    path = key_path or config.key_path
    key = load_signing_key(config, path, row.valid_from)
    if key.key_id != row.key_id:
        raise IdentityError(
            f"key file {path} holds {key.key_id}, but the store expects {row.key_id}"
        )
    old = [
        PublicKey(k.key_id, b64url_decode(k.public), k.valid_from, k.valid_until)
        for k in keys
        if k.valid_until is not None
    ]
    identity = Identity(config=config, key=key, old_keys=old)
    identity.published = _still_describes(identity, introduction)
    return identity


ENCRYPTED_PEM = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


def key_is_encrypted(path: Path) -> bool:
    try:
        return path.read_bytes().lstrip().startswith(ENCRYPTED_PEM)
    except OSError:
        return False  # load_private_key says why it cannot be read


def load_signing_key(config: NodeConfig, path: Path, valid_from: datetime) -> SigningKey:
    """The key in ``path``, decrypted with the configured passphrase; an ``IdentityError``
    naming the setting to fix when the key and the settings disagree (an encrypted key and no
    passphrase, a wrong passphrase, a passphrase for a key that is not encrypted)."""
    passphrase = config.key_passphrase()
    encrypted = key_is_encrypted(path)
    source = "keys.passphrase_file" if config.keys.passphrase_file else "keys.passphrase_env"
    if encrypted and passphrase is None:
        raise IdentityError(
            f"key file {path} is encrypted: set keys.passphrase_file (or keys.passphrase_env) "
            "in barnplan.toml to its passphrase"
        )
    if not encrypted and passphrase is not None and path.exists():
        raise IdentityError(
            f"key file {path} is not encrypted, but {source} is set: run 'barnplan keys "
            f"encrypt' to encrypt it with that passphrase, or clear {source}"
        )
    if not path.exists():
        raise IdentityError(
            f"the key file {path} is missing (keys.file in barnplan.toml): {RESTORE}, or "
            "correct keys.file if it was moved"
        )
    try:
        return load_private_key(path, config.node.id, valid_from, passphrase)
    except KeyFileError as exc:
        if encrypted:
            raise IdentityError(
                f"cannot decrypt key file {path} with the passphrase from {source}: is it "
                "the passphrase the key was encrypted with?"
            ) from None
        raise IdentityError(str(exc)) from None


def key_file(config: NodeConfig, row: OwnKey) -> Path:
    """Where the key of ``row`` is: its ``file`` as ``keys.file`` would resolve it."""
    path = Path(row.file)
    return path if path.is_absolute() else config.directory / path


def _still_describes(identity: Identity, introduction: str | None) -> dict[str, Any] | None:
    """``introduction`` if it says what a fresh document would (same keys, name, kind, URL);
    None once the config changed since, so the node then signs fresh documents."""
    if introduction is None:
        return None
    document: dict[str, Any] = json.loads(introduction)
    fresh = identity.fresh_document(identity.key.valid_from)
    same = ("id", "agency_name", "agency_kind", "base_url", "keys", "protocol_versions")
    return document if all(document.get(k) == fresh[k] for k in same) else None
