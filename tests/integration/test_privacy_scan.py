"""No personal data in exchange logs or process logs (DESIGN.md invariants 3 and 6).

A scenario through every exchange the nodes have — invitations (which carry a personnummer),
linking, consent, releases and withholdings, refusals of bad input, revocation with its notices,
catch-up, checkpoints and witnesses — with the synthetic names and identity numbers planted in the
records, then a scan of every exchange-log row of every node and of every process-log line.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import structlog
from sqlalchemy import select

from node.logs import configure_logging
from node.services.audit import checkpoint_and_witness
from node.services.revocation import catch_up
from node.store.tables import ExchangeLogEntry
from protocol.clock import ManualClock
from tests.conftest import StoreFactory
from tests.integration.test_release_flow import consent_body, fragment
from tests.support.federation import BUP, SCHOOL, SOCIAL, RunningNode, start_federation, stop_all
from tests.support.plans import link_invitation

NAMES = ("Saga Hemligsdotter", "Hemligsdotter", "Vilgot Anonymsson")
PNRS = ("20150315-2389", "201503152389", "1503152389")
GUARDIANS = ("Ingrid Tystsdotter", "Tystsdotter", "Bo Diskretsson")  # recorded by name


@pytest.fixture
async def logged(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[tuple[list[RunningNode], io.StringIO]]:
    stream = io.StringIO()
    configure_logging(stream)
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL, BUP], store_factory, clock)
    try:
        yield nodes, stream
    finally:
        await stop_all(nodes)
        structlog.reset_defaults()


async def test_no_names_or_identity_numbers_in_exchange_or_process_logs(
    logged: tuple[list[RunningNode], io.StringIO],
) -> None:
    (school, social, bup), stream = logged
    for node in (school, social, bup):
        status, _ = await node.api(
            "POST", "/children", "prof", {"name": NAMES[0], "personnummer": PNRS[0]}
        )
        assert status == 201
    status, _ = await bup.api(
        "POST", "/children", "prof", {"name": NAMES[2], "personnummer": "20120101-0008"}
    )
    child = (await school.api("GET", "/children", "prof"))[1][0]["child_id"]
    status, plan = await school.api(
        "POST",
        "/plans",
        "lead",
        {
            "child_id": child,
            "participants": [social.node_id, bup.node_id],
            "reason": f"Oro för {NAMES[0]}",
        },
    )
    assert status == 201, plan
    plan_id = plan["plan_id"]
    for node in (social, bup):  # a professional at each links the invitation to its child
        await link_invitation(node, plan_id)
    for node, category in ((social, "social"), (bup, "mental_health")):
        body = fragment(category, NAMES[1])
        body["content"]["child_view"] = f"{NAMES[0]} ({PNRS[0]}) säger att ..."
        assert (await node.api("POST", f"/plans/{plan_id}/fragments", "prof", body))[0] == 201
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    status, consent = await school.api(
        "POST", f"/plans/{plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200 and NAMES[1] in json.dumps(shared, ensure_ascii=False)
    # bad input and a refused message also go to the logs
    assert (
        await bup.api(
            "POST", "/children", "prof", {"name": NAMES[2], "personnummer": "20150315-2388"}
        )
    )[0] == 422
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            social.url + "/federation/v1/messages",
            data=json.dumps({"from": school.node_id, "name": NAMES[0], "pnr": PNRS[0]}),
            headers={"Content-Type": "application/json"},
        ) as resp,
    ):
        assert resp.status == 400
    status, _ = await bup.api("POST", f"/consents/{consent['consent_id']}/revoke", "prof")
    assert status == 201
    await catch_up(social.node)
    # consent recorded by name (names stay at the lead), then completed with one answer
    people = [
        {"name": GUARDIANS[0], "required": True, "answer": "consents"}
        | {"answered_on": "2026-11-20", "method": "signed_form", "form_ref": "Blankett 1"},
        {"name": GUARDIANS[2], "required": True},
    ]
    body = {k: v for k, v in consent_body(grants).items() if k not in ("required", "given_by")}
    status, named = await school.api(
        "POST", f"/plans/{plan_id}/consent", "lead", {**body, "people": people}
    )
    assert status == 201 and named["waiting_for"] == [GUARDIANS[2]]
    answer = {"ref": "p2", "answer": "consents", "answered_on": "2026-11-21", "method": "e_form"}
    status, _ = await school.api("POST", f"/plans/{plan_id}/consent/answers", "lead", answer)
    assert status == 201
    status, shared = await school.api("GET", f"/plans/{plan_id}/shared", "lead")
    assert status == 200
    await checkpoint_and_witness(school.node)

    rows: list[str] = []
    for node in (school, social, bup):
        async with node.node.engine.connect() as conn:
            result = await conn.execute(select(ExchangeLogEntry.__table__))  # type: ignore[attr-defined]
            rows.extend(
                json.dumps(dict(r._mapping), default=str, ensure_ascii=False) for r in result
            )
    lines = [line for line in stream.getvalue().splitlines() if line.strip()]
    assert len(rows) > 15 and len(lines) > 15, (len(rows), len(lines))
    assert {json.loads(line)["event"] for line in lines} >= {"http.request", "federation.refused"}
    for secret in (*NAMES, *PNRS, *GUARDIANS):
        assert not [r for r in rows if secret in r], f"{secret!r} in the exchange log"
        assert not [line for line in lines if secret in line], f"{secret!r} in a process log"
