"""Bad input gets a clear error and changes nothing (DESIGN.md invariant 7), on a running node.

Federation endpoint: every bad request is a 4xx with a *signed* ``error`` reply carrying a stable
reason, and the only trace it leaves in the store is its exchange-log row. Local API: every bad
request is a 4xx problem document (RFC 9457) saying what to fix, and the store is untouched.
"Untouched" is checked over every table the database has, row by row, not just a few counts.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from node.services.inbound import ANONYMOUS, UNVERIFIED
from node.services.outbound import FEDERATION_PATH
from node.store import tables as _tables  # noqa: F401 - puts every table on SQLModel.metadata
from protocol.clock import ManualClock, format_time
from protocol.envelope import StaticKeyRing, sign_envelope, verify_envelope
from protocol.messages import ErrorBody
from protocol.models import UUID_PATTERN
from protocol.signing import sign_object
from tests.conftest import StoreFactory
from tests.integration.test_release_flow import add_child, consent_body, fragment
from tests.support.federation import SCHOOL, SOCIAL, RunningNode, start_federation, stop_all
from tests.support.plans import link_invitation

UUID = re.compile(UUID_PATTERN)
Row = dict[str, Any]
Snapshot = dict[str, list[Row]]


@dataclass
class Pair:
    school: RunningNode
    social: RunningNode
    clock: ManualClock
    plan_id: str


@pytest.fixture
async def pair(
    tmp_path: Path, store_factory: StoreFactory, clock: ManualClock
) -> AsyncIterator[Pair]:
    """School leads a plan with social services; the school lead's local API is the target."""
    nodes = await start_federation(tmp_path, [SCHOOL, SOCIAL], store_factory, clock)
    school, social = nodes
    try:
        child = await add_child(school)
        await add_child(social)
        status, plan = await school.api(
            "POST", "/plans", "lead", {"child_id": child, "participants": [social.node_id]}
        )
        assert status == 201, plan
        await link_invitation(social, plan["plan_id"])
        yield Pair(school, social, clock, plan["plan_id"])
    finally:
        await stop_all(nodes)


# --- the whole store, row by row --------------------------------------------------------------


def _table_names(conn: Connection) -> list[str]:
    return sorted(inspect(conn).get_table_names())


async def snapshot(node: RunningNode) -> Snapshot:
    """Every row of every table in the node's database (the store is small in these tests)."""
    async with node.node.engine.connect() as conn:
        names = await conn.run_sync(_table_names)
        assert set(SQLModel.metadata.tables) <= set(names)
        result: Snapshot = {}
        for name in names:
            rows = (await conn.execute(text(f'SELECT * FROM "{name}"'))).mappings().all()
            result[name] = sorted((dict(r) for r in rows), key=repr)
            count = await conn.execute(select(func.count()).select_from(table(name)))
            assert count.scalar_one() == len(result[name])
    return result


def added_rows(before: Snapshot, after: Snapshot) -> Snapshot:
    """Rows in ``after`` but not ``before``, per table; fails if any row changed or vanished."""
    assert set(before) == set(after)
    added: Snapshot = {}
    for name in before:
        gone = [r for r in before[name] if r not in after[name]]
        assert gone == [], f"{name}: rows changed or deleted: {gone}"
        new = [r for r in after[name] if r not in before[name]]
        if new:
            added[name] = new
    return added


# --- federation endpoint ----------------------------------------------------------------------


async def post_federation(holder: RunningNode, data: bytes) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            holder.url + FEDERATION_PATH, data=data, headers={"Content-Type": "application/json"}
        ) as resp,
    ):
        assert resp.content_type == "application/json"
        body = await resp.json()
        assert isinstance(body, dict)
        return resp.status, body


def signed_hello(pair: Pair) -> dict[str, Any]:
    """A valid ``hello`` from school to social services; cases break one thing in it."""
    return sign_envelope(
        type="hello",
        body={"started_at": format_time(pair.clock.now())},
        sender=pair.school.node_id,
        to=pair.social.node_id,
        key=pair.school.node.identity.key,
        clock=pair.clock,
    )


