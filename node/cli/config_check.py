"""``barnplan config check``: is this node's configuration usable, without starting anything?

Why: an operator editing ``barnplan.toml`` (a new store URL, TLS files, an encrypted key) wants
to know before a restart whether the node will start, and which setting to fix if not. Each
check names the setting; nothing is opened but files, and no store is contacted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..config import ConfigError, NodeConfig, load_config
from ..store.engine import StoreError, parse_url, sqlite_file
from ..tls import client_ssl
from .main import echo_json, node_dir_option


def problems_of(config: NodeConfig) -> list[str]:
    """One line per unusable setting (an empty list: the configuration is usable)."""
    from protocol.errors import ProtocolError
    from protocol.keys import load_private_key

    found: list[str] = []
    try:
        parsed = parse_url(config.database_url)  # reads store.password_file too
        if parsed.get_backend_name() not in ("sqlite", "postgresql"):
            found.append(f"store.url: {parsed.drivername!r} is not sqlite or postgresql")
        store_file = sqlite_file(config.database_url)
        if store_file is not None and not store_file.exists():
            found.append(f"store.url: the SQLite store {store_file} does not exist")
    except (StoreError, ConfigError) as exc:
        found.append(str(exc))
    try:
        client_ssl(config)
    except ConfigError as exc:
        found.append(str(exc))
    if not config.key_path.is_file():
        found.append(f"keys.file: {config.key_path} does not exist")
    else:
        try:
            passphrase = config.key_passphrase()
            # the key's validity start does not matter for whether it can be read
            from datetime import UTC, datetime

            load_private_key(config.key_path, config.node.id, datetime.now(UTC), passphrase)
        except ConfigError as exc:
            found.append(str(exc))
        except (ProtocolError, OSError, ValueError) as exc:
            found.append(f"keys.file: cannot read {config.key_path}: {exc}")
    return found


@click.group("config")
def config() -> None:
    """This node's configuration file (barnplan.toml)."""


@config.command("check")
@node_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def check(directory: Path, as_json: bool) -> None:
    """Validate barnplan.toml and the files it names (key, TLS, SQLite store) without starting
    anything or contacting the store. Exit 0 if usable, 1 naming each setting to fix."""
    try:
        loaded = load_config(directory)
        found = problems_of(loaded)
    except ConfigError as exc:
        found = [str(exc)]
    if as_json:
        echo_json({"ok": not found, "problems": found})
    else:
        for problem in found:
            click.echo(f"error: {problem}", err=True)
        if not found:
            click.echo(f"{directory / 'barnplan.toml'}: OK")
    if found:
        sys.exit(1)
