"""node/web/openapi.yaml checked against the running app.

* the document is valid OpenAPI 3.1 (openapi-spec-validator);
* its operations are exactly the app's routes (``POST /federation/v1/messages`` is left out on
  purpose: peers use it and protocol/SPEC.md specifies it; HEAD routes are aiohttp's automatic
  twins of the GET routes);
* every operation's ``x-roles`` is what the app enforces;
* real calls to two real nodes (every operation, successes and errors) answer with a status the
  document lists for the operation, the documented media type, and a body valid against the
  documented schema (jsonschema, draft 2020-12, formats checked).

The tests at the end pin API bugs found while writing this. The open ones are marked
``xfail(strict=True)``: a fix turns them into an XPASS failure, and the marker goes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from node.version import current_build
from protocol.clock import ManualClock
from tests.support.federation import (
    BUP,
    SCHOOL,
    SOCIAL,
    RunningNode,
    start_federation,
    start_node,
    stop_all,
)

yaml = pytest.importorskip("yaml", reason="PyYAML reads openapi.yaml (dev extra)")

SPEC_URI = "urn:barnplan:openapi"
ROLES = ("professional", "lead", "operator")
USERS = {"lead": "lead", "prof": "professional", "ops": "operator"}  # user id -> role
# Routes the app serves that this document deliberately leaves out (see the module docstring).
UNDOCUMENTED = {("POST", "/federation/v1/messages")}
METHODS = ("get", "put", "post", "delete", "patch")
NOBODY = "00000000-0000-4000-8000-000000000000"  # an id that exists nowhere


def personnummer(born: str, serial: str) -> str:
    """A valid synthetic personnummer ``YYYYMMDD-NNNN`` (check digit computed)."""
    digits = born[2:] + serial
    total = 0
    for i, ch in enumerate(digits):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return f"{born}-{serial}{(10 - total % 10) % 10}"


PNR_A = personnummer("20150315", "238")  # on record at both agencies: pending, then linked
PNR_B = personnummer("20120704", "123")  # only at the school: pending, then linked
PNR_C = personnummer("20180101", "456")  # only at the school: pending, then declined


def load_spec() -> dict[str, Any]:
    text = (resources.files("node.web") / "openapi.yaml").read_text(encoding="utf-8")
    spec = yaml.safe_load(text)
    assert isinstance(spec, dict)
    return spec


def operations(spec: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """(METHOD, path template) -> operation object."""
    return {
        (method.upper(), path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def pointer(*parts: str) -> str:
    return "".join("/" + quote(p.replace("~", "~0").replace("/", "~1"), safe="") for p in parts)


class Contract:
    """Looks up and applies the documented response of an operation."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.ops = operations(spec)
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self.registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)

    def response(self, method: str, template: str, status: int) -> tuple[str, str]:
        """(media type, $ref of the body schema) documented for ``status``."""
        op = self.ops[(method, template)]
        responses = op["responses"]
        assert str(status) in responses, f"{method} {template} answered undocumented {status}"
        entry = responses[str(status)]
        where = pointer("paths", template, method.lower(), "responses", str(status))
        if "$ref" in entry:
            where = entry["$ref"].removeprefix("#")
            name = where.rsplit("/", 1)[-1]
            entry = self.spec["components"]["responses"][name]
        (media_type,) = entry["content"]
        return media_type, f"{SPEC_URI}#{where}{pointer('content', media_type, 'schema')}"

    def check(self, method: str, template: str, status: int, media_type: str, body: Any) -> None:
        documented, ref = self.response(method, template, status)
        assert media_type == documented, f"{method} {template} {status}: {media_type}"
        validator = Draft202012Validator(
            {"$ref": ref},
            registry=self.registry,
            format_checker=Draft202012Validator.FORMAT_CHECKER,
        )
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, f"{method} {template} {status} does not match openapi.yaml: {errors}"