def resigned(pair: Pair, **changes: Any) -> dict[str, Any]:
    """The valid hello with ``changes`` applied and then signed again with the school's key."""
    envelope = {k: v for k, v in signed_hello(pair).items() if k != "sig"}
    envelope.update(changes)
    return sign_object(envelope, pair.school.node.identity.key)


def mutated(pair: Pair, **changes: Any) -> bytes:
    envelope = signed_hello(pair)
    envelope.update(changes)
    return json.dumps(envelope).encode()


def nested(depth: int, open_: bytes = b'{"a":', close: bytes = b"}") -> bytes:
    return open_ * depth + b"1" + close * depth


def deep_envelope(pair: Pair, depth: int) -> bytes:
    head = json.dumps(signed_hello(pair))[:-1].encode()  # drop the closing brace
    return head + b', "x": ' + nested(depth) + b"}"


def max_body(node: RunningNode) -> int:
    """server.max_body_bytes (default 262144)."""
    return node.node.config.server.max_body_bytes


def oversize(pair: Pair) -> bytes:
    head = json.dumps(signed_hello(pair))[:-1].encode()
    pad = max_body(pair.social) - len(head) + 100
    return head + b', "pad": "' + b"x" * pad + b'"}'


@dataclass(frozen=True)
class FedCase:
    make: Callable[[Pair], bytes]
    status: int
    reason: str
    anonymous: bool = False  # no readable ``from``: the reply goes to anonymous.invalid
    verified: bool = False  # refused after the signature verified: logged under the sender
    unread: bool = False  # not a JSON object to the strict parser: nothing of it is echoed


def unread(make: Callable[[Pair], bytes], status: int, reason: str) -> FedCase:
    """A request the node cannot read as a JSON object (SPEC §5.3 steps 0–2): its error is
    anonymous and has no ``re``, whatever the text holds."""
    return FedCase(make, status, reason, anonymous=True, unread=True)


def with_bom(data: bytes) -> bytes:
    return b"\xef\xbb\xbf" + data


def as_utf16(data: bytes) -> bytes:
    return data.decode().encode("utf-16")


def claims_only_in_the_body(p: Pair) -> bytes:
    """No top-level ``from`` or ``id``: a ``from`` and ``id`` appear only nested in the body."""
    hello = signed_hello(p)
    junk = {"v": 1, "type": "hello", "body": {"from": hello["from"], "id": hello["id"]}}
    return json.dumps(junk).encode()


def claims_in_text_that_is_not_json(p: Pair) -> bytes:
    hello = signed_hello(p)
    return f'from the log: "from": "{hello["from"]}", "id": "{hello["id"]}" and so on'.encode()


def reply_type_with_a_bad_signature(p: Pair) -> bytes:
    """A hello.ack sent as a request and not even signed right: refused by its type, before any
    signature work (SPEC §5.3 step 5)."""
    envelope = resigned(p, type="hello.ack", body={"ok": True})
    envelope["sig"] = {**envelope["sig"], "value": "A" * 86}
    return json.dumps(envelope).encode()


