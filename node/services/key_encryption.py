"""Encrypting a node's private key at rest with the passphrase its configuration names.

``barnplan init --encrypt-key FILE`` makes an encrypted key from the start; this is the way for
a node made without one: set ``keys.passphrase_file`` (or ``keys.passphrase_env``), then
``barnplan keys encrypt`` rewrites the current key file encrypted (PKCS#8 with the best
encryption ``cryptography`` offers), atomically: the file is either the old one or the new one,
never half-written. A running node keeps the key it loaded; the next start reads the new file.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from protocol.errors import KeyFileError
from protocol.keys import load_private_key

from ..config import NodeConfig
from ..identity import IdentityError, key_is_encrypted, load_signing_key

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a key's validity is the store's; not needed here


def encrypt_node_key(config: NodeConfig) -> tuple[Path, bool]:
    """(the key file, whether it was encrypted now); False: it already was, with this
    passphrase. ``IdentityError``/``ConfigError`` say what to fix otherwise."""
    path = config.key_path
    passphrase = config.key_passphrase()
    if passphrase is None:
        raise IdentityError(
            "no passphrase to encrypt the key with: set keys.passphrase_file (a file, mode "
            "0600, holding the passphrase) in barnplan.toml first"
        )
    if key_is_encrypted(path):
        load_signing_key(config, path, EPOCH)  # refuses a different passphrase, saying so
        return path, False
    try:
        key = load_private_key(path, config.node.id, EPOCH, None)
    except KeyFileError as exc:
        raise IdentityError(str(exc)) from None
    _replace(path, key.to_pem(passphrase))
    return path, True


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` over ``path`` atomically (mode 0600, synced before the rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