@dataclass
class Api:
    """Calls nodes over HTTP and checks every answer against the contract."""

    contract: Contract
    session: aiohttp.ClientSession
    seen: set[tuple[str, str, int]] = field(default_factory=set)

    async def call(
        self,
        node: RunningNode,
        method: str,
        template: str,
        expect: int | set[int],
        *,
        user: str | None = "lead",
        token: str | None = None,
        body: Any = None,
        data: bytes | None = None,
        query: dict[str, str] | None = None,
        path_params: dict[str, str] | None = None,
        **params: str,
    ) -> Any:
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = token
        elif user is not None:
            headers["Authorization"] = f"Bearer {node.tokens[user]}"
        path = template.format(**(path_params or {}), **params)
        async with self.session.request(
            method, node.url + path, json=body, data=data, headers=headers, params=query
        ) as resp:
            status, media_type = resp.status, resp.content_type
            raw = await resp.read()
        answer = json.loads(raw) if "json" in media_type else raw.decode("utf-8")
        allowed = expect if isinstance(expect, set) else {expect}
        assert status in allowed, f"{method} {path} as {user}: {status} {answer}"
        self.contract.check(method, template, status, media_type, answer)
        self.seen.add((method, template, status))
        return answer


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


@pytest.fixture
async def api(spec: dict[str, Any]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(Contract(spec), session)


@pytest.fixture
async def single(tmp_path: Path, clock: ManualClock) -> AsyncIterator[RunningNode]:
    running = await start_node(tmp_path, SCHOOL, (f"sqlite:///{tmp_path / 'n.db'}", ""), clock)
    try:
        yield running
    finally:
        await stop_all([running])


@pytest.fixture
async def pair(tmp_path: Path, clock: ManualClock) -> AsyncIterator[list[RunningNode]]:
    """The school and social services, and BUP, which both trust but no plan invites at
    first (the walk invites it to one later)."""
    nodes = await start_federation(
        tmp_path,
        [SCHOOL, SOCIAL, BUP],
        lambda name: (f"sqlite:///{tmp_path / name}.db", ""),
        clock,
    )
    try:
        yield nodes
    finally:
        await stop_all(nodes)


# --- the document itself --------------------------------------------------------------------


def test_document_is_valid_openapi_3_1(spec: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(spec)  # raises on any violation
    assert spec["openapi"] == "3.1.0"
    bearer = spec["components"]["securitySchemes"]["bearerAuth"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    assert spec["security"] == [{"bearerAuth": []}]


def test_every_operation_documents_roles_and_its_errors(spec: dict[str, Any]) -> None:
    for (method, path), op in operations(spec).items():
        where = f"{method} {path}"
        codes = set(op["responses"])
        success = "201" if method == "POST" else "200"
        assert success in codes and not (codes - {success}) & {"200", "201", "204"}, where
        roles = op["x-roles"]
        if not path.startswith("/api/"):
            assert op["security"] == [] and roles == [], where
            assert codes == {success}, where
            continue
        assert "security" not in op, f"{where} must use the global bearerAuth"
        assert roles and set(roles) <= set(ROLES), where
        assert f"Roles: {', '.join(roles)}." in op["description"], where
        assert "401" in codes, where
        assert ("403" in codes) == (set(roles) != set(ROLES)), where
        if "requestBody" in op:
            assert {"400", "413", "422"} <= codes, where
            assert op["requestBody"]["required"] is True, where
        if "{" in path:
            assert "404" in codes, where
        for code in codes - {success}:
            assert list(op["responses"][code]) == ["$ref"], f"{where} {code}"


def test_contract_check_rejects_what_the_document_does_not_allow(spec: dict[str, Any]) -> None:
    """The checker itself: $refs resolve and a wrong body, status or media type fails."""
    contract = Contract(spec)
    child = {"child_id": NOBODY, "name": "A", "personnummer": "201503152389"}
    contract.check("POST", "/api/v1/children", 201, "application/json", child)
    problem = {"type": "about:blank", "title": "Not found", "status": 404, "detail": "no plan"}
    contract.check("GET", "/api/v1/plans/{plan_id}", 404, "application/problem+json", problem)
    wrong: list[tuple[str, str, int, str, Any]] = [
        ("POST", "/api/v1/children", 201, "application/json", {**child, "extra": 1}),
        ("POST", "/api/v1/children", 201, "application/json", {**child, "personnummer": "1"}),
        ("POST", "/api/v1/children", 201, "text/html", child),
        ("POST", "/api/v1/children", 200, "application/json", child),
        ("GET", "/api/v1/plans/{plan_id}", 404, "application/json", problem),
        ("GET", "/api/v1/plans/{plan_id}", 404, "application/problem+json", {"detail": "x"}),
        ("GET", "/api/v1/plans/{plan_id}/fragments", 200, "application/json", [{}]),
    ]
    for method, template, status, media_type, body in wrong:
        with pytest.raises(AssertionError):
            contract.check(method, template, status, media_type, body)


API_PREFIXES = ("/api/", "/federation/", "/healthz", "/metrics", "/openapi.yaml", "/.well-known/")


async def test_documented_operations_are_exactly_the_app_routes(
    spec: dict[str, Any], single: RunningNode
) -> None:
    assert single.runner is not None
    # the HTML pages (node/web/pages) are for browsers, not part of the JSON API contract
    served = {
        (route.method, route.resource.canonical)
        for route in single.runner.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical.startswith(API_PREFIXES)
    }
    assert served >= UNDOCUMENTED, "an excluded route is gone: update UNDOCUMENTED"
    documented = set(operations(spec))
    assert documented == served - UNDOCUMENTED, (
        f"undocumented: {sorted(served - UNDOCUMENTED - documented)}; "
        f"documented but not served: {sorted(documented - served)}"
    )


async def test_x_roles_are_the_roles_the_app_lets_in(
    spec: dict[str, Any], api: Api, single: RunningNode
) -> None:
    """Every /api operation, as each role, with input that changes nothing: 403 exactly for
    the roles ``x-roles`` leaves out, and a documented answer otherwise."""
    for (method, path), op in operations(spec).items():
        if not path.startswith("/api/"):
            continue
        params = {p: NOBODY for p in ("plan_id", "fragment_id", "consent_id") if f"{{{p}}}" in path}
        for user, role in USERS.items():
            allowed = role in op["x-roles"]
            if not allowed:
                expect = 403
            elif "requestBody" in op:
                expect = 422  # {} misses every required field
            elif params:
                expect = 404
            else:
                expect = 200
            body: dict[str, Any] | None = {} if "requestBody" in op else None
            await api.call(single, method, path, expect, user=user, body=body, path_params=params)


# --- real responses against the documented schemas ------------------------------------------


def fragment_body(category: str, marker: str, indicators: list[str]) -> dict[str, Any]:
    return {
        "category": category,
        "indicators": indicators,
        "content": {
            "summary": f"Sammanfattning {marker}",
            "needs": [{"what": f"Behov {marker}"}, {"what": "Trygg väg", "indicator": "safe"}],
            "goals": [{"what": f"Mål {marker}", "by": "2027-06-01", "indicator": "achieving"}],
            "actions": [
                {
                    "what": f"Insats {marker}",
                    "who": "Kurator",
                    "start": "2026-12-01",
                    "end": "2027-03-01",
                    "status": "ongoing",
                },
                {"what": f"Samtal {marker}", "who": "Skolsköterska"},
            ],
            "child_view": f"Barnets röst {marker}",
            "family_view": f"Familjens syn {marker}",
            "next_review": "2027-02-01",
            "events": [{"on": "2026-11-02", "what": f"Händelse {marker}"}],
            "internal_note": "intern",
        },
    }


def consent_body(school: RunningNode, social: RunningNode, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "required": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
        "given_by": [{"ref": "vh1", "role": "guardian"}, {"ref": "vh2", "role": "guardian"}],
        "grants": [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}],
        "purpose": "sip",
        "valid_from": "2026-11-01T00:00:00Z",
        "valid_until": "2027-11-01T00:00:00+01:00",
        "evidence_ref": "Samtyckesblankett 2026-11-22",
    }
    body.update(overrides)
    return body


async def test_every_operation_answers_as_documented(
    spec: dict[str, Any], api: Api, pair: list[RunningNode]
) -> None:
    school, social, *_ = pair
    call = api.call

    # public endpoints, no token
    health = await call(school, "GET", "/healthz", 200, user=None)
    build = current_build()
    assert health == {
        "status": "ok",
        "node": school.node_id,
        "version": build.version,
        "schema": build.schema,
    }
    document = await call(school, "GET", "/.well-known/barnplan/node", 200, user=None)
    assert document["id"] == school.node_id
    metrics = await call(school, "GET", "/metrics", 200, user=None)
    assert "# TYPE " in metrics
    served = await call(school, "GET", "/openapi.yaml", 200, user=None)
    assert "openapi: 3.1" in served

    for user, role in USERS.items():
        me = await call(school, "GET", "/api/v1/me", 200, user=user)
        assert (me["user_id"], me["role"], me["node_id"]) == (user, role, school.node_id)

    # children
    children: dict[str, str] = {}
    for name, pnr in (("Alva", PNR_A), ("Bo", PNR_B), ("Cilla", PNR_C)):
        child = await call(
            school,
            "POST",
            "/api/v1/children",
            201,
            user="prof",
            body={"name": name, "personnummer": pnr},
        )
        assert child["personnummer"] == pnr.replace("-", "")
        children[name] = child["child_id"]
    at_social = await call(
        social,
        "POST",
        "/api/v1/children",
        201,
        user="prof",
        body={"name": "Alva", "personnummer": PNR_A},
    )
    listed = await call(school, "GET", "/api/v1/children", 200, user="prof")
    assert [c["name"] for c in listed] == ["Alva", "Bo", "Cilla"]

    # plans: every invitation waits at social services for a professional's decision
    plans: dict[str, str] = {}
    for name in children:
        plan = await call(
            school,
            "POST",
            "/api/v1/plans",
            201,
            body={
                "child_id": children[name],
                "participants": [social.node_id],
                "purpose": "sip",
                "reason": "Oro för skolfrånvaro",
            },
        )
        plans[name] = plan["plan_id"]
        assert {p["node_id"]: p["status"] for p in plan["participants"]} == {
            school.node_id: "lead",
            social.node_id: "pending",
        }
    assert len(await call(school, "GET", "/api/v1/plans", 200, user="prof")) == 3
    view = await call(school, "GET", "/api/v1/plans/{plan_id}", 200, plan_id=plans["Alva"])
    assert view["role"] == "lead" and view["child_id"] == children["Alva"]

    # invitations at social services, with the children there that match: link A and B,
    # decline C
    pending = await call(social, "GET", "/api/v1/invitations", 200, user="prof")
    assert {p["plan_id"]: (p["personnummer"], p["matches"]) for p in pending} == {
        plans["Alva"]: (PNR_A.replace("-", ""), [at_social["child_id"]]),
        plans["Bo"]: (PNR_B.replace("-", ""), []),
        plans["Cilla"]: (PNR_C.replace("-", ""), []),
    }
    alva = await call(
        social,
        "POST",
        "/api/v1/invitations/{plan_id}/link",
        201,
        user="prof",
        body={"child_id": at_social["child_id"]},
        plan_id=plans["Alva"],
    )
    assert (alva["status"], alva["lead_notified"]) == ("active", "ok")
    bo = await call(
        social,
        "POST",
        "/api/v1/children",
        201,
        user="prof",
        body={"name": "Bo", "personnummer": PNR_B},
    )
    linked = await call(
        social,
        "POST",
        "/api/v1/invitations/{plan_id}/link",
        201,
        user="prof",
        body={"child_id": bo["child_id"]},
        plan_id=plans["Bo"],
    )
    assert (linked["status"], linked["lead_notified"]) == ("active", "ok")
    await call(
        social,
        "POST",
        "/api/v1/invitations/{plan_id}/link",
        422,
        user="prof",
        body={"child_id": bo["child_id"]},
        plan_id=plans["Cilla"],
    )
    declined = await call(
        social,
        "POST",
        "/api/v1/invitations/{plan_id}/decline",
        201,
        user="prof",
        plan_id=plans["Cilla"],
    )
    assert (declined["status"], declined["child_id"]) == ("declined", None)
    await call(
        social,
        "POST",
        "/api/v1/invitations/{plan_id}/decline",
        409,
        user="prof",
        plan_id=plans["Bo"],
    )
    await call(
        social,
        "POST",
        "/api/v1/invitations/{plan_id}/link",
        404,
        user="prof",
        body={"child_id": bo["child_id"]},
        plan_id=NOBODY,
    )
    participant_view = await call(
        social, "GET", "/api/v1/plans/{plan_id}", 200, user="prof", plan_id=plans["Alva"]
    )
    assert participant_view["role"] == "participant"
    assert participant_view["child_id"] == at_social["child_id"]
    assert await call(social, "GET", "/api/v1/invitations", 200, user="prof") == []

    # fragments
    plan_a = plans["Alva"]
    own = await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/fragments",
        201,
        user="prof",
        body=fragment_body("education", "SKO", ["achieving"]),
        plan_id=plan_a,
    )
    assert own["version"] == 1 and own["authored_by"] == "prof"
    edited = await call(
        school,
        "PUT",
        "/api/v1/plans/{plan_id}/fragments/{fragment_id}",
        200,
        user="prof",
        body=fragment_body("education", "SKO-2", []),
        plan_id=plan_a,
        fragment_id=own["fragment_id"],
    )
    assert (edited["fragment_id"], edited["version"]) == (own["fragment_id"], 2)
    current = await call(
        school, "GET", "/api/v1/plans/{plan_id}/fragments", 200, user="prof", plan_id=plan_a
    )
    assert [(f["fragment_id"], f["version"]) for f in current] == [(own["fragment_id"], 2)]
    await call(
        social,
        "POST",
        "/api/v1/plans/{plan_id}/fragments",
        201,
        user="prof",
        body=fragment_body("social", "SOC", ["safe", "nurtured"]),
        plan_id=plan_a,
    )

    # consent, then the shared plan
    recorded = await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consents",
        201,
        body=consent_body(school, social),
        plan_id=plan_a,
    )
    assert recorded["distribution"] == [
        {"node_id": social.node_id, "outcome": "ok", "status": "stored"}
    ]
    assert recorded["statement"]["valid_until"] == "2027-10-31T23:00:00Z"
    consent_id = recorded["consent_id"]
    for node, user in ((school, "lead"), (social, "prof")):
        statements = await call(
            node, "GET", "/api/v1/plans/{plan_id}/consents", 200, user=user, plan_id=plan_a
        )
        assert statements == [recorded["statement"]]
    shared = await call(school, "GET", "/api/v1/plans/{plan_id}/shared", 200, plan_id=plan_a)
    bundle = await call(school, "GET", "/api/v1/plans/{plan_id}/shared.fhir", 200, plan_id=plan_a)
    assert bundle["resourceType"] == "Bundle"
    assert shared["status"] == "active"
    assert {(p["node_id"], p["status"]) for p in shared["participants"]} == {
        (school.node_id, "included"),
        (social.node_id, "included"),
    }
    assert {f["origin"] for f in shared["fragments"]} == {school.node_id, social.node_id}
    # social: first indicator "safe"; the school's edit has none ("unassigned"); goals "achieving"
    assert set(shared["indicators"]) == {"safe", "achieving", "unassigned"}
    assert shared["next_review"]["date"] == "2027-02-01"
    again = await call(
        school,
        "GET",
        "/api/v1/plans/{plan_id}/shared",
        200,
        query={"consent_id": consent_id},
        plan_id=plan_a,
    )
    assert again["consent"]["consent_id"] == consent_id

    report = await call(school, "GET", "/api/v1/plans/{plan_id}/access-report", 200, plan_id=plan_a)
    assert {(h["node_id"], h["status"]) for h in report["holders"]} == {
        (school.node_id, "answered"),
        (social.node_id, "answered"),
    }
    assert social.node_id in {r["holder"] for r in report["releases"]}
    await call(
        school, "GET", "/api/v1/plans/{plan_id}/access-report", 403, user="prof", plan_id=plan_a
    )
    await call(school, "GET", "/api/v1/plans/{plan_id}/access-report", 404, plan_id=NOBODY)

    # revocation: final, and the shared plan says so
    revoked = await call(
        school, "POST", "/api/v1/consents/{consent_id}/revoke", 201, consent_id=consent_id
    )
    assert (revoked["plan_id"], revoked["notified"]) == (plan_a, [social.node_id])
    await call(school, "POST", "/api/v1/consents/{consent_id}/revoke", 409, consent_id=consent_id)
    await call(school, "POST", "/api/v1/consents/{consent_id}/revoke", 404, consent_id=NOBODY)
    after = await call(school, "GET", "/api/v1/plans/{plan_id}/shared", 200, plan_id=plan_a)
    assert after["status"] == "revoked" and after["revoked_at"] == revoked["revoked_at"]
    assert after["fragments"] == []

    # consent as people: a revoked consent is not completed but recorded anew, by name
    answer = {"ref": "p2", "answer": "consents", "answered_on": "2026-11-21", "method": "e_form"}
    await call(
        school, "POST", "/api/v1/plans/{plan_id}/consent/answers", 409, body=answer, plan_id=plan_a
    )
    people = [
        {
            "name": "Anna Testsson",
            "required": True,
            "answer": "consents",
            "answered_on": "2026-11-20",
            "method": "signed_form",
            "form_ref": "Blankett 2026-117",
        },
        {"name": "Bertil Testsson", "required": True},
        {"name": "Kim Testsson", "role": "child", "age": 12, "view": "Ja"},
    ]
    base = consent_body(school, social)
    body = {k: v for k, v in base.items() if k not in ("required", "given_by")}
    incomplete = await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consent",
        201,
        body={**body, "people": people},
        plan_id=plan_a,
    )
    assert incomplete["waiting_for"] == ["Bertil Testsson"] and incomplete["replaces"] is None
    overview = await call(school, "GET", "/api/v1/plans/{plan_id}/consent", 200, plan_id=plan_a)
    assert (overview["state"], overview["waiting_for"]) == ("incomplete", ["Bertil Testsson"])
    assert [p["ref"] for p in overview["people"]] == ["p1", "p2", "p3"]
    await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consent/answers",
        422,
        body={**answer, "method": ""},
        plan_id=plan_a,
    )
    await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consent/answers",
        404,
        body={**answer, "ref": "p9"},
        plan_id=plan_a,
    )
    complete = await call(
        school, "POST", "/api/v1/plans/{plan_id}/consent/answers", 201, body=answer, plan_id=plan_a
    )
    assert complete["waiting_for"] == []
    assert complete["statement"]["replaces"] == incomplete["consent_id"]
    await call(school, "GET", "/api/v1/plans/{plan_id}/consent", 403, user="prof", plan_id=plan_a)
    await call(school, "GET", "/api/v1/plans/{plan_id}/consent", 404, plan_id=NOBODY)

    # errors, each a documented problem document
    await call(school, "GET", "/api/v1/children", 401, user=None)
    await call(school, "GET", "/api/v1/me", 401, token="Bearer not-a-token")
    await call(school, "GET", "/api/v1/plans", 401, token="Basic bGVhZDp4")
    await call(school, "GET", "/api/v1/children", 403, user="ops")
    await call(school, "POST", "/api/v1/plans", 403, user="prof", body={})
    await call(school, "GET", "/api/v1/plans/{plan_id}/shared", 403, user="ops", plan_id=plan_a)
    await call(school, "GET", "/api/v1/plans/{plan_id}", 404, plan_id=NOBODY)
    await call(school, "GET", "/api/v1/plans/{plan_id}/fragments", 404, plan_id=NOBODY)
    await call(school, "GET", "/api/v1/plans/{plan_id}/consents", 404, plan_id=NOBODY)
    await call(school, "GET", "/api/v1/plans/{plan_id}/shared", 404, plan_id=plans["Bo"])
    await call(
        school,
        "GET",
        "/api/v1/plans/{plan_id}/shared",
        404,
        query={"consent_id": NOBODY},
        plan_id=plan_a,
    )
    await call(
        school,
        "PUT",
        "/api/v1/plans/{plan_id}/fragments/{fragment_id}",
        404,
        user="prof",
        body=fragment_body("education", "X", []),
        plan_id=plans["Bo"],
        fragment_id=own["fragment_id"],
    )
    await call(
        social,
        "POST",
        "/api/v1/plans/{plan_id}/fragments",
        404,
        user="prof",
        body=fragment_body("social", "X", []),
        plan_id=plans["Cilla"],
    )
    await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consents",
        404,
        body=consent_body(school, social),
        plan_id=NOBODY,
    )
    bad = await call(
        school,
        "POST",
        "/api/v1/children",
        422,
        user="prof",
        body={"name": "X", "personnummer": "20150315-2380"},
    )
    assert set(bad["errors"]) == {"personnummer"}
    bad = await call(
        school,
        "POST",
        "/api/v1/children",
        422,
        user="prof",
        body={"name": "X", "personnummer": "1", "age": 9},
    )
    assert set(bad["errors"]) == {"age"}
    bad = await call(
        school,
        "POST",
        "/api/v1/plans",
        422,
        body={"child_id": NOBODY, "participants": ["okand.test.se"], "purpose": "x"},
    )
    assert set(bad["errors"]) == {"child_id", "participants", "purpose"}
    bad = await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/fragments",
        422,
        user="prof",
        body={"category": "gossip", "indicators": ["sad"], "content": {"needs": [{}]}},
        plan_id=plan_a,
    )
    assert set(bad["errors"]) == {"category", "indicators", "content.needs.0.what"}
    bad = await call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consents",
        422,
        body=consent_body(
            school,
            social,
            valid_until="2026-01-01T00:00:00Z",
            grants=[{"from": "okand.test.se", "to": [school.node_id], "categories": ["social"]}],
        ),
        plan_id=plan_a,
    )
    assert set(bad["errors"]) == {"valid_until", "grants.0"}
    for raw in (b"{", b"[1, 2]", b"\xff"):
        await call(school, "POST", "/api/v1/children", 400, user="prof", data=raw)
    await call(
        school,
        "POST",
        "/api/v1/children",
        413,
        user="prof",
        data=json.dumps({"name": "x" * 300_000, "personnummer": PNR_A}).encode(),
    )

    # a plan's details (Cilla's), then the same for a closed plan: a conflict
    details = {
        "reason": "Oro för skolfrånvaro",
        "coordinator_name": "Sara Samordnare",
        "coordinator_contact": "0300-12 34 56",
        "review_date": "2027-02-01",
        "review_time": "14:30",
        "review_place": "Skolans bibliotek",
    }
    path = "/api/v1/plans/{plan_id}/details"
    got = await call(school, "PUT", path, 200, body=details, plan_id=plans["Cilla"])
    assert got["coordinator_name"] == "Sara Samordnare"
    bad = {**details, "review_time": "14:30", "review_date": ""}
    await call(school, "PUT", path, 422, body=bad, plan_id=plans["Cilla"])
    # BUP is invited later; inviting an agency already in the plan, or one this node does
    # not trust, is refused
    invite = "/api/v1/plans/{plan_id}/participants"
    bup = {"participant": pair[2].node_id}
    invited = await call(school, "POST", invite, 201, body=bup, plan_id=plans["Cilla"])
    assert invited["invited"] == {"node_id": pair[2].node_id, "outcome": "ok"}
    await call(school, "POST", invite, 422, body=bup, plan_id=plans["Cilla"])
    stranger = {"participant": "okand.test.se"}
    await call(school, "POST", invite, 422, body=stranger, plan_id=plans["Cilla"])

    # closing a plan (Cilla's): final, a second close is a conflict; its participant that
    # declined is not notified
    closed = await call(
        school, "POST", "/api/v1/plans/{plan_id}/close", 201, plan_id=plans["Cilla"]
    )
    # (BUP, invited later, is told; social services, which declined, is not)
    assert closed["plan_id"] == plans["Cilla"] and closed["notified"] == [pair[2].node_id]
    await call(school, "POST", "/api/v1/plans/{plan_id}/close", 409, plan_id=plans["Cilla"])
    await call(
        school, "POST", "/api/v1/plans/{plan_id}/close", 403, user="prof", plan_id=plans["Cilla"]
    )
    view = await call(school, "GET", "/api/v1/plans/{plan_id}", 200, plan_id=plans["Cilla"])
    assert (view["status"], view["life_status"]) == ("closed", "closed")
    await call(school, "PUT", path, 409, body=details, plan_id=plans["Cilla"])

    # every documented operation answered its success status at least once
    succeeded = {(m, p) for m, p, status in api.seen if status < 300}
    assert succeeded == set(api.contract.ops)
    assert {s for _, _, s in api.seen if s >= 400} == {400, 401, 403, 404, 409, 413, 422}