FEDERATION_CASES: dict[str, FedCase] = {
    "malformed_json": unread(lambda p: b'{"v": 1, "type": "hello",', 400, "malformed"),
    "not_utf8": unread(lambda p: b'{"v": \xff\xfe}', 400, "malformed"),
    "empty_body": unread(lambda p: b"", 400, "malformed"),
    "json_array": unread(lambda p: json.dumps([signed_hello(p)]).encode(), 400, "malformed"),
    "json_string": unread(lambda p: b'"hello"', 400, "malformed"),
    "v_is_a_string": FedCase(lambda p: mutated(p, v="1"), 400, "malformed"),
    "v_is_a_bool": FedCase(lambda p: mutated(p, v=True), 400, "malformed"),
    "v_is_1_0": unread(
        lambda p: json.dumps(signed_hello(p)).replace('"v": 1,', '"v": 1.0,').encode(),
        400,
        "malformed",
    ),
    "id_is_a_number": FedCase(lambda p: mutated(p, id=12345), 400, "malformed"),
    "id_not_a_uuid": FedCase(lambda p: mutated(p, id="not-a-uuid"), 400, "malformed"),
    "id_with_a_trailing_newline_signed": FedCase(
        lambda p: json.dumps(resigned(p, id=str(uuid.uuid4()) + "\n")).encode(), 400, "malformed"
    ),
    "re_on_a_request_signed": FedCase(
        lambda p: json.dumps(resigned(p, re=str(uuid.uuid4()))).encode(), 400, "malformed"
    ),
    "utf8_byte_order_mark": unread(
        lambda p: with_bom(json.dumps(signed_hello(p)).encode()), 400, "malformed"
    ),
    "utf16": unread(lambda p: as_utf16(json.dumps(signed_hello(p)).encode()), 400, "malformed"),
    "issued_at_is_a_number": FedCase(lambda p: mutated(p, issued_at=1795424400), 400, "malformed"),
    "body_is_a_list": FedCase(lambda p: mutated(p, body=[1, 2]), 400, "malformed"),
    "sig_is_a_string": FedCase(lambda p: mutated(p, sig="c2ln"), 400, "malformed"),
    "to_is_a_list": FedCase(lambda p: mutated(p, to=["ifo.test.se"]), 400, "malformed"),
    "from_is_a_number": FedCase(lambda p: mutated(p, **{"from": 7}), 400, "malformed", True),
    "from_and_id_only_nested_in_the_body": FedCase(claims_only_in_the_body, 400, "malformed", True),
    "from_and_id_in_text_that_is_not_json": unread(
        claims_in_text_that_is_not_json, 400, "malformed"
    ),
    "duplicate_key": unread(
        lambda p: json.dumps(signed_hello(p))[:-1].encode() + b', "v": 1}', 400, "malformed"
    ),
    "unknown_envelope_field": FedCase(lambda p: mutated(p, extra=1), 400, "malformed"),
    "missing_body": FedCase(
        lambda p: json.dumps({k: v for k, v in signed_hello(p).items() if k != "body"}).encode(),
        400,
        "malformed",
    ),
    "signed_body_of_wrong_shape": FedCase(
        lambda p: json.dumps(resigned(p, body={"started_at": 5})).encode(),
        400,
        "malformed",
        verified=True,
    ),
    "nested_1000_deep_in_an_object": unread(lambda p: deep_envelope(p, 1000), 400, "too_deep"),
    "nested_40000_deep_in_an_object": unread(lambda p: deep_envelope(p, 40_000), 400, "too_deep"),
    "bare_object_nested_1000_deep": unread(lambda p: nested(1000), 400, "too_deep"),
    "array_nested_1000_deep": unread(lambda p: nested(1000, b"[", b"]"), 400, "too_deep"),
    "unknown_type_signed": FedCase(
        lambda p: json.dumps(resigned(p, type="plan.delete")).encode(), 400, "unknown_type"
    ),
    "reply_type_sent_as_a_request": FedCase(
        lambda p: json.dumps(resigned(p, type="hello.ack", body={"ok": True})).encode(),
        400,
        "unknown_type",
    ),
    "reply_type_sent_as_a_request_with_a_bad_signature": FedCase(
        reply_type_with_a_bad_signature, 400, "unknown_type"
    ),
}


def claimed_id(data: bytes, unread: bool) -> str | None:
    """The ``re`` SPEC §8 gives the error: the request's own top-level ``id`` if it is a
    lower-case UUID, and nothing from a request the node could not read."""
    if unread:
        return None
    found = json.loads(data).get("id")
    return found if isinstance(found, str) and UUID.fullmatch(found) else None


