"""``barnplan status``: how this node is, for its operator and for monitoring checks."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import click

from protocol.clock import SystemClock

from ..config import load_config
from ..domain.byte_size import in_units
from ..services.status import NodeStatus, node_status, peer_checks
from .main import echo_json, node_dir_option, run_async

# exit codes: monitoring tells "the node has problems" from "status could not run"
STATUS_PROBLEMS = 1


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value is not None else "never"


def _size(n: int) -> str:
    value, unit = in_units(n)
    return f"{n} B" if unit == "B" else f"{value:.1f} {unit}"


def show(report: NodeStatus) -> None:
    click.echo(f"node      {report.node}")
    click.echo(f"release   barnplan {report.version}")
    click.echo(
        f"schema    store {report.schema_store or '?'}, this release {report.schema_expected}"
    )
    click.echo(f"store     {report.store}")
    for key in report.keys:
        until = f" until {_when(key.valid_until)}" if key.valid_until else ""
        click.echo(f"key       {key.state:8} {key.key_id}{until}")
        click.echo(f"          SHA-256 {key.fingerprint}")
    for peer in report.peers:
        state = "reachable" if peer.reachable else "UNREACHABLE"
        click.echo(
            f"peer      {peer.node_id:32} {state:11} last contact {_when(peer.last_contact_at)}"
        )
    oldest = f", oldest {_when(report.outbox_oldest)}" if report.outbox_oldest else ""
    click.echo(f"outbox    {report.outbox_pending} unacknowledged{oldest}")
    if report.last_checkpoint_seq is None:
        click.echo("log       no checkpoint yet")
    else:
        click.echo(
            f"log       checkpoint at entry {report.last_checkpoint_seq} "
            f"({_when(report.last_checkpoint_at)}), "
            f"{report.last_checkpoint_witnesses} witness(es)"
        )
    if report.log_growth:  # the log was read (a store too old to read shows none)
        span = (
            f", entries {report.log_first_seq} to {report.log_last_seq}"
            if report.log_last_seq is not None
            else ""
        )
        click.echo(
            f"log size  {report.log_entries} entries in the store ({_size(report.log_bytes)}){span}"
        )
    if report.log_archived is not None:
        archived = report.log_archived
        click.echo(
            f"archived  entries up to {archived.through} ({_when(archived.at)}; "
            "'barnplan log verify --archive FILE' checks a file)"
        )
    if report.log_growth:
        days = report.log_growth
        click.echo(
            f"growth    last {len(days)} days: {sum(d.entries for d in days)} entries, "
            f"{_size(sum(d.bytes for d in days))}"
        )
        for day in days:
            click.echo(f"          {day.day} {day.entries:>9} entries {_size(day.bytes):>10}")
    verified = {None: "never", True: "OK", False: "FAILED"}[report.last_verification_ok]
    click.echo(f"verified  {verified} ({_when(report.last_verification_at)})")
    for problem in report.problems:
        click.echo(f"PROBLEM   {problem}")
    click.echo("status: OK" if report.ok else f"status: {len(report.problems)} problem(s)")


@click.command("status")
@node_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--no-peers", is_flag=True, help="Do not contact peers (no network).")
@run_async
async def status(directory: Path, as_json: bool, no_peers: bool) -> None:
    """How the node is: release and schema, store, keys, peers, outbox, checkpoints, the
    exchange log's size and growth per day (to plan 'barnplan log archive') and the last log
    verification. Changes nothing; contacts peers only to GET their node documents.

    Exit 0 when all is well, 1 when a problem was found (each one is listed), 2 for bad usage.
    """
    config = load_config(directory)
    report = await node_status(config, SystemClock())
    if not no_peers:
        await peer_checks(config, report)
    if as_json:
        echo_json(report.to_json())
    else:
        show(report)
    if not report.ok:
        sys.exit(STATUS_PROBLEMS)
