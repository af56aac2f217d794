"""This node's identity: its signing key, its retired keys and its self-signed node document."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from protocol.documents import build_node_document
from protocol.encoding import b64url_decode
from protocol.keys import PublicKey, SigningKey, load_private_key

from .config import NodeConfig
from .store.engine import RESTORE, store_name
from .store.tables import OwnKey


class IdentityError(Exception):
    """The key file and the store do not make one node; the message says which and what to do."""


@dataclass
class Identity:
    """Who this node is on the wire; built once at start-up from config, key file and store."""

    config: NodeConfig
    key: SigningKey
    old_keys: list[PublicKey] = field(default_factory=list)

    @property
    def node_id(self) -> str:
        return self.config.node.id

    def public_keys(self) -> list[PublicKey]:
        return [self.key.public(), *self.old_keys]

    def node_document(self, issued_at: datetime) -> dict[str, Any]:
        return build_node_document(
            node_id=self.node_id,
            agency_name=self.config.node.agency_name,
            agency_kind=self.config.node.agency_kind.value,
            base_url=self.config.node.base_url,
            key=self.key,
            old_keys=self.old_keys,
            issued_at=issued_at,
        )


def load_identity(config: NodeConfig, keys: list[OwnKey]) -> Identity:
    """Load the current private key (the row without ``valid_until``) and list retired ones."""
    current = [k for k in keys if k.valid_until is None]
    if len(current) != 1:
        store = store_name(config.database_url, config.store.schema_name)
        found = "no current key" if not current else f"{len(current)} current keys"
        raise IdentityError(
            f"the store {store} holds {found} of this node (a node's store holds exactly "
            f"one): {RESTORE}"
        )
    row = current[0]
    key = load_private_key(config.key_path, config.node.id, row.valid_from, config.key_passphrase())
    if key.key_id != row.key_id:
        raise IdentityError(
            f"key file {config.key_path} holds {key.key_id}, but the store expects {row.key_id}"
        )
    old = [
        PublicKey(k.key_id, b64url_decode(k.public), k.valid_from, k.valid_until)
        for k in keys
        if k.valid_until is not None
    ]
    return Identity(config=config, key=key, old_keys=old)