# --- API bugs found while writing this; the open ones are strict xfails ---------------------


async def test_consent_time_out_of_range_is_invalid_input(
    api: Api, pair: list[RunningNode]
) -> None:
    """Was a 500: parse_time raised OverflowError (not ValueError) at the edge of the
    datetime range, which consents._time_field did not catch."""
    school, social, *_ = pair
    child = await api.call(
        school,
        "POST",
        "/api/v1/children",
        201,
        user="prof",
        body={"name": "A", "personnummer": PNR_A},
    )
    plan = await api.call(
        school,
        "POST",
        "/api/v1/plans",
        201,
        body={"child_id": child["child_id"], "participants": [social.node_id]},
    )
    bad = await api.call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consents",
        422,
        body=consent_body(school, social, valid_from="0001-01-01T00:00:00+01:00"),
        plan_id=plan["plan_id"],
    )
    assert set(bad["errors"]) == {"valid_from"}


async def test_consent_time_before_year_1000_is_no_server_error(
    api: Api, pair: list[RunningNode]
) -> None:
    """Found by schemathesis. Refusing such a time or recording it are both fine; a 500 is not."""
    school, social, *_ = pair
    child = await api.call(
        school,
        "POST",
        "/api/v1/children",
        201,
        user="prof",
        body={"name": "A", "personnummer": PNR_A},
    )
    plan = await api.call(
        school,
        "POST",
        "/api/v1/plans",
        201,
        body={"child_id": child["child_id"], "participants": [social.node_id]},
    )
    answer = await api.call(
        school,
        "POST",
        "/api/v1/plans/{plan_id}/consents",
        {201, 422},
        body=consent_body(
            school,
            social,
            valid_from="0884-11-16T08:41:04+10:48",
            valid_until="0885-01-01T00:00:00Z",
        ),
        plan_id=plan["plan_id"],
    )
    if "statement" in answer:
        assert answer["statement"]["valid_from"] == "0884-11-15T21:53:04Z"
    else:
        assert "valid_from" in answer["errors"]


