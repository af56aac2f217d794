"""The lead assembles the shared plan on demand from every participant, concurrently.

One deadline for all peers: every request runs with the same timeout and they run at once, so
the plan arrives in about the time of the slowest answering peer, at most the deadline. A peer
that is down, slow or answers garbage gets a status; the rest is shown. Nothing received is
written to the store; the exchange log records each request and its outcome.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from protocol.clock import format_time, parse_time
from protocol.documents import parse_document, verify_fragment
from protocol.errors import ProtocolError, Reason
from protocol.messages import FragmentsRequest, FragmentsResponse
from protocol.models import ConsentStatement, Fragment

from ..domain.consent_people import missing_refs, waiting_for
from ..domain.records import FragmentRecord
from ..domain.shared_plan import VerifiedFragment, merge_fragments
from ..errors import Forbidden, NotFound
from ..store import consent_people, records
from ..store import revocations as revocation_store
from ..store.exchange_log import LogDraft
from ..store.records import RecordCache
from ..store.tables import Child, Plan, RevocationRecord, User
from .outbound import LogContext, PeerResult
from .ports import FederationNode
from .users import professional_ref

PEER_STATUS = {
    "timeout": "timed_out",
    "unreachable": "unreachable",
    "bad_reply": "invalid",
    "refused": "refused",
}


def granted_from(statement: ConsentStatement, holder: str, requester: str) -> list[str]:
    return sorted(
        {
            c.value
            for g in statement.grants
            if g.from_ == holder and requester in g.to
            for c in g.categories
        }
    )


Checked = list[VerifiedFragment]


def agencies_named(node: FederationNode, node_ids: list[str]) -> dict[str, dict[str, str]]:
    """Who runs each node the plan names: this node's agency from its config (with the
    official identifiers only it can state), each peer's from its verified node document
    (held in memory by the keyring). A node this one no longer trusts is left out."""
    found: dict[str, dict[str, str]] = {}
    for node_id in sorted(set(node_ids)):
        if node_id == node.node_id:
            own, ids = node.config.node, node.config.agency
            extra = {k: v for k, v in (("org_number", ids.org_number), ("hsa_id", ids.hsa_id)) if v}
            found[node_id] = {"name": own.agency_name, "kind": own.agency_kind.value, **extra}
        elif (agency := node.keyring.agency(node_id)) is not None:
            found[node_id] = {"name": agency.name, "kind": agency.kind}
    return found


@dataclass(frozen=True)
class LeadFacts:
    """What the lead reads from its own store for one assembly."""

    plan: Plan
    consent: dict[str, Any]
    members: dict[str, str]
    revocation: RevocationRecord | None
    child: Child | None
    own: dict[str, list[FragmentRecord]]


async def _waiting_for(node: FederationNode, plan_id: str, statement: dict[str, Any]) -> list[str]:
    """The required people of ``statement`` who have not consented, by name where known."""
    if not missing_refs(statement):
        return []
    async with node.store.reading() as conn:
        people = await consent_people.people_for_plan(conn, plan_id)
    return waiting_for(statement, {p.ref: p.name for p in people})


def _no_consent(consent_id: str | None) -> str:
    if consent_id is not None:
        return f"no consent {consent_id} recorded for this plan"
    return "no consent recorded for this plan: record the family's consent first"


def lead_facts(
    conn: Connection, plan_id: str, consent_id: str | None, parsed: RecordCache | None = None
) -> LeadFacts:
    """Every read of an assembly, in one read transaction: the plan, the consent (the newest,
    or the one asked for), whether it is revoked, participants, child, own fragments (a version
    already parsed is taken from ``parsed``)."""
    plan = records.get_plan_sync(conn, plan_id)
    if plan is None or plan.role != "lead":
        raise NotFound(f"no plan {plan_id} led by this node")
    statements = records.consents_for_plan_sync(conn, plan_id)
    if consent_id is not None:
        statements = [s for s in statements if s["consent_id"] == consent_id]
    if not statements:
        raise NotFound(_no_consent(consent_id))
    consent = statements[-1]
    revocation = revocation_store.get_revocation_sync(conn, consent["consent_id"], plan_id)
    return LeadFacts(
        plan=plan,
        consent=consent,
        members=records.participants_sync(conn, plan_id),
        revocation=revocation,
        child=records.get_child_sync(conn, plan.child_id or ""),
        own={}
        if revocation is not None
        else records.latest_fragments_sync(conn, plan_id, None, parsed),
    )


def _check_reply(
    node: FederationNode, result: PeerResult, plan_id: str, consent_id: str, asked: list[str]
) -> tuple[list[VerifiedFragment], list[dict[str, Any]], str | None]:
    """Verify every fragment of a reply; any bad fragment discredits the whole reply."""
    assert result.reply is not None
    body = result.reply.body
    assert isinstance(body, FragmentsResponse)
    keys = node.keyring.keys_for(result.peer) or []
    verified: list[VerifiedFragment] = []
    for raw in body.fragments:
        try:
            fragment, key_id = verify_fragment(raw, keys)
        except ProtocolError as exc:
            return [], [], exc.reason.value
        if (
            fragment.origin != result.peer
            or fragment.plan_id != plan_id
            or fragment.consent_id != consent_id
            or fragment.category.value not in asked
        ):
            return [], [], Reason.MALFORMED.value
        verified.append(VerifiedFragment(fragment, key_id))
    withheld = [
        {"category": w.category.value if w.category else None, "reason": w.reason.value}
        for w in body.withheld
    ]
    return verified, withheld, None


def _own_fragments(
    node: FederationNode, current: dict[str, list[FragmentRecord]], consent_id: str
) -> list[VerifiedFragment]:
    signed_at = format_time(node.clock.now())
    own: list[VerifiedFragment] = []
    for group in current.values():
        for f in group:
            # signed here a moment ago: no need to spend a verify on our own signature
            raw = node.release_cache.signed(f, consent_id, node.identity.key, signed_at)
            model = parse_document(Fragment, raw)  # strictly, as every signed object is read
            own.append(VerifiedFragment(model, node.identity.key.key_id))
    return own


async def assemble(
    node: FederationNode,
    actor: User,
    plan_id: str,
    *,
    consent_id: str | None = None,
    deadline_s: float | None = None,
) -> dict[str, Any]:
    """Ask every participant at once, verify, merge; return the shared plan (never stored)."""
    started = time.monotonic()
    try:
        return await _assemble(node, actor, plan_id, consent_id, deadline_s)
    finally:
        node.metrics.assembly_latency.observe(time.monotonic() - started)


async def _assemble(
    node: FederationNode,
    actor: User,
    plan_id: str,
    consent_id: str | None,
    deadline_s: float | None,
) -> dict[str, Any]:
    if actor.role != "lead":
        raise Forbidden("only the lead professional assembles the shared plan")
    facts = await node.store.read(lead_facts, plan_id, consent_id, node.release_cache.records)
    plan, members, revocation, child = facts.plan, facts.members, facts.revocation, facts.child
    statement = node.release_cache.consent(facts.consent)
    ref = professional_ref(node.node_id, actor)
    deadline = deadline_s or node.config.assembly.deadline_s
    peers = sorted(n for n, s in members.items() if n != node.node_id)
    statuses: dict[str, dict[str, Any]] = {}
    asks: dict[str, list[str]] = {}
    for peer in peers:
        if members[peer] in ("declined", "failed", "pending", "invited"):
            statuses[peer] = {"node_id": peer, "status": "not_linked", "reason": members[peer]}
            continue
        categories = granted_from(statement, peer, node.node_id)
        if revocation is not None:
            statuses[peer] = {
                "node_id": peer,
                "status": "withheld",
                "reason": Reason.CONSENT_REVOKED.value,
            }
        elif not categories:
            statuses[peer] = {
                "node_id": peer,
                "status": "not_requested",
                "reason": Reason.REQUESTER_NOT_GRANTED.value,
            }
        else:
            asks[peer] = categories
    context = LogContext(
        plan_id=plan_id,
        consent_id=statement.consent_id,
        purpose=statement.purpose.value,
        professional=ref,
    )

    drafts: list[LogDraft] = []  # every finished exchange, logged however the assembly ends

    async def ask(peer: str, cats: list[str]) -> tuple[dict[str, Any], Checked]:
        """One peer's request, and its reply checked as soon as it arrives (so the lead
        verifies fragments while slower peers are still answering)."""
        result, draft = await node.peers.exchange(
            peer,
            "fragments.request",
            FragmentsRequest.model_validate(
                {
                    "plan_id": plan_id,
                    "consent_id": statement.consent_id,
                    "categories": cats,
                    "purpose": statement.purpose.value,
                    "professional": ref,
                }
            ),
            LogContext(**{**context.__dict__, "categories": tuple(cats)}),
            timeout=deadline,
        )
        drafts.append(draft)
        entry: dict[str, Any] = {"node_id": peer, "requested": cats}
        if not result.ok:
            entry.update(
                status=PEER_STATUS.get(result.outcome, result.outcome), reason=result.reason
            )
            return entry, []
        verified, withheld, problem = _check_reply(
            node, result, plan_id, statement.consent_id, cats
        )
        if problem is None:
            entry.update(
                status="included" if verified else "withheld",
                fragments=len(verified),
                categories=sorted({v.fragment.category.value for v in verified}),
                withheld=withheld,
            )
            return entry, verified
        entry.update(status="invalid", reason=problem)
        # the request is logged "ok" (a signed reply arrived); record that its content was
        # then rejected, so the log says what the plan shows
        drafts.append(
            LogDraft(
                direction="in",
                peer=peer,
                message_type="fragments.response",
                message_id=result.reply.id if result.reply else "-",
                outcome="bad_reply",
                reason=problem,
                plan_id=plan_id,
                consent_id=statement.consent_id,
                purpose=statement.purpose.value,
                professional=ref,
                categories=cats,
                at=node.clock.now(),
            )
        )
        return entry, []

    tasks: list[asyncio.Task[tuple[dict[str, Any], Checked]]] = []
    try:
        for peer, cats in asks.items():
            tasks.append(asyncio.create_task(ask(peer, cats)))
            # let this request go out before the next is signed: the first peers start on
            # their answers at once instead of after the lead has signed every request
            await asyncio.sleep(0)
        answers = await asyncio.gather(*tasks)
    finally:
        # however the assembly ends (done, a failing check, cancelled), no request is left
        # running and every exchange that finished is logged, all in one transaction, before
        # the plan (or the error) is returned
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.shield(node.exchange_log.append_many(drafts))
    received = [v for _, verified in answers for v in verified]
    for entry, _ in answers:
        statuses[entry["node_id"]] = entry
    own = _own_fragments(node, facts.own, statement.consent_id)
    merged = merge_fragments(own + received)
    return {
        "plan_id": plan_id,
        "assembled_at": format_time(node.clock.now()),
        "status": "revoked" if revocation is not None else "active",
        "revoked_at": format_time(revocation.revoked_at) if revocation is not None else None,
        "purpose": plan.purpose,
        "reason": plan.reason,
        "child": {"name": child.name, "personnummer": child.personnummer} if child else None,
        "lead_node": node.node_id,
        "lead_professional": plan.lead_professional,
        "responsible_node": plan.responsible_node,
        "consent": {
            "consent_id": statement.consent_id,
            "issued_at": statement.issued_at,
            "valid_from": statement.valid_from,
            "valid_until": statement.valid_until,
            "expired": node.clock.now() >= parse_time(statement.valid_until),
            "given_by": [c.model_dump() for c in statement.given_by],
            # who the consent still waits for, by name (names stay at this node)
            "waiting_for": await _waiting_for(node, plan_id, facts.consent),
            "grants": [g.model_dump(by_alias=True, mode="json") for g in statement.grants],
        },
        "agencies": agencies_named(
            node,
            [node.node_id, *members, plan.responsible_node]
            + [n for g in statement.grants for n in (g.from_, *g.to)],
        ),
        "participants": [
            {
                "node_id": node.node_id,
                "role": "lead",
                **(
                    {"status": "withheld", "reason": Reason.CONSENT_REVOKED.value}
                    if revocation is not None
                    else {
                        "status": "included",
                        "fragments": len(own),
                        "categories": sorted({v.fragment.category.value for v in own}),
                    }
                ),
            },
            *(statuses[p] for p in peers),
        ],
        **merged,
    }
