"""``barnplan keys``: list, rotate and withdraw this node's own signing keys."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from protocol.clock import SystemClock
from protocol.encoding import b64url_decode
from protocol.keys import fingerprint

from ..config import NodeConfig, load_config
from ..services.keys import Rotation, rotate_key, withdraw_key
from ..store import peers as peer_store
from ..store.engine import create_engine
from ..store.revocations import outbox_rows
from .main import echo_json, fail, node_dir_option, run_async
from .opened import opened_node


def user_errors(*errors: type[Exception]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn ``errors`` (for a command without ``run_async``) into one line and exit 1."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except errors as exc:
                fail(str(exc))

        return wrapper

    return decorate


@click.group()
def keys() -> None:
    """This node's own signing keys."""


@keys.command("list")
@node_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_async
async def list_(directory: Path, as_json: bool) -> None:
    """List the current key and the retired keys the node document still lists."""
    config = load_config(directory)
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        rows = await peer_store.own_keys(engine)
    finally:
        await engine.dispose()
    data = [
        {
            "key_id": r.key_id,
            "fingerprint": fingerprint(b64url_decode(r.public)),
            "valid_from": r.valid_from.isoformat(),
            "valid_until": r.valid_until.isoformat() if r.valid_until else None,
            "file": r.file,
            "current": r.valid_until is None,
        }
        for r in reversed(rows)
    ]
    if as_json:
        echo_json(data)
        return
    for d in data:
        state = "current" if d["current"] else f"retired {d['valid_until']}"
        click.echo(f"{d['key_id']:50} {state:35} SHA-256 {d['fingerprint']}")


@keys.command("encrypt")
@node_dir_option
@run_async
async def encrypt(directory: Path) -> None:
    """Encrypt the node's private key file with the passphrase in keys.passphrase_file.

    Set keys.passphrase_file (a file only the node's user can read, holding the passphrase) in
    barnplan.toml first. The key file is rewritten atomically; a running node keeps working,
    and its next start reads the encrypted key. Back up the passphrase apart from the key."""
    from ..services.key_encryption import encrypt_node_key

    path, now = encrypt_node_key(load_config(directory))
    if now:
        click.echo(f"encrypted {path} with the passphrase from the configuration")
    else:
        click.echo(f"{path} is already encrypted with that passphrase; nothing changed")


@keys.command("rotate")
@node_dir_option
@run_async
async def rotate(directory: Path) -> None:
    """Make a new signing key current; the old one stays listed (valid until now).

    Writes node-<time>.key (mode 0600, same passphrase variable), points keys.file in
    barnplan.toml at it, retires the old key in the store and announces the new node document
    to every peer (keys.update, retried until each acknowledges). A running node signs with
    the new key within a second."""
    config = load_config(directory)
    rotation = await rotate_key(config, SystemClock())
    when = rotation.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"rotated the signing key of {config.node.id} at {when}")
    click.echo(f"old key {rotation.old_key_id}: SHA-256 {rotation.old_fingerprint}")
    click.echo(f"         retired: valid until {when}, still listed so old signatures verify")
    click.echo(f"new key {rotation.new_key_id}: SHA-256 {rotation.new_fingerprint}")
    click.echo(f"         in {rotation.new_file} (keys.file = {rotation.config_value!r})")
    await announce(directory, config, rotation)
    click.echo("Keep the old key file offline or destroy it; it is no longer needed.")


@keys.command("withdraw")
@node_dir_option
@click.argument("key_id")
@run_async
async def withdraw(directory: Path, key_id: str) -> None:
    """Withdraw KEY_ID, the current key (it leaked, or may have): it is valid until now.

    Everything it signed before stays verifiable; anything signed with it from now on is
    refused by every peer that has taken the announcement. A new key becomes current at once
    (as with rotate), and the new node document, signed by KEY_ID in its last valid second,
    goes to every peer now and is retried until each acknowledges (barnplan outbox)."""
    config = load_config(directory)
    rotation = await withdraw_key(config, SystemClock(), key_id)
    when = rotation.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"withdrew {rotation.old_key_id} of {config.node.id} at {when}")
    click.echo(f"         SHA-256 {rotation.old_fingerprint}: valid until {when}; peers refuse")
    click.echo("         what it signs from then on, and keep verifying what it signed before")
    click.echo(f"new key {rotation.new_key_id}: SHA-256 {rotation.new_fingerprint}")
    click.echo(f"         in {rotation.new_file} (keys.file = {rotation.config_value!r})")
    await announce(directory, config, rotation)
    click.echo("Now destroy the withdrawn key's file and every copy of it. Compare the new")
    click.echo("fingerprint with each peer's operator (their 'barnplan peers list'); a peer whose")
    click.echo("announcement stays pending or refused re-adds this node after comparing it:")
    click.echo(f"  barnplan peers add {config.node.base_url} --yes")


async def announce(directory: Path, config: NodeConfig, rotation: Rotation) -> None:
    """Deliver the key change's announcements now and say how many peers took them."""
    if not rotation.notified:
        click.echo("no peers to announce the new key to")
        return
    async with opened_node(directory) as node:
        await node.outbox.drain()
        async with node.engine.connect() as conn:
            pending = {r.peer for r in await outbox_rows(conn) if r.message_type == "keys.update"}
    took = [p for p in rotation.notified if p not in pending]
    click.echo(
        f"announced to {len(rotation.notified)} peers (keys.update): {len(took)} acknowledged "
        "now; the node retries the rest until they do (barnplan outbox)"
    )
    for peer in sorted(pending & set(rotation.notified)):
        click.echo(f"  pending: {peer}")
