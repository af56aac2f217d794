"""Closing a plan with real node processes (SPEC §7.11), as durable as a revocation: a peer
that was down withholds ``plan_closed`` from its first request back; a lead killed right after
the closure commits loses no notice."""

from __future__ import annotations

import json
import os
import signal
import urllib.error

import pytest

from tests.e2e.test_revocation_processes import CATEGORY, new_consent, plan_everyone_shares
from tests.integration.test_release_flow import fragment
from tests.support.procfed import ProcNode, ask_signed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # node processes (barnplan serve)

CLOSE_CRASH_TRIALS = int(os.environ.get("BARNPLAN_CLOSE_CRASH_TRIALS", "3"))


def personnummer(born: str, serial: str) -> str:
    """A valid synthetic personnummer ``YYYYMMDD-NNNN`` (check digit computed)."""
    digits = born[2:] + serial
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return f"{born}-{serial}{(10 - total % 10) % 10}"


def plan_for(nodes: list[ProcNode], pnr: str) -> str:
    """As ``plan_everyone_shares``, for a child of its own (``pnr``)."""
    lead = nodes[0]
    child_ids = {}
    for n in nodes:
        status, child = n.api("POST", "/children", "prof", {"name": "Testa", "personnummer": pnr})
        assert status == 201, child
        child_ids[n.node_id] = child["child_id"]
    status, plan = lead.api(
        "POST",
        "/plans",
        "lead",
        {"child_id": child_ids[lead.node_id], "participants": [n.node_id for n in nodes[1:]]},
    )
    assert status == 201, plan
    for n in nodes[1:]:
        n.link_invitation(plan["plan_id"])
    for n in nodes:
        body = fragment(CATEGORY[n.node_id], n.node_id)
        status, answer = n.api("POST", f"/plans/{plan['plan_id']}/fragments", "prof", body)
        assert status == 201, answer
    return str(plan["plan_id"])


def withheld_closed(requester: ProcNode, holder: ProcNode, plan_id: str, consent_id: str) -> bool:
    released, reasons = ask_signed(requester, holder, plan_id, consent_id, CATEGORY[holder.node_id])
    return released == 0 and reasons == ["plan_closed"]


def test_a_peer_that_was_down_during_the_close_withholds_as_soon_as_it_is_back(
    trio: list[ProcNode],
) -> None:
    school, social, bup = trio
    plan_id = plan_everyone_shares(trio)
    consent_id = new_consent(trio, plan_id)
    assert not withheld_closed(school, bup, plan_id, consent_id)

    bup.stop()
    status, closed = school.api("POST", f"/plans/{plan_id}/close", "lead")
    assert status == 201, closed
    assert closed["notified"] == sorted([social.node_id, bup.node_id])
    wait_until(
        lambda: withheld_closed(school, social, plan_id, consent_id),
        timeout=10.0,
        what="social withholds plan_closed",
        interval=0.1,
    )
    bup.start()
    # the very first request after start is already withheld: catch-up ran before release
    assert withheld_closed(school, bup, plan_id, consent_id)
    assert withheld_closed(social, bup, plan_id, consent_id)
    status, view = bup.api("GET", f"/plans/{plan_id}", "prof")
    assert status == 200 and view["status"] == "closed" and view["closed_at"], view
    # one start-up line tells the operator how both catch-ups went: revocations and closures
    lines = (bup.directory / "serve.log").read_text().splitlines()
    done = [json.loads(line) for line in lines if '"catchup.done"' in line][-1]
    assert (done["peers"], done["ok"], done["not_ok"], done["closures_not_ok"]) == (2, 2, {}, {})


def test_a_crash_right_after_the_close_commit_loses_no_notice(trio: list[ProcNode]) -> None:
    school, social, bup = trio
    school.set_fault("crash_after_close_commit", True)
    school.stop()
    school.start()
    for trial in range(CLOSE_CRASH_TRIALS):
        plan_id = plan_for(trio, personnummer("20140101", f"{trial:02d}3"))
        consent_id = new_consent(trio, plan_id)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            school.api("POST", f"/plans/{plan_id}/close", "lead")
        assert school.proc is not None
        assert school.proc.wait(timeout=10) == -signal.SIGKILL, f"trial {trial}: no crash"
        school.proc = None
        assert not withheld_closed(social, bup, plan_id, consent_id), "notice left before crash"
        school.start()
        for holder, requester in ((bup, social), (social, bup)):
            wait_until(
                lambda h=holder, r=requester, p=plan_id, c=consent_id: withheld_closed(r, h, p, c),
                timeout=10.0,
                what=f"trial {trial}: {holder.node_id} withholds after the lead's restart",
                interval=0.1,
            )
        status, view = school.api("GET", f"/plans/{plan_id}", "lead")
        assert status == 200 and view["life_status"] == "closed", (trial, view)
