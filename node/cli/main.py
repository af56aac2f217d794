"""``barnplan``: set up, run and operate a node. Every command has ``--help``.

This module imports only click and a few small protocol modules: each command imports what it
uses when it runs, so ``barnplan serve`` (a returning node, which answers nothing until it
listens) pays for the server's imports alone, not for every other command's.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import json
import sys
from collections.abc import Callable, Coroutine, Iterator
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from protocol.clock import SystemClock
from protocol.codes import AgencyKind
from protocol.errors import ProtocolError

from ..errors import NodeError

P = ParamSpec("P")
T = TypeVar("T")


# The errors a command reports as one line on stderr rather than a traceback: the node's own
# (one tree, node/errors.py), the protocol library's (a key file, a signed document) and the
# operating system's (a path that cannot be read or written).
USER_ERRORS: tuple[type[Exception], ...] = (NodeError, ProtocolError, OSError)
# The exit status of a command stopped by a user error. The one table of exit codes besides
# ``log verify``'s own (1 tampered, 2 could not run): every branch of the tree is 1 today, as
# scripts and cron test "non-zero"; a branch that needs its own status gets it here.
USER_ERROR_EXIT = 1


def user_errors() -> tuple[type[Exception], ...]:
    """``USER_ERRORS`` (a function for the callers that name it in an ``except``)."""
    return USER_ERRORS


def exit_code(exc: BaseException) -> int:
    """The exit status for a user error (see ``USER_ERROR_EXIT``)."""
    return USER_ERROR_EXIT


def describe(exc: Exception) -> str:
    """One line for a user error; an input error lists the fields to fix."""
    if isinstance(exc, NodeError) and exc.fields:
        fields = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
        return f"{exc.detail} ({fields})"
    return str(exc)


def fail(message: str, status: int = USER_ERROR_EXIT) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


def answered(ask: Callable[[], T], instead: str) -> T:
    """Ask a question on the terminal; with no terminal to answer (stdin closed or at its end,
    as under cron), say what to pass instead, rather than click's bare "Aborted!"."""
    try:
        return ask()
    except click.Abort:
        fail(f"no answer on standard input: {instead}")
        raise AssertionError("unreachable") from None


