"""Creating a node directory: config file, key file, migrated store and the key's record."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import Clock
from protocol.encoding import b64url_encode
from protocol.keys import SigningKey, save_private_key

from ..config import CONFIG_NAME, ConfigError, NodeConfig, load_config, render_config
from ..errors import InvalidInput
from ..store import peers as peer_store
from ..store.engine import (
    BACKUP_GUIDE,
    create_engine,
    holds_store,
    schema_exists,
    sqlite_file,
    store_name,
    upgrade,
)
from ..store.tables import OwnKey

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


class SetupError(InvalidInput):
    """The node directory cannot be created as asked; the message says why."""

    code = "setup_refused"


async def init_node(
    directory: Path,
    *,
    node_id: str,
    agency_name: str,
    agency_kind: str,
    base_url: str,
    host: str,
    port: int,
    store_url: str,
    clock: Clock,
    store_schema: str = "",
    key_passphrase_file: str = "",
) -> NodeConfig:
    """Create ``directory`` with config, a fresh Ed25519 key (0600) and a migrated database.

    All or nothing: a store that already holds a node (its config and key lost, say) is
    refused, and on any failure every file and directory this made is removed again.
    ``key_passphrase_file``: encrypt the key with the passphrase in that file (it becomes
    ``keys.passphrase_file``; a relative path is relative to ``directory``).
    """
    config_path = directory / CONFIG_NAME
    if config_path.exists():
        raise SetupError(f"{config_path} already exists; not overwriting a node")
    new_dirs = [d for d in (directory, *directory.parents) if not d.exists()]
    directory.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    try:
        text = render_config(
            node_id=node_id,
            agency_name=agency_name,
            agency_kind=agency_kind,
            base_url=base_url,
            host=host,
            port=port,
            store_url=store_url,
            store_schema=store_schema,
            key_passphrase_file=key_passphrase_file,
        )
        config_path.write_text(text, encoding="utf-8")
        made.append(config_path)
        try:
            config = load_config(directory)
        except ConfigError as exc:  # name the option given to init, not the file it wrote
            raise SetupError(_as_option(str(exc))) from None
        if config.key_path.exists():
            raise SetupError(f"{config.key_path} already exists; not overwriting a key")
        engine = create_engine(config.database_url, config.store.schema_name, create=True)
        try:
            await require_a_new_store(engine, config)
            store_file = sqlite_file(config.database_url)
            if store_file is not None:
                made += [
                    f
                    for f in (store_file, *(Path(f"{store_file}{s}") for s in SQLITE_SIDE_FILES))
                    if not f.exists()
                ]
            key = SigningKey.generate(node_id, clock.now())
            # one transaction: a failed init leaves no half-made store behind (PostgreSQL)
            async with engine.begin() as conn:
                await conn.run_sync(upgrade)
                save_private_key(key, config.key_path, config.key_passphrase())
                made.append(config.key_path)
                await peer_store.insert_own_key(
                    conn,
                    OwnKey(
                        key_id=key.key_id,
                        public=b64url_encode(key.public_raw),
                        valid_from=key.valid_from,
                        file=config.keys.file,
                    ),
                )
        finally:
            await engine.dispose()
    except BaseException:
        for path in made:
            path.unlink(missing_ok=True)
        for made_dir in new_dirs:  # the deepest first; stop at one that is not empty
            try:
                made_dir.rmdir()
            except OSError:
                break
        raise
    return config


# the settings init writes from its options
_OPTIONS = {
    "node.id": "--id",
    "node.agency_name": "--agency-name",
    "node.base_url": "--base-url",
    "server.host": "--host",
    "server.port": "--port",
    "store.url": "--store-url",
    "store.schema_name": "--store-schema",
}


def _as_option(message: str) -> str:
    """``load_config``'s "<path>: setting node.base_url: ..." as "--base-url: ..."."""
    _, found, rest = message.partition(": setting ")
    setting, _, why = rest.partition(": ")
    option = _OPTIONS.get(setting) if found else None
    return f"{option}: {why}" if option else message


async def require_a_new_store(engine: AsyncEngine, config: NodeConfig) -> None:
    """``SetupError`` unless the store is new: an SQLite file that exists (whatever it holds)
    or a PostgreSQL schema with barnplan's tables may be a node's, and init never writes over
    one; a PostgreSQL schema that does not exist is named, not left to fail half-way."""
    advice = f"if it is this node's, restore barnplan.toml and the key file ({BACKUP_GUIDE})"
    store_file = sqlite_file(config.database_url)
    if store_file is not None:
        if store_file.exists() or store_file.is_symlink():
            raise SetupError(
                f"the store {store_file} already exists; not overwriting it: {advice}, "
                "or move it away to make a new node"
            )
        return
    name = store_name(config.database_url, config.store.schema_name)
    if not await schema_exists(engine):
        raise SetupError(
            f"the store {name} has no such schema: create it first (CREATE SCHEMA "
            f'"{config.store.schema_name}"), or leave --store-schema out'
        )
    if await holds_store(engine):
        raise SetupError(
            f"the store {name} already holds barnplan's tables; not overwriting them: {advice}, "
            "or use another database or schema (--store-schema) to make a new node"
        )
