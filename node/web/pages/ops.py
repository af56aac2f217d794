"""Pages for operators: the exchange log (the filters of ``barnplan log``), log verification,
peers, the outbox and follow-up figures. Operators never see plan content, names or
personnummer; these pages read only the log, the outbox and the peer table."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from protocol.clock import parse_time
from protocol.errors import Reason
from protocol.messages import REQUEST_TYPES

from ...oidc.identity import HASHED_PREFIX
from ...services import followup
from ...services.audit import verify_log
from ...services.status import log_growth
from ...store import peers as peer_store
from ...store import records, witnessed
from ...store import revocations as revocation_store
from ...store.exchange_log import LogFilter, entry_json, query_log
from ..keys import NODE_KEY
from .core import PAGE_STATE, render, roles, see_other, translator

routes = web.RouteTableDef()
PAGE_SIZE = 50
OUTCOMES = (
    "ok",
    "released",
    "withheld",
    "refused",
    "unreachable",
    "timeout",
    "bad_reply",
    "failed",
)
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
KEY_WARNING = timedelta(days=30)
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(3000, 1, 1, tzinfo=UTC)


@routes.get("/ops")
@roles("operator")
async def overview(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    growth = await log_growth(node.engine, node.clock.now())
    async with node.engine.connect() as conn:
        backlog = len(await revocation_store.outbox_rows(conn))
    return await render(
        request,
        "ops/overview.html",
        {
            "entries": growth.size.entries,
            "growth": growth,
            "peers": len(node.keyring.node_ids()),
            "backlog": backlog,
            "verification": request.app[PAGE_STATE].last_verify,
            "witness_events": await witnessed.recent_events(node.engine, 10),
        },
    )


@routes.post("/ops/verify")
@roles("operator")
async def verify(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    report = await verify_log(node)
    request.app[PAGE_STATE].last_verify = {"report": report.to_json(), "at": node.clock.now()}
    return see_other("/ops#verification")


def _day(value: str, name: str, errors: dict[str, str], message: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[name] = message
        return None


@routes.get("/ops/log")
@roles("operator")
async def exchange_log(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    t = translator(request)
    q = request.query
    values = {
        k: q.get(k, "").strip()
        for k in ("since", "until", "peer", "plan_id", "type", "outcome", "reason")
    }
    errors: dict[str, str] = {}
    since = _day(values["since"], "since", errors, t.gettext("Ange ett datum som ÅÅÅÅ-MM-DD."))
    until = _day(values["until"], "until", errors, t.gettext("Ange ett datum som ÅÅÅÅ-MM-DD."))
    if values["plan_id"] and not UUID.match(values["plan_id"]):
        errors["plan_id"] = t.gettext("Ett plan-id ser ut som 8-4-4-4-12 hexadecimala tecken.")
    try:
        page = max(1, int(q.get("page", "1")))
    except ValueError:
        page = 1
    rows: list[dict[str, Any]] = []
    more = False
    if not errors:
        # both bounds always set: query_log cannot compare a time column with None
        flt = LogFilter(
            since=datetime.combine(since, time(), UTC) if since else EARLIEST,
            until=datetime.combine(until + timedelta(days=1), time(), UTC) if until else LATEST,
            peer=values["peer"] or None,
            plan_id=values["plan_id"] or None,
            message_type=values["type"] or None,
            outcome=values["outcome"] or None,
            reason=values["reason"] or None,
        )
        found = await query_log(
            node.engine, flt, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE
        )
        more = len(found) > PAGE_SIZE
        rows = [entry_json(r) for r in found[:PAGE_SIZE]]
        await _add_sign_in(node.engine, node.node_id, rows)
    kept = {k: v for k, v in values.items() if v}

    def page_url(n: int) -> str:
        return "/ops/log?" + urlencode({**kept, "page": n})

    return await render(
        request,
        "ops/log.html",
        {
            "values": values,
            "errors": errors,
            "rows": rows,
            "page": page,
            "previous_url": page_url(page - 1) if page > 1 else None,
            "next_url": page_url(page + 1) if more else None,
            "types": sorted(REQUEST_TYPES),
            "outcomes": OUTCOMES,
            "reasons": [r.value for r in Reason],
            "peers": node.keyring.node_ids(),
        },
        422 if errors else 200,
    )


async def _add_sign_in(engine: AsyncEngine, node_id: str, rows: list[dict[str, Any]]) -> None:
    """For rows acted on by this node's own users: how that user signs in (the provider and
    the subject there; an identity number shows only as the start of its keyed hash)."""
    prefix = f"{node_id}/u/"
    ids = {
        r["professional"][len(prefix) :]
        for r in rows
        if isinstance(r.get("professional"), str) and r["professional"].startswith(prefix)
    }
    users = {u.user_id: u for u in await records.users_by_ids(engine, sorted(ids))}
    for row in rows:
        row["signed_in_via"] = None
        ref = row.get("professional")
        user = users.get(ref[len(prefix) :]) if isinstance(ref, str) else None
        if user is not None and user.oidc_issuer and user.oidc_subject:
            subject = user.oidc_subject
            shown = subject[:17] + "…" if subject.startswith(HASHED_PREFIX) else subject
            row["signed_in_via"] = f"{user.oidc_issuer} · {shown}"


@routes.get("/ops/peers")
@roles("operator")
async def peers(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    now = node.clock.now()
    outbound = await followup.last_outbound(node.engine)
    listed = []
    for peer in await peer_store.list_peers(node.engine):
        keys = []
        for key in json.loads(peer.document).get("keys", []):
            until = parse_time(key["valid_until"]) if key.get("valid_until") else None
            state = "ok"
            if until is not None and until <= now:
                state = "expired"
            elif until is not None and until - now < KEY_WARNING:
                state = "soon"
            keys.append({"kid": key["kid"], "valid_until": until, "state": state})
        last = outbound.get(peer.node_id)
        reach = "unknown"
        if last is not None:
            reach = {"unreachable": "down", "timeout": "down", "bad_reply": "bad"}.get(
                last[0], "ok"
            )
        contact = node.last_contact.get(peer.node_id) or peer.last_contact_at
        listed.append(
            {
                "node_id": peer.node_id,
                "agency_name": peer.agency_name,
                "agency_kind": peer.agency_kind,
                "base_url": peer.base_url,
                "reach": reach,
                "last_outbound": last,
                "last_contact": contact,
                "keys": keys,
            }
        )
    return await render(request, "ops/peers.html", {"peers": listed})


@routes.get("/ops/outbox")
@roles("operator")
async def outbox(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    show_all = request.query.get("all") == "1"
    async with node.engine.connect() as conn:
        rows = await revocation_store.outbox_rows(conn, include_delivered=show_all)
    backlog: dict[str, int] = {}
    for row in rows:
        if row.delivered_at is None:
            backlog[row.peer] = backlog.get(row.peer, 0) + 1
    return await render(
        request,
        "ops/outbox.html",
        {"rows": rows, "backlog": sorted(backlog.items()), "show_all": show_all},
    )


@routes.get("/ops/stats")
@roles("operator")
async def stats(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE_KEY]
    try:
        weeks = min(104, max(1, int(request.query.get("weeks", "12"))))
    except ValueError:
        weeks = 12
    since = node.clock.now() - timedelta(weeks=weeks)
    gap = node.config.assembly.deadline_s + 2.0
    return await render(
        request,
        "ops/stats.html",
        {
            "weeks": weeks,
            "per_week": await followup.assemblies_per_week(node.engine, since, gap),
            "releases": await followup.releases_by_category(node.engine, since),
            "revocations": await followup.revocation_delivery(node),
            "unreachable": await followup.unreachable_peers(node.engine, since),
        },
    )
