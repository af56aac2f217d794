"""``barnplan plan show``: the real CLI, in its own process, against a live lead node.

The federation runs in the test's event loop on the wall clock (the CLI process has no other
clock, and peers reject messages outside the skew window). The CLI opens the lead's node
directory while the lead's server also runs on it - as an operator would on a live node - and
assembles from the running peers. The CLI runs as a subprocess because the in-process servers
log to stdout, which an in-process ``CliRunner`` would capture into the command's output.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from rich.console import Console

from node.cli.shared_view import render_shared_plan
from protocol.clock import SystemClock
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode, sqlite_federation
from tests.support.plans import CHILD_NAME, shared_plan_world

pytestmark = pytest.mark.slow  # barnplan CLI subprocesses against three nodes


@pytest.fixture
async def live(tmp_path: Path) -> AsyncIterator[list[RunningNode]]:
    async with sqlite_federation(tmp_path, [SCHOOL, SOCIAL, BUP], SystemClock()) as nodes:
        yield nodes


async def barnplan(*args: str) -> tuple[int, str, str]:
    """Run ``barnplan ARGS`` in a subprocess without blocking the loop the peers serve from."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "node",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "COLUMNS": "220", "NO_COLOR": "1"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_plan_show_renders_the_shared_plan(live: list[RunningNode], tmp_path: Path) -> None:
    school, social, bup = live
    plan_id, consent_id = await shared_plan_world(school, social, bup)
    await bup.stop()  # one participant down: the plan still shows, with BUP's status
    directory = str(tmp_path / school.node_id)

    code, out, err = await barnplan("plan", "show", plan_id, "--as", "lead", "--dir", directory)
    assert code == 0, err
    # header
    for text in (CHILD_NAME, plan_id, "Samordnad individuell plan (SIP)", "Oro för skolfrånvaro"):
        assert text in out
    assert f"{school.node_id}/u/lead" in out and consent_id in out
    assert "Aktiv (active)" in out
    # participants and their statuses
    assert "Med (included)" in out
    assert "Nås inte (unreachable)" in out
    # Swedish indicator headings, with needs, goals and actions under them
    for heading in (
        "Utvecklas och lyckas i skolan (achieving)",
        "Omvårdad (nurtured)",
        "Hälsa (healthy)",
        "Aktiv (active)",
    ):
        assert heading in out, heading
    for text in ("Behov SOC-M", "Mål SOC-M", "senast 2027-06-01", "Behov SKO-M"):
        assert text in out
    assert "Behov BUP-M" not in out  # BUP is down
    # vem gör vad, när
    assert "Vem gör vad, när" in out
    for text in (
        "Kurator SOC-M",
        "Insats planerad SOC-M",
        "2026-12-01",
        "2027-03-01",
        "Planerad",
        "Pågår",
        "Klar",
        "Avbruten",
    ):
        assert text in out, text
    assert "Nästa uppföljning: 2027-02-01" in out
    assert "Kronologi" in out and "2026-10-15" in out and "Händelse SOC-M" in out
    assert "Barnets röst SOC-M" in out and "Familjens röst SKO-M" in out
    # provenance
    assert "✓ verifierad" in out
    assert school.node.identity.key.key_id in out
    assert "Intern anteckning" not in out

    code, out, err = await barnplan(
        "plan", "show", plan_id, "--as", "lead", "--dir", directory, "--json"
    )
    assert code == 0, err
    shared = json.loads(out)
    assert shared["plan_id"] == plan_id
    statuses = {p["node_id"]: p["status"] for p in shared["participants"]}
    assert statuses == {
        school.node_id: "included",
        social.node_id: "included",
        bup.node_id: "unreachable",
    }

    code, out, err = await barnplan(
        "plan", "show", plan_id, "--as", "lead", "--dir", directory, "--fhir"
    )
    assert code == 0, err
    bundle = json.loads(out)
    assert bundle["resourceType"] == "Bundle"
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} >= {
        "CarePlan",
        "Patient",
        "Goal",
        "Consent",
        "Provenance",
    }
    # BUP did not answer: the exported plan does not claim to be complete
    (careplan,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "CarePlan"
    ]
    assert careplan["status"] == "unknown"
    assert careplan["note"][0]["text"].startswith("Planen är ofullständig")