async def assert_refused_with_only_a_log_row(pair: Pair, data: bytes, case: FedCase) -> None:
    """POST ``data`` to social services: a signed error with the case's reason, addressed by
    what the request claims (SPEC §8), and one log row: under the school only if the school's
    signature verified, else as unverified. Nothing else in the store changes."""
    social = pair.social
    before = await snapshot(social)
    got, reply = await post_federation(social, data)
    assert (got, reply["body"].get("reason")) == (case.status, case.reason), reply
    audience = ANONYMOUS if case.anonymous else pair.school.node_id
    verified = verify_envelope(
        reply,
        keyring=StaticKeyRing({social.node_id: social.node.identity.public_keys()}),
        audience=audience,
        clock=pair.clock,
        seen=None,
    )
    assert verified.type == "error"
    assert isinstance(verified.body, ErrorBody)
    assert verified.body.reason.value == case.reason
    assert verified.body.detail
    assert verified.re == claimed_id(data, case.unread)
    added = added_rows(before, await snapshot(social))
    assert set(added) == {"exchange_log"}, added
    (row,) = added["exchange_log"]
    assert row["direction"] == "in"
    assert row["peer"] == (pair.school.node_id if case.verified else UNVERIFIED)
    assert row["outcome"] == "refused"
    assert row["reason"] == case.reason
    assert row["released"] == 0


@pytest.mark.slow  # a federation started for each of the many cases
@pytest.mark.parametrize("case_name", sorted(FEDERATION_CASES))
async def test_bad_federation_input_gets_a_signed_4xx_error_and_only_a_log_row(
    pair: Pair, case_name: str
) -> None:
    case = FEDERATION_CASES[case_name]
    await assert_refused_with_only_a_log_row(pair, case.make(pair), case)


async def test_the_node_keeps_answering_properly_after_a_burst_of_bad_input(pair: Pair) -> None:
    for case in FEDERATION_CASES.values():
        status, _ = await post_federation(pair.social, case.make(pair))
        assert 400 <= status < 500
    status, reply = await post_federation(pair.social, json.dumps(signed_hello(pair)).encode())
    assert status == 200, reply
    assert reply["type"] == "hello.ack"


# --- size limits: the limit is server.max_body_bytes, not a read buffer -------------------------

READ_BUG = (
    "BUG: node/web/federation.py messages() reads the body with a single "
    "request.content.read(limit + 1), which returns only what aiohttp has buffered (~192 KiB on "
    "loopback), not up to limit + 1 bytes: larger bodies are cut short and refused as malformed"
)


async def test_a_body_over_max_body_bytes_is_refused_as_too_large_with_413(pair: Pair) -> None:
    """The body is not read at all, so not for a ``from`` either: the error is anonymous."""
    await assert_refused_with_only_a_log_row(
        pair, oversize(pair), unread(oversize, 413, "too_large")
    )


async def test_a_valid_envelope_just_under_max_body_bytes_is_accepted(pair: Pair) -> None:
    """Whitespace between tokens is not signed (RFC 8785), so this padded hello is valid."""
    head = json.dumps(signed_hello(pair))[:-1].encode()
    data = head + b" " * (max_body(pair.social) - len(head) - 1024) + b"}"
    assert len(data) < max_body(pair.social)
    status, reply = await post_federation(pair.social, data)
    assert (status, reply["type"]) == (200, "hello.ack"), reply["body"]


async def test_released_fragments_of_about_300_kb_reach_the_lead_whole(pair: Pair) -> None:
    """Two fragments of ~150 KB each (each under the API's body limit), well under the 4 MiB a
    reply may have."""
    school, social = pair.school, pair.social
    for marker in ("BIG-1", "BIG-2"):
        body = fragment("social", marker)
        body["content"]["needs"] = [{"what": marker + "x" * 3990} for _ in range(37)]
        status, created = await social.api("POST", f"/plans/{pair.plan_id}/fragments", "prof", body)
        assert status == 201, created
    grants = [{"from": social.node_id, "to": [school.node_id], "categories": ["social"]}]
    status, consent = await school.api(
        "POST", f"/plans/{pair.plan_id}/consents", "lead", consent_body(grants)
    )
    assert status == 201, consent
    status, shared = await school.api("GET", f"/plans/{pair.plan_id}/shared", "lead")
    assert status == 200, shared
    entry = {p["node_id"]: p for p in shared["participants"]}[social.node_id]
    assert (entry["status"], entry.get("fragments")) == ("included", 2), entry


# --- local API ------------------------------------------------------------------------------


