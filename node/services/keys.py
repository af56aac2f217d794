"""Changing this node's signing key: rotating it, or withdrawing it (after a leak).

Both make a new key file current and re-point the config; the outgoing key's row keeps its public
key and gets ``valid_until`` = the change time, so the node document keeps listing it (SPEC.md
§4.2) and objects signed with it before then still verify, while anything signed with it from
then on is refused. The new key is valid from that same second. The outgoing key signs, in its
last valid second, the document announcing the change (§4.6); in the transaction that changes the
rows, a ``keys.update`` with it is queued to every peer (the outbox delivers it until each one
acknowledges), and the row of the new key keeps it, to publish. Nothing is half-done: if the store
cannot be updated, the new key file and the config change are undone.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock
from protocol.encoding import b64url_encode
from protocol.key_updates import sign_key_change
from protocol.keys import SigningKey, fingerprint, save_private_key

from ..config import CONFIG_NAME, NodeConfig
from ..domain.json_object import JsonObject
from ..errors import InvalidInput
from ..identity import IdentityError, load_identity
from ..store import peers as peer_store
from ..store.engine import begin_write, create_engine, migrate
from ..store.tables import OwnKey
from .key_updates import enqueue_announcements

MAX_DOCUMENT_KEYS = 16  # protocol.models.NodeDocument.keys max_length

_SECTION = re.compile(r"^\s*\[\s*([A-Za-z0-9_.-]+)\s*\]\s*(#.*)?$")
_FILE_LINE = re.compile(r"^(\s*)file(\s*)=")


class KeyRotationError(InvalidInput):
    """The key cannot be rotated as asked; the message says why and what to do."""

    code = "key_rotation_refused"


@dataclass(frozen=True)
class Rotation:
    """A key change as made: when, the outgoing and the new key, and the peers announced to."""

    at: datetime
    old_key_id: str
    old_fingerprint: str
    new_key_id: str
    new_fingerprint: str
    new_file: Path
    config_value: str
    notified: tuple[str, ...] = ()


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

    A running node takes the new key up within a second (``Node.refresh_identity``); stopping
    it first is no longer needed."""
    return await change_key(config, clock)


async def withdraw_key(config: NodeConfig, clock: Clock, key_id: str) -> Rotation:
    """Withdraw ``key_id``, this node's current key (after it leaked): valid until now, a new key
    current from the same second, announced to every peer as a rotation is.

    Only the current key can be withdrawn: a retired key already ended, and nothing it signs
    from its end on verifies anywhere (signatures it made before stay verifiable)."""
    return await change_key(config, clock, withdraw=key_id)


async def change_key(config: NodeConfig, clock: Clock, withdraw: str | None = None) -> Rotation:
    """Make a new key current and end the current one at the same second (see the module)."""
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        await migrate(engine)  # as every command that opens the node: it keeps the document
        keys = await peer_store.own_keys(engine)
        try:
            identity = load_identity(config, keys)
        except IdentityError as exc:
            raise KeyRotationError(str(exc)) from None
        if withdraw is not None:
            check_withdrawable(withdraw, keys)
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
                "change it again a second later"
            )
        document = sign_key_change(
            node_id=config.node.id,
            agency_name=config.node.agency_name,
            agency_kind=config.node.agency_kind.value,
            base_url=config.node.base_url,
            new_key=new,
            outgoing=old,
            older_keys=identity.old_keys,
            at=at,
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
                notified = await _swap_rows(engine, old.key_id, new, at, value, document)
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
        notified=tuple(notified),
    )


def check_withdrawable(key_id: str, keys: list[OwnKey]) -> None:
    """Refuse, saying why, to withdraw anything but this node's current key."""
    row = next((k for k in keys if k.key_id == key_id), None)
    if row is None:
        raise KeyRotationError(f"{key_id} is not a key of this node (see barnplan keys list)")
    if row.valid_until is not None:
        raise KeyRotationError(
            f"{key_id} already ended at {row.valid_until.isoformat()}: peers refuse anything "
            "it signs from then on; only the current key can be withdrawn"
        )


async def _swap_rows(
    engine: AsyncEngine,
    old_id: str,
    new: SigningKey,
    at: datetime,
    file: str,
    document: JsonObject,
) -> list[str]:
    """End ``old_id``, add ``new`` with the document that introduces it, and queue that
    document to every peer: one transaction. Returns the peers it was queued to."""
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
                introduction=json.dumps(document, ensure_ascii=False),
            )
        )
        return await enqueue_announcements(conn, document, at)
