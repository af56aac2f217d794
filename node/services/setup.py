"""Creating a node directory: config file, key file, migrated store and the key's record."""

from __future__ import annotations

from pathlib import Path

from protocol.clock import Clock
from protocol.encoding import b64url_encode
from protocol.keys import SigningKey, save_private_key

from ..config import CONFIG_NAME, NodeConfig, load_config, render_config
from ..store import peers as peer_store
from ..store.engine import create_engine, migrate
from ..store.tables import OwnKey


class SetupError(Exception):
    """The node directory cannot be created as asked; the message says why."""


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
) -> NodeConfig:
    """Create ``directory`` with config, a fresh Ed25519 key (0600) and a migrated database."""
    if (directory / CONFIG_NAME).exists():
        raise SetupError(f"{directory / CONFIG_NAME} already exists; not overwriting a node")
    directory.mkdir(parents=True, exist_ok=True)
    text = render_config(
        node_id=node_id,
        agency_name=agency_name,
        agency_kind=agency_kind,
        base_url=base_url,
        host=host,
        port=port,
        store_url=store_url,
        store_schema=store_schema,
    )
    config_path = directory / CONFIG_NAME
    config_path.write_text(text, encoding="utf-8")
    created_key: Path | None = None
    try:
        config = load_config(directory)
        if config.key_path.exists():
            raise SetupError(f"{config.key_path} already exists; not overwriting a key")
        key = SigningKey.generate(node_id, clock.now())
        engine = create_engine(config.database_url, config.store.schema_name)
        try:
            await migrate(engine)
            save_private_key(key, config.key_path, config.key_passphrase())
            created_key = config.key_path
            await peer_store.add_own_key(
                engine,
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
        config_path.unlink(missing_ok=True)
        if created_key is not None:
            created_key.unlink(missing_ok=True)
        raise
    return config