def run_async(func: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """Run an async command body; turn known errors into one line on stderr and exit 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(func(*args, **kwargs))
        except USER_ERRORS as exc:
            fail(describe(exc), exit_code(exc))
            raise AssertionError("unreachable") from exc

    return wrapper


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Import the server with the cyclic garbage collector off, then freeze what was built.

    Why: importing the serve path creates some hundreds of thousands of long-lived objects
    (classes, functions, SQLAlchemy and pydantic metadata), and the collector walked them
    again and again while they were being made: about a sixth of the import time, which a
    returning node spends before it can refuse a revoked consent. ``gc.freeze`` then moves it
    all to the permanent generation, so the running server never walks it again either (its
    first full collection would have cost about 0.15 s). The price: the cyclic garbage the
    imports left, about 2,000 small objects, is kept for the life of the process.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


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


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when one of them is looked up.

    Why: every subcommand module pulls in what it needs (rich, the demo, FHIR export, the
    federation tools ...), and importing all of them cost ``barnplan serve`` about a tenth of
    its start-up, which a returning node spends before it can refuse a revoked consent. Click
    looks a command up only to run it or to show help, so ``barnplan serve`` imports nothing
    of the others, and ``barnplan --help`` still imports and lists every one with its help.
    """

    def __init__(self, *args: Any, lazy_commands: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # name -> "module:attribute", the module relative to this package
        self.lazy_commands = lazy_commands

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Refuse an argument that is not UTF-8 text before any command sees it: Python hands
        undecodable bytes (a Latin-1 terminal's "ö") over as lone surrogates, which fail only
        when written out, after a command may have created half of what it makes."""
        for arg in args:
            try:
                arg.encode("utf-8")
            except UnicodeEncodeError:
                shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
                raise click.UsageError(
                    f"{shown!r} is not UTF-8 text: set the terminal to UTF-8 "
                    "(e.g. LANG=sv_SE.UTF-8) and type it again"
                ) from None
        return super().parse_args(ctx, args)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_commands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = target.split(":")
        command = getattr(importlib.import_module(module_name, __package__), attribute)
        if not isinstance(command, click.Command) or command.name != cmd_name:
            raise TypeError(f"{target} is not the click command {cmd_name!r}")
        return command


# The commands that live in modules of their own; main.py's own (init, serve, migrate) are
# registered by their decorators below.
LAZY_COMMANDS = {
    "log": ".log:log",
    "peers": ".peers:peers",
    "demo": ".demo:demo",
    "plan": ".plan_show:plan",  # barnplan plan show
    "users": ".records:users",
    "children": ".records:children",
    "plans": ".records:plans",
    "invitations": ".records:invitations",
    "fragments": ".records:fragments",
    "consent": ".records:consent",
    "outbox": ".records:outbox",
    "keys": ".keys:keys",
    "federation": ".federation:federation",
    "status": ".status:status",
    "config": ".config_check:config",
}


@click.group(
    cls=LazyGroup,
    lazy_commands=LAZY_COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=lambda ctx, _param, value: show_version(ctx) if value else None,
    help="Show the release and the store schema revision it expects, and exit.",
)
def main() -> None:
    """barnplan: one shared child's plan, assembled from the agencies that hold the pieces."""


def show_version(ctx: click.Context) -> None:
    """``barnplan --version``: the release and the store schema revision, so an operator can
    tell what runs before and after an upgrade (the same as /healthz and /metrics show)."""
    from ..version import current_build

    click.echo(str(current_build()))
    ctx.exit()


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (tests swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def run() -> None:
    """The ``barnplan`` command (and ``python -m node``): a command's own output is stdout,
    so that ``--json`` can be piped to ``jq``; the process log of the node code it runs (an
    outbox delivery after ``consent revoke``, say) goes to stderr, warnings and errors only.
    ``serve`` sets up the server's JSON log on stdout itself."""
    import logging

    from ..logs import configure_logging

    configure_logging(_Stderr(), level=logging.WARNING)  # type: ignore[arg-type]
    main()


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
@click.option(
    "--encrypt-key",
    "passphrase_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Encrypt the node's private key with the passphrase in this file (mode 0600); it "
    "becomes keys.passphrase_file [default: an unencrypted key].",
)
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
    passphrase_file: Path | None,
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
        key_passphrase_file=str(passphrase_file.resolve()) if passphrase_file else "",
    )
    click.echo(f"created node {config.node.id} in {directory}")
    if passphrase_file is not None:
        click.echo(f"the key is encrypted with the passphrase in {passphrase_file.resolve()}")
    click.echo(f"next: barnplan serve --dir {directory}")


@main.command()
@node_dir_option
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Override server.port.")
def serve(directory: Path, port: int | None) -> None:
    """Run the node's HTTP server until interrupted."""
    with collector_paused():
        from ..config import load_config
        from ..server import run_server

    try:
        config = load_config(directory)
        if port is not None:
            config.server.port = port
        run_server(config)
    except USER_ERRORS as exc:
        fail(str(exc), exit_code(exc))


@main.command()
@node_dir_option
@run_async
async def migrate(directory: Path) -> None:
    """Bring the node's database to the current schema (safe to run repeatedly)."""
    from ..config import load_config
    from ..store.engine import create_engine, current_revision
    from ..store.engine import migrate as run_migrate

    config = load_config(directory)
    engine = create_engine(config.database_url, config.store.schema_name)
    try:
        await run_migrate(engine)
        click.echo(f"database at revision {await current_revision(engine)}")
    finally:
        await engine.dispose()
