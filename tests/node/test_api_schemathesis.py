"""Schemathesis against a running node, driven by node/web/openapi.yaml.

For every documented operation schemathesis generates requests (valid and invalid, from the
document's schemas) and sends them over loopback, as the lead user, to the school node of a
real two-node federation (school + social services, SQLite stores) that runs in a background
thread with its own event loop. Each response must not be a 5xx and must conform to the
document: a documented status code, the documented media type, a body valid against the
documented schema.

Hooks steer part of the generated input to records that exist (a plan, a fragment, a consent,
a pending invitation, a child, the peer), so the fuzzing also reaches the success paths and not
only 404/422. Bounded: ``MAX_EXAMPLES`` per operation and phase, no deadline.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from protocol.clock import ManualClock
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, start_federation, stop_all

pytestmark = pytest.mark.slow  # schemathesis drives the whole API

if TYPE_CHECKING:
    from schemathesis import Case, HookContext

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (dev extra)")
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

T = TypeVar("T")
MAX_EXAMPLES = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
SPEC = Path(str(resources.files("node.web") / "openapi.yaml"))
T0 = datetime(2026, 11, 23, 9, 0, 0, tzinfo=UTC)
PNR_SHARED = "20150315-2389"  # both agencies know this child: the school's plan links at once
PNR_SOCIAL_ONLY = "20120704-1235"  # unknown at the school: social's invitation waits there

schema = schemathesis.openapi.from_path(SPEC)


@dataclass
class Known:
    """Ids of real records on the school node, for the hooks to mix into generated input."""

    values: dict[str, list[Any]] = field(default_factory=dict)

    def choices(self, key: str, generated: Any) -> st.SearchStrategy[Any]:
        return st.sampled_from([generated, *self.values.get(key, [])])


KNOWN = Known()


@schema.hook
def flatmap_path_parameters(
    context: HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    if not isinstance(path_parameters, dict):
        return st.just(path_parameters)
    return st.fixed_dictionaries({k: KNOWN.choices(k, v) for k, v in path_parameters.items()})


@schema.hook
def flatmap_query(
    context: HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    if not isinstance(query, dict):
        return st.just(query)
    return st.fixed_dictionaries({k: KNOWN.choices(k, v) for k, v in query.items()})


@schema.hook
def flatmap_body(context: HookContext, body: Any) -> st.SearchStrategy[Any]:
    """Swap in a real child, the real peer or a grant between participants, sometimes."""
    if not isinstance(body, dict):
        return st.just(body)
    keys = ("child_id", "participants", "grants")
    return st.fixed_dictionaries(
        {k: KNOWN.choices(k, v) if k in keys else st.just(v) for k, v in body.items()}
    )


class Live:
    """Two real nodes served from a background thread's event loop, so that synchronous
    clients (schemathesis uses requests) can call them over loopback."""

    def __init__(self, base: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        clock = ManualClock(T0)
        self.nodes: list[RunningNode] = self.run(
            start_federation(
                base, [SCHOOL, SOCIAL], lambda name: (f"sqlite:///{base / name}.db", ""), clock
            )
        )

    @property
    def school(self) -> RunningNode:
        return self.nodes[0]

    @property
    def social(self) -> RunningNode:
        return self.nodes[1]

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def api(self, node: RunningNode, method: str, path: str, body: Any = None) -> Any:
        status, answer = self.run(node.api(method, path, "lead", body))
        assert status in (200, 201), (method, path, status, answer)
        return answer

    def close(self) -> None:
        try:
            self.run(stop_all(self.nodes))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


def seed(live: Live) -> dict[str, list[Any]]:
    """A plan led by the school with a fragment and a consent, and a pending invitation."""
    school, social = live.school, live.social
    child = live.api(school, "POST", "/children", {"name": "Alva", "personnummer": PNR_SHARED})
    live.api(social, "POST", "/children", {"name": "Alva", "personnummer": PNR_SHARED})
    bo = live.api(social, "POST", "/children", {"name": "Bo", "personnummer": PNR_SOCIAL_ONLY})
    plan = live.api(
        school, "POST", "/plans", {"child_id": child["child_id"], "participants": [social.node_id]}
    )
    [waiting] = live.api(social, "GET", "/invitations")  # social's professional links it
    live.api(
        social, "POST", f"/invitations/{plan['plan_id']}/link", {"child_id": waiting["matches"][0]}
    )
    invited = live.api(
        social, "POST", "/plans", {"child_id": bo["child_id"], "participants": [school.node_id]}
    )
    fragment = {"category": "education", "content": {"summary": "Läser bra"}}
    own = live.api(school, "POST", f"/plans/{plan['plan_id']}/fragments", fragment)
    live.api(
        social,
        "POST",
        f"/plans/{plan['plan_id']}/fragments",
        {"category": "social", "indicators": ["safe"], "content": {"needs": [{"what": "Stöd"}]}},
    )
    grant = {"from": social.node_id, "to": [school.node_id], "categories": ["social"]}
    consent = live.api(
        school,
        "POST",
        f"/plans/{plan['plan_id']}/consents",
        {
            "required": [{"ref": "vh1", "role": "guardian"}],
            "given_by": [{"ref": "vh1", "role": "guardian"}],
            "grants": [grant],
            "valid_from": "2026-11-01T00:00:00Z",
            "valid_until": "2027-11-01T00:00:00Z",
            "evidence_ref": "Blankett 1",
        },
    )
    pending = live.api(school, "GET", "/invitations")
    assert [p["plan_id"] for p in pending] == [invited["plan_id"]]
    return {
        "plan_id": [plan["plan_id"], invited["plan_id"]],
        "fragment_id": [own["fragment_id"]],
        "consent_id": [consent["consent_id"]],
        "child_id": [child["child_id"]],
        "participants": [[social.node_id]],
        "grants": [[grant]],
    }


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    running = Live(tmp_path_factory.mktemp("schemathesis"))
    try:
        KNOWN.values = seed(running)
        yield running
    finally:
        KNOWN.values = {}
        running.close()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
def test_local_api_keeps_its_contract(case: Case, live: Live) -> None:
    response = case.call_and_validate(
        base_url=live.school.url,
        headers={"Authorization": f"Bearer {live.school.tokens['lead']}"},
        checks=CHECKS,
        timeout=15,
    )
    status = response.status_code
    if case.method.upper() != case.operation.method.upper():
        # the coverage phase also tries methods the path does not have
        assert status == 405, (case.method, case.path, status)
        assert response.headers["content-type"][0].startswith("application/problem+json")
    else:
        assert str(status) in case.operation.definition.raw["responses"], (case.method, status)