async def test_plan_show_serves_a_professional_and_refuses_an_operator(
    live: list[RunningNode], tmp_path: Path
) -> None:
    school, social, bup = live
    plan_id, _ = await shared_plan_world(school, social, bup)
    directory = str(tmp_path / school.node_id)
    # any professional at the lead's agency sees the plan (issue 17), not only the lead
    code, out, err = await barnplan(
        "plan", "show", plan_id, "--as", "prof", "--dir", directory, "--json"
    )
    assert code == 0, err
    assert json.loads(out)["viewer"] == {"node_id": school.node_id, "role": "lead"}
    code, _, err = await barnplan("plan", "show", plan_id, "--as", "ops", "--dir", directory)
    assert code == 1
    assert err.startswith("error: only professionals see a shared plan")
    code, _, err = await barnplan("plan", "show", plan_id, "--as", "nobody", "--dir", directory)
    assert code == 1 and "no user 'nobody'" in err


async def test_plan_show_at_a_participant_shows_what_the_consent_grants_it(
    live: list[RunningNode], tmp_path: Path
) -> None:
    school, social, bup = live
    plan_id, _ = await shared_plan_world(school, social, bup)
    directory = str(tmp_path / bup.node_id)
    code, out, err = await barnplan("plan", "show", plan_id, "--as", "prof", "--dir", directory)
    assert code == 0, err
    assert f"{school.node_id} (huvudansvarig nod)" in out
    # the consent lets social services share social with the school only: BUP is told why
    assert "Mottagaren omfattas inte (requester_not_granted)" in " ".join(out.split())
    assert "BUP-M" in out and "SOC-M" not in out and "SKO-M" not in out
    # the FHIR export is the lead node's
    code, _, err = await barnplan(
        "plan", "show", plan_id, "--as", "lead", "--fhir", "--dir", directory
    )
    assert code == 1 and "no plan" in err and "led by this node" in err


async def test_a_revoked_plan_says_so(live: list[RunningNode]) -> None:
    school, social, bup = live
    plan_id, consent_id = await shared_plan_world(school, social, bup)
    status, _ = await school.api("POST", f"/consents/{consent_id}/revoke", "lead")
    assert status == 201
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200
    console = Console(record=True, width=200, highlight=False, color_system=None)
    render_shared_plan(shared, console)
    out = console.export_text()
    assert f"ÅTERKALLAD {shared['revoked_at']} (revoked)" in out
    assert "Undanhållet (withheld)" in out
    assert "Samtycket är återkallat (consent_revoked)" in out
    assert "Inga behov, mål eller insatser delade." in out
    assert "Nästa uppföljning: ej bestämd" in out


async def test_plans_list_shows_the_plans_asked_for(
    live: list[RunningNode], tmp_path: Path
) -> None:
    """``barnplan plans list``: the active plans by default, ``--status closed`` the closed
    ones; an unknown status is refused by the command line, saying which ones there are."""
    school, social, bup = live
    plan_id, _ = await shared_plan_world(school, social, bup)
    directory = str(tmp_path / school.node_id)
    code, out, err = await barnplan("plans", "list", "--dir", directory, "--json")
    assert code == 0, err
    assert [v["plan_id"] for v in json.loads(out)] == [plan_id]
    status, body = await school.api("POST", f"/plans/{plan_id}/close", "lead")
    assert status == 201, body
    for which, expected in (("active", []), ("closed", [plan_id]), ("all", [plan_id])):
        code, out, err = await barnplan(
            "plans", "list", "--status", which, "--dir", directory, "--json"
        )
        assert code == 0, err
        assert [v["plan_id"] for v in json.loads(out)] == expected, which
    code, out, err = await barnplan("plans", "list", "--status", "pending", "--dir", directory)
    assert code == 2 and "'active', 'closed', 'all'" in err and out == ""