async def test_personnummer_with_non_ascii_digits_is_refused(api: Api, single: RunningNode) -> None:
    arabic_indic = PNR_A.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    bad = await api.call(
        single,
        "POST",
        "/api/v1/children",
        422,
        user="prof",
        body={"name": "A", "personnummer": arabic_indic},
    )
    assert set(bad["errors"]) == {"personnummer"}


async def test_method_not_allowed_names_the_allowed_methods(single: RunningNode) -> None:
    headers = {"Authorization": f"Bearer {single.tokens['lead']}"}
    async with (
        aiohttp.ClientSession() as session,
        session.delete(single.url + "/api/v1/children", headers=headers) as resp,
    ):
        assert resp.status == 405
        assert resp.content_type == "application/problem+json"
        assert set(resp.headers.get("Allow", "").replace(" ", "").split(",")) >= {"GET", "POST"}


async def test_nul_character_is_refused_on_every_store(
    api: Api, tmp_path: Path, store_target: tuple[str, str], clock: ManualClock
) -> None:
    running = await start_node(tmp_path, SCHOOL, store_target, clock)
    try:
        await api.call(running, "GET", "/api/v1/plans/{plan_id}", 404, plan_id="a%00b")
        bad = await api.call(
            running,
            "POST",
            "/api/v1/children",
            422,
            user="prof",
            body={"name": "A\x00B", "personnummer": PNR_A},
        )
        assert bad["errors"]
    finally:
        await stop_all([running])
