"""``barnplan plan show``: assemble the shared plan now and show it in the terminal.

The lead professional's view of the child's plan without a browser: it asks every participant
at once (the same ``assemble`` the API uses; nothing received is stored) and prints it with
``shared_view``. ``--json`` and ``--fhir`` print the same plan for machines.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..services.assembly import assemble
from ..services.fhir import shared_plan_to_fhir
from .main import echo_json, node_dir_option, run_async
from .opened import acting_user, opened_node
from .shared_view import render_shared_plan


@click.group()
def plan() -> None:
    """One plan's shared view, assembled now from every participant."""


@plan.command("show")
@node_dir_option
@click.argument("plan_id")
@click.option(
    "--as",
    "as_user",
    required=True,
    help="A professional's user id (any professional at an agency taking part).",
)
@click.option("--consent", "consent_id", default=None, help="Assemble under this consent id.")
@click.option(
    "--deadline",
    type=click.FloatRange(min=0.1, max=60),
    default=None,
    help="Seconds to wait for peers [default: assembly.deadline_s].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the shared plan as JSON.")
@click.option("--fhir", "as_fhir", is_flag=True, help="Print a FHIR R4 Bundle (JSON).")
@run_async
async def show(
    directory: Path,
    plan_id: str,
    as_user: str,
    consent_id: str | None,
    deadline: float | None,
    as_json: bool,
    as_fhir: bool,
) -> None:
    """Assemble the shared plan now (nothing received is stored) and show it."""
    if as_json and as_fhir:
        raise click.UsageError("choose one of --json and --fhir")
    async with opened_node(directory) as node:
        actor = await acting_user(node, as_user)
        shared = await assemble(
            node, actor, plan_id, consent_id=consent_id, deadline_s=deadline, led_here=as_fhir
        )
    if as_json:
        echo_json(shared)
    elif as_fhir:
        echo_json(shared_plan_to_fhir(shared))
    else:
        render_shared_plan(shared, Console(highlight=False))
