"""``barnplan peers``: add and list the nodes this node trusts."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import click

from protocol.clock import SystemClock

from ..config import load_config
from ..services.peers import PeerError, fetch_peer, trust_peer
from ..store import peers as peer_store
from ..store.engine import create_engine
from ..tls import client_ssl
from .main import answered, echo_json, node_dir_option, run_async


@click.group()
def peers() -> None:
    """Trusted peer nodes."""


@peers.command("add")
@node_dir_option
@click.argument("url")
@click.option("--yes", "-y", is_flag=True, help="Trust without asking (for scripts).")
@run_async
async def add(directory: Path, url: str, yes: bool) -> None:
    """Fetch URL's node document, show its key fingerprint and trust it after confirmation."""
    config = load_config(directory)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10),
        connector=aiohttp.TCPConnector(ssl=client_ssl(config)),
    ) as session:
        fetched = await fetch_peer(session, url)
    doc = fetched.document
    if doc.id == config.node.id:
        raise PeerError(f"that is this node's own document ({doc.id})")
    click.echo(f"node:        {doc.id}")
    click.echo(f"agency:      {doc.agency_name} ({doc.agency_kind.value})")
    click.echo(f"base URL:    {doc.base_url}")
    for entry, fp in zip(doc.keys, fetched.fingerprints, strict=True):
        # after a rotation the document lists the new key and the retired ones: say which is
        # which, so the operator compares the right fingerprint
        state = f"retired, valid until {entry.valid_until}" if entry.valid_until else "current"
        click.echo(f"key {entry.kid} ({state}): SHA-256 {fp}")
    question = (
        "Trust this node? Compare the current key's fingerprint out of band first (its operator "
        "shows it with 'barnplan keys list')"
    )
    if not yes and not answered(lambda: click.confirm(question), "compare it, then use --yes"):
        raise PeerError("not trusted; nothing recorded")
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        await trust_peer(engine, fetched, config.node.id, SystemClock().now())
    finally:
        await engine.dispose()
    click.echo(f"trusted {doc.id}")


@peers.command("list")
@node_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@run_async
async def list_(directory: Path, as_json: bool) -> None:
    """List trusted peers."""
    config = load_config(directory)
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        rows = await peer_store.list_peers(engine)
    finally:
        await engine.dispose()
    if as_json:
        echo_json(
            [
                {
                    "node_id": p.node_id,
                    "agency_name": p.agency_name,
                    "agency_kind": p.agency_kind,
                    "base_url": p.base_url,
                    "fingerprint": p.fingerprint,
                    "added_at": p.added_at.isoformat(),
                    "last_contact_at": p.last_contact_at.isoformat() if p.last_contact_at else None,
                }
                for p in rows
            ]
        )
        return
    if not rows:
        click.echo("no peers yet: barnplan peers add URL")
    for p in rows:
        click.echo(f"{p.node_id:40} {p.agency_kind:18} {p.base_url}  {p.fingerprint[:16]}")


@peers.command("remove")
@node_dir_option
@click.argument("node_id")
@run_async
async def remove(directory: Path, node_id: str) -> None:
    """Stop trusting a peer: its messages are refused (unknown_sender) from now on."""
    config = load_config(directory)
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        removed = await peer_store.delete_peer(engine, node_id)
    finally:
        await engine.dispose()
    if not removed:
        raise PeerError(f"{node_id} is not a peer of this node")
    click.echo(f"removed {node_id}; a running node stops trusting it within 10 seconds")