async def call_api(
    node: RunningNode,
    method: str,
    path: str,
    *,
    user: str | None = "lead",
    data: bytes | None = None,
    token: str | None = None,
) -> tuple[int, str, dict[str, Any], str]:
    """Call /api/v1 with raw bytes; return status, content type, parsed body and raw text."""
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    elif user is not None:
        headers["Authorization"] = f"Bearer {node.tokens[user]}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, node.url + "/api/v1" + path, data=data, headers=headers) as resp,
    ):
        text = await resp.text()
        return resp.status, resp.content_type, json.loads(text), text


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def fragment_with(**content: Any) -> dict[str, Any]:
    body = fragment("education", "X")
    body["content"].update(content)
    return body


@dataclass(frozen=True)
class ApiCase:
    method: str
    path: str  # "{plan}" is replaced by the plan id
    data: Callable[[Pair], bytes | None]
    status: int
    fields: tuple[str, ...] = ()  # for 422: fields the errors map must name
    user: str | None = "lead"
    token: str | None = None
    must_not_echo: tuple[str, ...] = field(default=())


CHILD = {"name": "Testa Testsson", "personnummer": "20150315-2389"}
BAD_CHECK_DIGIT = "20150315-2388"

API_CASES: dict[str, ApiCase] = {
    "malformed_json": ApiCase("POST", "/children", lambda p: b'{"name": "Testa",', 400),
    "not_utf8": ApiCase("POST", "/children", lambda p: b'{"name": "\xff"}', 400),
    "json_array": ApiCase("POST", "/children", lambda p: as_json([CHILD]), 400),
    "json_null_plan": ApiCase("POST", "/plans", lambda p: b"null", 400),
    "wrong_types_child": ApiCase(
        "POST",
        "/children",
        lambda p: as_json({"name": 5, "personnummer": 201503152389}),
        422,
        ("name", "personnummer"),
    ),
    "wrong_types_plan": ApiCase(
        "POST",
        "/plans",
        lambda p: as_json({"child_id": ["x"], "participants": "ifo.test.se"}),
        422,
        ("child_id", "participants"),
    ),
    "missing_field_child": ApiCase(
        "POST", "/children", lambda p: as_json({"name": "Testa"}), 422, ("personnummer",)
    ),
    "missing_fields_consent": ApiCase(
        "POST",
        "/plans/{plan}/consents",
        lambda p: as_json({"purpose": "sip"}),
        422,
        ("grants", "required", "given_by", "valid_from", "valid_until", "evidence_ref"),
    ),
    "unknown_field_child": ApiCase(
        "POST", "/children", lambda p: as_json({**CHILD, "nickname": "T"}), 422, ("nickname",)
    ),
    "personnummer_bad_check_digit": ApiCase(
        "POST",
        "/children",
        lambda p: as_json({**CHILD, "personnummer": BAD_CHECK_DIGIT}),
        422,
        ("personnummer",),
        must_not_echo=(BAD_CHECK_DIGIT, BAD_CHECK_DIGIT.replace("-", "")),
    ),
    "personnummer_not_a_date": ApiCase(
        "POST",
        "/children",
        lambda p: as_json({**CHILD, "personnummer": "20151315-2384"}),
        422,
        ("personnummer",),
    ),
    "unknown_category_fragment": ApiCase(
        "POST",
        "/plans/{plan}/fragments",
        lambda p: as_json(fragment("astrology", "X")),
        422,
        ("category",),
    ),
    "unknown_indicator_fragment": ApiCase(
        "POST",
        "/plans/{plan}/fragments",
        lambda p: as_json(fragment("education", "X", indicator="happy")),
        422,
        ("indicators",),
    ),
    "bad_date_in_fragment_content": ApiCase(
        "POST",
        "/plans/{plan}/fragments",
        lambda p: as_json(fragment_with(next_review="next spring")),
        422,
        ("content.next_review",),
    ),
    "consent_ends_before_it_starts": ApiCase(
        "POST",
        "/plans/{plan}/consents",
        lambda p: as_json(
            consent_body(
                [{"from": p.social.node_id, "to": [p.school.node_id], "categories": ["social"]}],
                valid_from="2027-01-01T00:00:00Z",
                valid_until="2026-01-01T00:00:00Z",
            )
        ),
        422,
        ("valid_until",),
    ),
    "consent_grants_a_stranger": ApiCase(
        "POST",
        "/plans/{plan}/consents",
        lambda p: as_json(
            consent_body(
                [{"from": "okand.example.se", "to": [p.school.node_id], "categories": ["social"]}]
            )
        ),
        422,
        ("grants.0",),
    ),
    "plan_with_unknown_participant": ApiCase(
        "POST",
        "/plans",
        lambda p: as_json({"child_id": "nope", "participants": ["okand.example.se"]}),
        422,
        ("child_id", "participants"),
    ),
    "huge_body": ApiCase(
        "POST",
        "/children",
        lambda p: as_json(
            {"name": "x" * (max_body(p.school) + 10), "personnummer": CHILD["personnummer"]}
        ),
        413,
    ),
    "no_token": ApiCase("POST", "/children", lambda p: as_json(CHILD), 401, user=None),
    "no_token_get": ApiCase("GET", "/plans", lambda p: None, 401, user=None),
    "unknown_token": ApiCase("POST", "/children", lambda p: as_json(CHILD), 401, token="bp_nope"),
    "operator_lists_plans": ApiCase("GET", "/plans", lambda p: None, 403, user="ops"),
    "operator_creates_plan": ApiCase(
        "POST",
        "/plans",
        lambda p: as_json({"child_id": "x", "participants": [p.social.node_id]}),
        403,
        user="ops",
    ),
    "operator_reads_fragments": ApiCase(
        "GET", "/plans/{plan}/fragments", lambda p: None, 403, user="ops"
    ),
    "professional_records_consent": ApiCase(
        "POST", "/plans/{plan}/consents", lambda p: as_json({}), 403, user="prof"
    ),
}


