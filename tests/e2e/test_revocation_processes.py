"""Revocation with real node processes: a peer that was down catches up; a crash loses nothing."""

from __future__ import annotations

import json
import os
import signal
import urllib.error

import pytest

from tests.integration.test_release_flow import consent_body, fragment
from tests.support.federation import BUP, SCHOOL, SOCIAL
from tests.support.nodes import barnplan
from tests.support.procfed import ProcNode, ask_signed
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow  # node processes (barnplan serve)

CATEGORY = {SCHOOL[0]: "education", SOCIAL[0]: "social", BUP[0]: "mental_health"}
CRASH_TRIALS = int(os.environ.get("BARNPLAN_CRASH_TRIALS", "20"))


def plan_everyone_shares(nodes: list[ProcNode]) -> str:
    lead = nodes[0]
    for n in nodes:
        status, child = n.api(
            "POST", "/children", "prof", {"name": "Testa Testsson", "personnummer": "20150315-2389"}
        )
        assert status == 201, child
        if n is lead:
            lead_child = child["child_id"]
    status, plan = lead.api(
        "POST",
        "/plans",
        "lead",
        {"child_id": lead_child, "participants": [n.node_id for n in nodes[1:]]},
    )
    assert status == 201, plan
    assert {p["status"] for p in plan["participants"]} == {"lead", "pending"}
    for n in nodes[1:]:
        n.link_invitation(plan["plan_id"])
    for n in nodes:
        status, body = n.api(
            "POST",
            f"/plans/{plan['plan_id']}/fragments",
            "prof",
            fragment(CATEGORY[n.node_id], n.node_id),
        )
        assert status == 201, body
    return str(plan["plan_id"])


def new_consent(nodes: list[ProcNode], plan_id: str) -> str:
    ids = [n.node_id for n in nodes]
    grants = [
        {"from": n, "to": [m for m in ids if m != n], "categories": [CATEGORY[n]]} for n in ids
    ]
    status, consent = nodes[0].api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201, consent
    assert all(d["outcome"] == "ok" for d in consent["distribution"]), consent
    return str(consent["consent_id"])


def refused(requester: ProcNode, holder: ProcNode, plan_id: str, consent_id: str) -> bool:
    released, reasons = ask_signed(requester, holder, plan_id, consent_id, CATEGORY[holder.node_id])
    return released == 0 and reasons == ["consent_revoked"]


def test_a_peer_that_was_down_refuses_as_soon_as_it_is_back(trio: list[ProcNode]) -> None:
    school, social, bup = trio
    plan_id = plan_everyone_shares(trio)
    consent_id = new_consent(trio, plan_id)
    assert not refused(school, bup, plan_id, consent_id)

    bup.stop()
    status, result = social.api("POST", f"/consents/{consent_id}/revoke", "prof")
    assert status == 201, result
    wait_until(
        lambda: refused(school, social, plan_id, consent_id),
        timeout=1.0,
        what="social, which revoked, refuses",
        interval=0.1,
    )

    def backlog() -> list[dict[str, object]]:
        listed = barnplan("outbox", "--json", "--dir", str(social.directory)).stdout
        return json.loads(listed)  # type: ignore[no-any-return]

    # several backoff steps for the notice to BUP (0.25–0.5, 0.5–1, 1–2 s ...)
    wait_until(
        lambda: any(int(i["attempts"]) >= 3 for i in backlog()),
        timeout=30.0,
        what=lambda: f"three attempts at the notice to BUP: {backlog()}",
        interval=0.1,
    )
    pending = backlog()
    assert [item["peer"] for item in pending] == [bup.node_id]
    assert "unreachable" in str(pending[0]["last_error"])
    bup.start()
    # the very first request after start is already refused: catch-up ran before release
    assert refused(school, bup, plan_id, consent_id)


def test_a_crash_right_after_the_revocation_commit_loses_no_notice(trio: list[ProcNode]) -> None:
    school, social, bup = trio
    plan_id = plan_everyone_shares(trio)
    social.set_fault("crash_after_revoke_commit", True)
    social.stop()
    social.start()
    for trial in range(CRASH_TRIALS):
        consent_id = new_consent(trio, plan_id)
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            social.api("POST", f"/consents/{consent_id}/revoke", "prof")
        assert social.proc is not None
        assert social.proc.wait(timeout=10) == -signal.SIGKILL, f"trial {trial}: no crash"
        social.proc = None
        assert not refused(school, bup, plan_id, consent_id), "notice left before the crash"
        social.start()
        wait_until(
            lambda cid=consent_id: refused(school, bup, plan_id, cid),
            timeout=10.0,
            what=f"trial {trial}: BUP refuses after social's restart",
            interval=0.1,
        )
        status, shared = school.api("GET", f"/plans/{plan_id}/shared?consent_id={consent_id}")
        assert status == 200 and shared["status"] == "revoked", (trial, shared)
