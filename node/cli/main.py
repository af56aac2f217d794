"""``barnplan``: set up, run and operate a node. Every command has ``--help``."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from protocol.clock import SystemClock
from protocol.codes import AgencyKind
from protocol.errors import ProtocolError

from ..config import ConfigError, load_config
from ..services.errors import ServiceError
from ..services.peers import PeerError
from ..services.setup import SetupError
from ..store.engine import StoreUrlError

P = ParamSpec("P")
T = TypeVar("T")

USER_ERRORS: tuple[type[Exception], ...] = (
    ServiceError,
    ConfigError,
    SetupError,
    PeerError,
    ProtocolError,
    StoreUrlError,
    OSError,
)


def describe(exc: Exception) -> str:
    """One line for a user error; a service error lists the fields to fix."""
    if isinstance(exc, ServiceError) and exc.errors:
        fields = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        return f"{exc.detail} ({fields})"
    return str(exc)


def fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def run_async(func: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async command body; turn known errors into one line on stderr and exit 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(func(*args, **kwargs))
        except USER_ERRORS as exc:
            fail(describe(exc))
            raise AssertionError("unreachable") from exc

    return wrapper


def node_dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--dir",
        "-d",
        "directory",
        type=click.Path(file_okay=False, path_type=Path),
        envvar="BARNPLAN_DIR",
        default=Path("."),
        show_default=True,
        help="Node directory (or set BARNPLAN_DIR).",
    )(func)


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="barnplan")
def main() -> None:
    """barnplan: one shared child's plan, assembled from the agencies that hold the pieces."""


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--id", "node_id", required=True, help="Node id, a DNS-style name.")
@click.option("--agency-name", required=True, help="The agency's name as peers see it.")
@click.option(
    "--kind",
    "agency_kind",
    type=click.Choice([k.value for k in AgencyKind]),
    required=True,
    help="Kind of agency.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8400, show_default=True, type=int, help="Port to listen on.")
@click.option("--base-url", default=None, help="URL peers use [default: http://HOST:PORT].")
@click.option("--store-url", default="", help="PostgreSQL URL [default: SQLite in DIRECTORY].")
@click.option("--store-schema", default="", help="PostgreSQL schema [default: search_path].")
@run_async
async def init(
    directory: Path,
    node_id: str,
    agency_name: str,
    agency_kind: str,
    host: str,
    port: int,
    base_url: str | None,
    store_url: str,
    store_schema: str,
) -> None:
    """Create a node directory: config, Ed25519 key (mode 0600) and a migrated database."""
    from ..services.setup import init_node

    config = await init_node(
        directory,
        node_id=node_id,
        agency_name=agency_name,
        agency_kind=agency_kind,
        base_url=base_url or f"http://{host}:{port}",
        host=host,
        port=port,
        store_url=store_url,
        store_schema=store_schema,
        clock=SystemClock(),
    )
    click.echo(f"created node {config.node.id} in {directory}")
    click.echo(f"next: barnplan serve --dir {directory}")


@main.command()
@node_dir_option
@click.option("--port", type=int, default=None, help="Override server.port.")
def serve(directory: Path, port: int | None) -> None:
    """Run the node's HTTP server until interrupted."""
    from ..server import run_server

    try:
        config = load_config(directory)
        if port is not None:
            config.server.port = port
        run_server(config)
    except USER_ERRORS as exc:
        fail(str(exc))


@main.command()
@node_dir_option
@run_async
async def migrate(directory: Path) -> None:
    """Bring the node's database to the current schema (safe to run repeatedly)."""
    from ..store.engine import create_engine, current_revision
    from ..store.engine import migrate as run_migrate

    config = load_config(directory)
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        await run_migrate(engine)
        click.echo(f"database at revision {await current_revision(engine)}")
    finally:
        await engine.dispose()


def _register() -> None:
    from . import demo, federation, keys, log, peers, records

    main.add_command(log.log)
    main.add_command(peers.peers)
    main.add_command(demo.demo)
    from .plan_show import plan as plan_group  # barnplan plan show

    main.add_command(plan_group)
    for group in (
        records.users,
        records.children,
        records.plans,
        records.invitations,
        records.fragments,
        records.consent,
        records.outbox,
        keys.keys,
        federation.federation,
    ):
        main.add_command(group)


_register()
