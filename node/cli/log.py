"""``barnplan log``: review, export and verify the exchange log (operators)."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from protocol.clock import parse_time

from ..services.audit import checkpoint_and_witness, verify_log
from ..services.log_archive import archive_log, verify_archive
from ..services.witness import declare_restore
from ..store.exchange_log import COLUMNS, LogFilter, entry_json, query_log
from .main import describe, echo_json, fail, node_dir_option, run_async, user_errors
from .opened import opened_node


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value if "T" in value else value + "T00:00:00Z")
    except ValueError:
        raise click.BadParameter(f"{value!r}: use YYYY-MM-DD or an RFC 3339 time") from None


# the parameters of ``log`` itself that shape its listing (and mean nothing to a subcommand)
LISTING_OPTIONS = (
    *("since", "until", "peer", "plan_id", "message_type", "outcome", "reason"),
    *("limit", "as_json", "as_csv", "follow"),
)


@click.group(invoke_without_command=True)
@node_dir_option
@click.option("--since", help="From this time (YYYY-MM-DD or RFC 3339).")
@click.option("--until", help="Before this time.")
@click.option("--peer", help="Only exchanges with this node.")
@click.option("--plan", "plan_id", help="Only this plan id.")
@click.option("--type", "message_type", help="Only this message type, e.g. fragments.request.")
@click.option("--outcome", help="released, withheld, refused, ok, failed, timeout, ...")
@click.option("--reason", help="Only this reason code.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 1_000_000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new entries (Ctrl-C stops).")
@click.pass_context
def log(
    ctx: click.Context,
    directory: Path,
    since: str | None,
    until: str | None,
    peer: str | None,
    plan_id: str | None,
    message_type: str | None,
    outcome: str | None,
    reason: str | None,
    limit: int,
    as_json: bool,
    as_csv: bool,
    follow: bool,
) -> None:
    """List exchange-log entries, newest first. Ids, types, outcomes and reasons only."""
    if ctx.invoked_subcommand is not None:
        given = [
            name
            for name in LISTING_OPTIONS
            if ctx.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT
        ]
        if given:
            option = next(p for p in ctx.command.params if p.name == given[0]).opts[0]
            raise click.UsageError(
                f"{option} filters the listing; it does not apply to 'log {ctx.invoked_subcommand}'"
            )
        if ctx.get_parameter_source("directory") is not click.core.ParameterSource.DEFAULT:
            ctx.obj = directory  # ``log --dir D verify`` means D, as ``log verify --dir D`` does
        return
    if as_json and as_csv:
        raise click.UsageError("choose one of --json and --csv")
    flt = LogFilter(
        since=_time(since),
        until=_time(until),
        peer=peer,
        plan_id=plan_id,
        message_type=message_type,
        outcome=outcome,
        reason=reason,
    )
    writer = csv.DictWriter(sys.stdout, fieldnames=list(COLUMNS)) if as_csv else None
    if writer is not None:
        writer.writeheader()

    def emit(row: dict[str, object]) -> None:
        entry = entry_json(row)
        if writer is not None:
            writer.writerow(entry)
        elif as_json:
            click.echo(json.dumps(entry, ensure_ascii=False))
        else:
            cats = f" [{entry['categories']}]" if entry["categories"] else ""
            why = f" ({entry['reason']})" if entry["reason"] else ""
            click.echo(
                f"{entry['seq']:>7} {entry['at']} {entry['direction']:3} "
                f"{entry['peer']:28} {entry['message_type']:20} "
                f"{entry['outcome']}{why}{cats}"
            )

    async def run() -> None:
        async with opened_node(directory) as node:
            rows = await query_log(node.engine, flt, limit)
            for row in rows:
                emit(row)
            last = max((int(r["seq"]) for r in rows), default=0)
            while follow:
                await asyncio.sleep(1.0)
                flt.after_seq = last
                new = await query_log(node.engine, flt, 1000, newest_first=False)
                for row in new:
                    emit(row)
                    last = int(row["seq"])
                sys.stdout.flush()

    with contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(run())
        except user_errors() as exc:  # as run_async does for the other commands
            fail(describe(exc))


def _directory(directory: Path) -> Path:
    """A subcommand's node directory: its own ``--dir`` if given, else the one given to ``log``
    (``barnplan log --dir D verify``), else the default."""
    ctx = click.get_current_context()
    if ctx.get_parameter_source("directory") is click.core.ParameterSource.DEFAULT:
        parent = ctx.parent.obj if ctx.parent is not None else None
        if isinstance(parent, Path):
            return parent
    return directory


# ``log verify`` exit codes: cron and alerting tell a tampered log from a store they cannot read
VERIFY_FAILED = 1
VERIFY_COULD_NOT_RUN = 2


@log.command("verify")
@node_dir_option
@click.option(
    "--archive",
    "archive",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Verify this archive file (made by 'barnplan log archive') on its own instead of the "
    "live log: its hash chain, the signed checkpoint of its last entry and its witnesses.",
)
@click.option("--json", "as_json", is_flag=True)
def verify(directory: Path, archive: Path | None, as_json: bool) -> None:
    """Check the hash chain, every checkpoint signature and every witness.

    After 'barnplan log archive' the live log is checked from the archive's last entry on (the
    boundary is recorded in the store and in the log); --archive FILE checks an archive file.
    Exit 0 when intact, 1 when verification FAILED (the log was changed), 2 when it could not
    run at all (store unreachable, config or key unreadable): an outage is not tampering.
    """
    if archive is not None:
        _verify_archive(directory, archive, as_json)
        return

    async def run() -> Any:
        async with opened_node(_directory(directory)) as node:
            return await verify_log(node)

    try:
        report = asyncio.run(run())
    except user_errors() as exc:
        click.echo(f"error: could not verify the exchange log: {describe(exc)}", err=True)
        sys.exit(VERIFY_COULD_NOT_RUN)
    if as_json:
        echo_json(report.to_json())
    else:
        archived = (
            f" (entries up to {report.archived_through} are archived)"
            if report.archived_through
            else ""
        )
        click.echo(
            f"entries {report.entries}, checkpoints {report.checkpoints}, "
            f"witnesses {report.witnesses}{archived}"
        )
        for p in report.problems:
            click.echo(f"FAIL at entry {p['seq']}: {p['kind']}: {p['detail']}")
        click.echo("log verified: OK" if report.ok else "log verification FAILED")
    if not report.ok:
        sys.exit(VERIFY_FAILED)


def _verify_archive(directory: Path, archive: Path, as_json: bool) -> None:
    async def run() -> Any:
        async with opened_node(_directory(directory)) as node:
            return await verify_archive(node, archive)

    try:
        check = asyncio.run(run())
    except user_errors() as exc:
        click.echo(f"error: could not verify the archive: {describe(exc)}", err=True)
        sys.exit(VERIFY_COULD_NOT_RUN)
    if as_json:
        echo_json(check.to_json())
    else:
        click.echo(
            f"archive of {check.node}: entries {check.first_seq} to {check.last_seq} "
            f"({check.entries}), checkpoints {check.checkpoints}, witnesses {check.witnesses}"
        )
        for note in check.notes:
            click.echo(f"note: {note}")
        for p in check.problems:
            click.echo(f"FAIL at entry {p['seq']}: {p['kind']}: {p['detail']}")
        click.echo("archive verified: OK" if check.ok else "archive verification FAILED")
    if not check.ok:
        sys.exit(VERIFY_FAILED)


@log.command("archive")
@node_dir_option
@click.option(
    "--before",
    required=True,
    help="Archive the entries logged before this day or time (YYYY-MM-DD, UTC midnight, or "
    "RFC 3339), up to the last checkpoint among them.",
)
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The archive file to write (JSON lines). It must not exist: an archive never "
    "overwrites a file (but the file an interrupted run left is checked and finished).",
)
@click.option(
    "--unwitnessed",
    is_flag=True,
    help="Accept a checkpoint only this node signed (a node without peers); by default the "
    "archive ends at a checkpoint a peer countersigned.",
)
@click.option("--json", "as_json", is_flag=True)
@run_async
async def archive(
    directory: Path, before: str, target: Path, unwitnessed: bool, as_json: bool
) -> None:
    """Move old exchange-log entries out of the store into an archive file.

    The archive ends at an entry covered by a signed checkpoint (witnessed by a peer), so it
    can be verified on its own ('barnplan log verify --archive FILE'); the live log keeps
    verifying from there ('barnplan log verify'). The file is written and flushed to disk
    before the entries are deleted, in one transaction; if the run is interrupted, run the
    same command again. Keep the file as the agency's retention decision says
    (deploy/OPERATIONS.md §9).
    """
    when = _time(before)
    assert when is not None
    async with opened_node(_directory(directory)) as node:
        report = await archive_log(node, when, target, unwitnessed=unwitnessed)
    if report is None:
        if as_json:
            echo_json({"archived": None})
        else:
            click.echo(f"nothing to archive: no entry in the live log was logged before {before}")
        return
    if as_json:
        echo_json({"archived": report.to_json()})
        return
    done = "finished the interrupted archive" if report.resumed else "archived"
    click.echo(
        f"{done}: entries {report.first_seq} to {report.last_seq} ({report.entries}) in "
        f"{report.path}, sha256 {report.sha256}"
    )
    click.echo(
        f"the archive ends at the checkpoint of entry {report.last_seq}, "
        f"witnessed by {report.witnesses} peer(s)"
    )
    if report.requested_through > report.last_seq:
        click.echo(
            f"entries {report.last_seq + 1} to {report.requested_through} were logged before "
            f"{before} but come after the last checkpoint among them: they stay in the live "
            "log until an archive after a later checkpoint"
        )


@log.command("checkpoint")
@node_dir_option
@run_async
async def checkpoint(directory: Path) -> None:
    """Sign the current log head now and ask every peer to witness it."""
    async with opened_node(_directory(directory)) as node:
        outcomes = await checkpoint_and_witness(node)
    for peer, outcome in sorted(outcomes.items()):
        click.echo(f"{peer:32} {outcome}")
    click.echo("checkpoint made")


@log.command("restored")
@node_dir_option
@click.option(
    "--note",
    default="",
    help="The operator's statement, sent to peers with the declaration (at most 200 "
    "characters; no personal data), e.g. 'restored from the backup of 2026-12-03'.",
)
@click.option(
    "--seq",
    type=click.IntRange(min=0),
    default=None,
    help="The log entry the backup ended with, if the node ran since the restore "
    "(default: the log's last entry now). 'barnplan log' lists the entries with their times.",
)
@click.option("--json", "as_json", is_flag=True)
@run_async
async def restored(directory: Path, note: str, seq: int | None, as_json: bool) -> None:
    """Declare that this node's store was restored from a backup (SPEC §7.8).

    Peers' witnesses refuse the checkpoints of a log that went back (a restore rewinds it)
    until it is declared. Run this once after restoring, before 'barnplan serve': it signs a
    restore declaration naming the entry the log was restored to (its last entry now, or
    --seq), records it in the exchange log, and sends it to every peer with a new checkpoint.
    Peers accept the history that continues from it and show the restore to their operators.
    """
    if len(note) > 200:
        raise click.BadParameter("at most 200 characters", param_hint="--note")
    async with opened_node(_directory(directory)) as node:
        declaration = await declare_restore(node, note or None, seq)
        outcomes = await checkpoint_and_witness(node)
    if as_json:
        echo_json({"declaration": declaration, "peers": outcomes})
        return
    click.echo(
        f"restore declared: the exchange log continues from entry {declaration['seq']} "
        f"(head {str(declaration['head'])[:16]}…)"
    )
    for peer, outcome in sorted(outcomes.items()):
        click.echo(f"{peer:32} {outcome}")
    if any(outcome != "ok" for outcome in outcomes.values()):
        click.echo(
            "peers not reached are sent the declaration with the next checkpoint "
            "('barnplan log checkpoint', or the running node's own schedule)"
        )
