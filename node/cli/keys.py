"""``barnplan keys``: list and rotate this node's own signing keys."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any

import click

from protocol.clock import SystemClock
from protocol.encoding import b64url_decode
from protocol.keys import fingerprint

from ..config import NodeConfig, load_config
from ..services.keys import KeyRotationError, rotate_key
from ..store import peers as peer_store
from ..store.engine import create_engine
from .main import echo_json, fail, node_dir_option, run_async


def user_errors(*errors: type[Exception]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Turn ``errors`` (besides the ones ``run_async`` knows) into one line and exit 1."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except errors as exc:
                fail(str(exc))

        return wrapper

    return decorate


def node_is_running(config: NodeConfig) -> bool:
    """Does this node's own server answer on its configured address right now?"""
    host = config.server.host if config.server.host not in ("0.0.0.0", "::") else "127.0.0.1"
    url = f"http://{host}:{config.server.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(json.loads(resp.read()).get("node") == config.node.id)
    except (OSError, ValueError):
        return False


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


@keys.command("rotate")
@node_dir_option
@user_errors(KeyRotationError)
@run_async
async def rotate(directory: Path) -> None:
    """Make a new signing key current; the old one stays listed (valid until now).

    Writes node-<time>.key (mode 0600, same passphrase variable), points keys.file in
    barnplan.toml at it and retires the old key in the store. Stop the node first, or restart it
    right after: a running node signs with the key it loaded at start."""
    config = load_config(directory)
    running = node_is_running(config)
    rotation = await rotate_key(config, SystemClock())
    when = rotation.at.strftime("%Y-%m-%dT%H:%M:%SZ")
    click.echo(f"rotated the signing key of {config.node.id} at {when}")
    click.echo(f"old key {rotation.old_key_id}: SHA-256 {rotation.old_fingerprint}")
    click.echo(f"         retired: valid until {when}, still listed so old signatures verify")
    click.echo(f"new key {rotation.new_key_id}: SHA-256 {rotation.new_fingerprint}")
    click.echo(f"         in {rotation.new_file} (keys.file = {rotation.config_value!r})")
    if running:
        click.echo(
            "warning: the node is running and still signs with the old key; restart it now "
            "(e.g. systemctl restart barnplan)"
        )
    else:
        click.echo(f"next: start the node (barnplan serve --dir {directory})")
    click.echo("peers must fetch the new node document before they accept messages signed")
    click.echo("with the new key. On each peer, after comparing the new fingerprint out of band:")
    click.echo(f"  barnplan peers add {config.node.base_url} --yes")
    click.echo("In a federation with a signed member list, ask its authorities to list the new")
    click.echo("fingerprint (keep the old one listed) and each member to run 'barnplan federation")
    click.echo("apply'. Keep the old key file offline or destroy it; it is no longer needed.")
