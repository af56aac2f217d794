"""Rotating this node's signing key: new key file, old key retired but kept, config re-pointed.

The old key's row keeps its public key and gets ``valid_until`` = the rotation time, so the node
document keeps listing it (SPEC.md §4.2 key rotation) and objects signed with it before then still
verify. The new key is valid from that same second. Nothing is half-done: if the store cannot be
updated, the new key file and the config change are undone.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock
from protocol.encoding import b64url_encode
from protocol.keys import SigningKey, fingerprint, save_private_key

from ..config import CONFIG_NAME, NodeConfig
from ..identity import IdentityError, load_identity
from ..store import peers as peer_store
from ..store.engine import begin_write, create_engine
from ..store.tables import OwnKey

MAX_DOCUMENT_KEYS = 16  # protocol.models.NodeDocument.keys max_length

_SECTION = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")
_FILE_LINE = re.compile(r"^(\s*)file(\s*)=")


class KeyRotationError(Exception):
    """The key cannot be rotated as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Rotation:
    at: datetime
    old_key_id: str
    old_fingerprint: str
    new_key_id: str
    new_fingerprint: str
    new_file: Path
    config_value: str


def toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def set_keys_file(text: str, value: str) -> str:
    """``text`` with ``[keys] file`` set to ``value``; every other line stays byte for byte.

    Replaces the one ``file = ...`` line of the ``[keys]`` section, or adds it right after the
    section header, or appends a ``[keys]`` section when there is none."""
    line = f"file = {toml_string(value)}"
    lines = text.splitlines(keepends=True)
    section: str | None = None
    header: int | None = None
    for i, current in enumerate(lines):
        match = _SECTION.match(current)
        if match:
            section = match.group(1)
            if section == "keys":
                header = i
            continue
        found = _FILE_LINE.match(current)
        if section == "keys" and found:
            ending = "\n" if current.endswith("\n") else ""
            lines[i] = f"{found.group(1)}{line}{ending}"
            return "".join(lines)
    if header is not None:
        lines.insert(header + 1, line + "\n")
        return "".join(lines)
    sep = "" if not text or text.endswith("\n") else "\n"
    return f"{text}{sep}\n[keys]\n{line}\n"


def _write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, keeping its permission bits."""
    mode = path.stat().st_mode & 0o777
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_key_path(config: NodeConfig, at: datetime) -> tuple[Path, str]:
    """(where the new key file goes, the value ``keys.file`` gets): beside the current key."""
    name = f"node-{at:%Y%m%dT%H%M%SZ}.key"
    current = Path(config.keys.file)
    value = str(current.with_name(name)) if current.parent != Path(".") else name
    path = Path(value) if Path(value).is_absolute() else config.directory / value
    return path, value


async def rotate_key(config: NodeConfig, clock: Clock) -> Rotation:
    """Retire the current key (valid until now) and make a new one current, from the same second.

    Run it while the node is stopped (or restart the node right after): a running node keeps
    signing with the key it loaded, which stops being valid at the rotation time."""
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        keys = await peer_store.own_keys(engine)
        try:
            identity = load_identity(config, keys)
        except IdentityError as exc:
            raise KeyRotationError(str(exc)) from None
        if len(keys) + 1 > MAX_DOCUMENT_KEYS:
            raise KeyRotationError(
                f"the node document can list at most {MAX_DOCUMENT_KEYS} keys and this node "
                f"already has {len(keys)}; retired keys cannot be dropped by this command yet"
            )
        old = identity.key
        new = SigningKey.generate(config.node.id, clock.now())
        at = new.valid_from
        if at <= old.valid_from:
            raise KeyRotationError(
                f"the current key became valid at {old.valid_from.isoformat()}; "
                "rotate again a second later"
            )
        path, value = new_key_path(config, at)
        if path.exists():
            raise KeyRotationError(f"{path} already exists; not overwriting a key")
        config_path = config.directory / CONFIG_NAME
        original = config_path.read_text(encoding="utf-8")
        save_private_key(new, path, config.key_passphrase())
        try:
            _write_atomic(config_path, set_keys_file(original, value))
            try:
                await _swap_rows(engine, old.key_id, new, at, value)
            except BaseException:
                _write_atomic(config_path, original)
                raise
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    finally:
        await engine.dispose()
    return Rotation(
        at=at,
        old_key_id=old.key_id,
        old_fingerprint=fingerprint(old.public_raw),
        new_key_id=new.key_id,
        new_fingerprint=fingerprint(new.public_raw),
        new_file=path,
        config_value=value,
    )


async def _swap_rows(
    engine: AsyncEngine, old_id: str, new: SigningKey, at: datetime, file: str
) -> None:
    table = OwnKey.__table__  # type: ignore[attr-defined]
    async with begin_write(engine) as conn:
        result = await conn.execute(
            table.update()
            .where(table.c.key_id == old_id, table.c.valid_until.is_(None))
            .values(valid_until=at)
        )
        if result.rowcount != 1:
            raise KeyRotationError(
                f"{old_id} is no longer the current key (rotated concurrently?); nothing changed"
            )
        await conn.execute(
            table.insert().values(
                key_id=new.key_id,
                public=b64url_encode(new.public_raw),
                valid_from=at,
                valid_until=None,
                file=file,
            )
        )