@pytest.mark.slow  # a federation started for each of the many cases
@pytest.mark.parametrize("case_name", sorted(API_CASES))
async def test_bad_api_input_gets_a_4xx_problem_document_and_writes_nothing(
    pair: Pair, case_name: str
) -> None:
    case = API_CASES[case_name]
    school = pair.school
    before = await snapshot(school)
    status, content_type, body, text = await call_api(
        school,
        case.method,
        case.path.replace("{plan}", pair.plan_id),
        user=case.user,
        token=case.token,
        data=case.data(pair),
    )
    assert status == case.status, body
    assert content_type == "application/problem+json"
    assert body["status"] == status
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    if status == 422:
        errors = body["errors"]
        assert isinstance(errors, dict)
        for name in case.fields:
            assert name in errors, errors
            assert errors[name]
    for secret in case.must_not_echo:
        assert secret not in text
    assert added_rows(before, await snapshot(school)) == {}


# --- made-up message types: no new metric series, no new log vocabulary ------------------------


def request_series(node: RunningNode) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """The series (sample name, labels) of barnplan_federation_requests in the registry."""
    return {
        (sample.name, tuple(sorted(sample.labels.items())))
        for metric in node.node.metrics.registry.collect()
        if metric.name == "barnplan_federation_requests"
        for sample in metric.samples
    }


async def test_made_up_message_types_add_no_metric_series_and_are_logged_as_other(
    pair: Pair,
) -> None:
    """Anyone who can reach the endpoint chooses ``type``: 60 unsigned posts with 60 made-up
    types added 120 series (``_total`` and ``_created`` each) and 60 type names to the log.
    The type label and the logged type come from the message types of this version only."""
    social = pair.social
    before = request_series(social)
    rows_before = len((await snapshot(social))["exchange_log"])
    for n in range(60):
        made_up = f"made.up.{chr(97 + n // 26)}{chr(97 + n % 26)}"
        status, reply = await post_federation(social, mutated(pair, type=made_up))
        assert (status, reply["body"]["reason"]) == (400, "unknown_type")
    added = request_series(social) - before
    assert {dict(labels)["type"] for _, labels in added} == {"other"}
    assert len(added) == 2  # type=other, outcome=refused: _total and _created
    rows = (await snapshot(social))["exchange_log"]
    assert len(rows) == rows_before + 60
    logged = {r["message_type"] for r in rows if r["reason"] == "unknown_type"}
    assert logged == {"other"}
