"""A professional at any participating agency assembles the shared plan on demand, concurrently.

The lead's node and a participant's node run the same code: this node asks every other
participant (the lead node included) for what the consent it holds grants *this* node, under
that consent; each holder decides on every request (SPEC §11), and this node's own fragments
come from its own store. The lead's view is the fullest because the consent grants the lead the
most; a participant's view shows what the consent grants its agency and says, per agency and
category, what it is not shown and why (``not_shown``, ``not_granted``).

One deadline for all peers: every request runs with the same timeout and they run at once, so
the plan arrives in about the time of the slowest answering peer, at most the deadline. A peer
that is down, slow or answers garbage gets a status; the rest is shown. Nothing received is
written to the store; the exchange log records each request and its outcome.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from protocol.clock import format_time, parse_time
from protocol.codes import Category
from protocol.documents import parse_document, verify_fragment
from protocol.errors import ProtocolError, Reason
from protocol.messages import FragmentsRequest, FragmentsResponse
from protocol.models import ConsentStatement, Fragment

from ..domain.consent_people import missing_refs, waiting_for
from ..domain.records import FragmentRecord
from ..domain.shared_plan import VerifiedFragment, merge_fragments
from ..domain.shared_plan_shape import Agency, NotShown, Participant, SharedPlan, Withheld
from ..domain.statement_json import StatementJson
from ..errors import Forbidden, NotFound
from ..store import consent_people, records
from ..store import revocations as revocation_store
from ..store.exchange_log import LogDraft
from ..store.records import RecordCache
from ..store.tables import Child, Plan, RevocationRecord, User
from .fan_out import ask_each
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


def agencies_named(node: FederationNode, node_ids: list[str]) -> dict[str, Agency]:
    """Who runs each node the plan names: this node's agency from its config (with the
    official identifiers only it can state), each peer's from its verified node document
    (held in memory by the keyring). A node this one no longer trusts is left out."""
    found: dict[str, Agency] = {}
    for node_id in sorted(set(node_ids)):
        if node_id == node.node_id:
            own, ids = node.config.node, node.config.agency
            agency: Agency = {"name": own.agency_name, "kind": own.agency_kind.value}
            if ids.org_number:
                agency["org_number"] = ids.org_number
            if ids.hsa_id:
                agency["hsa_id"] = ids.hsa_id
            found[node_id] = agency
        elif (peer := node.keyring.agency(node_id)) is not None:
            found[node_id] = {"name": peer.name, "kind": peer.kind}
    return found


def consent_in_force(
    statements: list[StatementJson],
    revoked: Collection[str],
    replaced: Collection[str],
    now: datetime,
) -> StatementJson | None:
    """Which of the plan's held consent statements to assemble under: the newest by
    ``issued_at`` that is in force now (not revoked, not replaced by a later statement of the
    lead, SPEC §7.3, within its validity), else the newest not replaced (so the page can say it
    is revoked or expired), else the newest held; None when none is held.

    The one place this choice is made, for the lead and a participant alike."""
    if not statements:
        return None

    def in_force(s: StatementJson) -> bool:
        return (
            s["consent_id"] not in revoked
            and s["consent_id"] not in replaced
            and parse_time(s["valid_from"]) <= now < parse_time(s["valid_until"])
        )

    newest_first = sorted(statements, key=lambda s: parse_time(s["issued_at"]), reverse=True)
    current = [s for s in newest_first if s["consent_id"] not in replaced] or newest_first
    return next((s for s in current if in_force(s)), current[0])


@dataclass(frozen=True)
class AssemblyFacts:
    """What the assembling node reads from its own store for one assembly."""

    plan: Plan
    consent: StatementJson  # the statement in force, as held (verified when it was received)
    members: dict[str, str]
    revocation: RevocationRecord | None
    child: Child | None
    own: dict[str, list[FragmentRecord]]


async def _waiting_for(node: FederationNode, plan_id: str, statement: StatementJson) -> list[str]:
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


def _taking_part(plan: Plan | None, plan_id: str) -> Plan:
    """The plan, if this node takes part in it; a clear refusal otherwise."""
    if plan is None:  # nothing held here: as for any unknown plan, not found
        raise NotFound(
            f"this agency does not take part in plan {plan_id}",
            code="not_taking_part",
            params={"plan_id": plan_id},
        )
    if plan.status == "declined":
        raise Forbidden(
            f"this agency does not take part in plan {plan_id}",
            code="not_taking_part",
            params={"plan_id": plan_id},
        )
    if plan.status == "pending":
        raise Forbidden(
            f"the invitation to plan {plan_id} is not linked to a child here yet",
            code="invitation_not_linked",
            params={"plan_id": plan_id},
        )
    return plan


def assembly_facts(
    conn: Connection,
    plan_id: str,
    consent_id: str | None,
    now: datetime,
    parsed: RecordCache | None = None,
) -> AssemblyFacts:
    """Every read of an assembly, in one read transaction: the plan (led here or joined), the
    consent (the one asked for, or ``consent_in_force``), whether it is revoked, participants,
    child, own fragments (a version already parsed is taken from ``parsed``)."""
    plan = _taking_part(records.get_plan_sync(conn, plan_id), plan_id)
    statements = records.consents_for_plan_sync(conn, plan_id)
    if consent_id is not None:
        statements = [s for s in statements if s["consent_id"] == consent_id]
    revoked = {
        s["consent_id"]
        for s in statements
        if revocation_store.get_revocation_sync(conn, s["consent_id"], plan_id) is not None
    }
    replaced = consent_people.replacements_for_plan_sync(conn, plan_id)
    consent = consent_in_force(statements, revoked, replaced, now)
    if consent is None:
        raise NotFound(_no_consent(consent_id), code="no_consent")
    revocation = revocation_store.get_revocation_sync(conn, consent["consent_id"], plan_id)
    return AssemblyFacts(
        plan=plan,
        consent=consent,
        members=records.participants_sync(conn, plan_id),
        revocation=revocation,
        child=records.get_child_sync(conn, plan.child_id or ""),
        own={}
        if revocation is not None
        else records.latest_fragments_sync(conn, plan_id, None, parsed),
    )


# statuses of a participant this node knows does not (yet) take part: the lead knows who linked;
# a participant only knows who was invited, so it asks them and lets each holder decide
def _not_linked(own_role: str, status: str) -> bool:
    if status in records.NOT_TAKING_PART:
        return True
    return own_role == "lead" and status in ("pending", "invited")


def not_granted_by(statement: ConsentStatement, holder: str, viewer: str) -> list[Withheld]:
    """The categories the consent lets ``holder`` release to someone, but not to ``viewer``,
    each with the reason code the holder would give (SPEC §11)."""
    named = {c.value for g in statement.grants if g.from_ == holder for c in g.categories}
    mine = set(granted_from(statement, holder, viewer))
    reason = Reason.CATEGORY_NOT_GRANTED if mine else Reason.REQUESTER_NOT_GRANTED
    return [{"category": c, "reason": reason.value} for c in sorted(named - mine)]


def not_granted_at_all(statement: ConsentStatement, viewer: str) -> list[str]:
    """The categories no other agency may release to ``viewer`` under the consent."""
    granted = {
        c.value
        for g in statement.grants
        if g.from_ != viewer and viewer in g.to
        for c in g.categories
    }
    return [c.value for c in Category if c.value not in granted]


def explain_not_shown(participants: list[Participant], viewer: str) -> list[NotShown]:
    """What the viewer is not shown, per agency: one entry per (agency, reason) with its
    categories (empty when the whole agency is not shown: it did not answer, or is not linked).
    Derived only from the holders' answers and the consent, as codes; pages word them."""
    shown: list[NotShown] = []
    for p in participants:
        if p["node_id"] == viewer:
            continue
        groups: dict[tuple[str, str | None], list[str]] = {}
        for w in [*p.get("withheld", []), *p.get("not_granted", [])]:
            groups.setdefault(("withheld", w["reason"]), []).append(w["category"] or "")
        status = p["status"]
        if status not in ("included", "withheld", "not_requested"):
            groups.setdefault((status, p.get("reason")), [])
        elif status == "withheld" and not p.get("withheld") and p.get("reason"):
            groups.setdefault(("withheld", p["reason"]), [])
        for (kind, reason), cats in groups.items():
            shown.append(
                {
                    "node_id": p["node_id"],
                    "status": kind,
                    "reason": reason,
                    "categories": sorted({c for c in cats if c}),
                }
            )
    return shown


def _check_reply(
    node: FederationNode,
    result: PeerResult,
    plan_id: str,
    consent_id: str,
    asked: list[str],
    lead: str,
) -> tuple[list[VerifiedFragment], list[Withheld], str | None]:
    """Verify every fragment of a reply; any bad fragment discredits the whole reply. Only
    the plan's ``lead`` speaks for the family: ``written_by`` on any other node's fragment, or
    outside category ``family``, is a claim no participant may make (SPEC §6.3)."""
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
            or (
                fragment.content.written_by is not None
                and (fragment.origin != lead or fragment.category.value != "family")
            )
        ):
            return [], [], Reason.MALFORMED.value
        verified.append(VerifiedFragment(fragment, key_id))
    withheld: list[Withheld] = [
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
    led_here: bool = False,
) -> SharedPlan:
    """Ask every other participant at once for what the consent grants this node, verify,
    merge with this node's own fragments; return the shared plan (never stored).

    ``led_here``: only for a plan this node leads (the family's copy and the FHIR export are
    the lead's: they speak for the whole plan), refused before any peer is asked."""
    started = time.monotonic()
    try:
        return await _assemble(node, actor, plan_id, consent_id, deadline_s, led_here)
    finally:
        node.metrics.assembly_latency.observe(time.monotonic() - started)


async def _assemble(
    node: FederationNode,
    actor: User,
    plan_id: str,
    consent_id: str | None,
    deadline_s: float | None,
    led_here: bool,
) -> SharedPlan:
    if actor.role not in ("professional", "lead"):
        # operators review logs and queues; they never see plan content
        raise Forbidden("only professionals see a shared plan", code="operator_reads_content")
    facts = await node.store.read(
        assembly_facts, plan_id, consent_id, node.clock.now(), node.release_cache.records
    )
    plan, members, revocation, child = facts.plan, facts.members, facts.revocation, facts.child
    if led_here and plan.role != "lead":
        raise NotFound(
            f"no plan {plan_id} led by this node", code="no_led_plan", params={"plan_id": plan_id}
        )
    statement = node.release_cache.consent(facts.consent)
    ref = professional_ref(node.node_id, actor)
    deadline = deadline_s or node.config.assembly.deadline_s
    peers = sorted(n for n, s in members.items() if n != node.node_id)
    closed = plan.status == "closed"
    statuses: dict[str, Participant] = {}
    asks: dict[str, list[str]] = {}
    for peer in peers:
        if _not_linked(plan.role, members[peer]):
            statuses[peer] = {"node_id": peer, "status": "not_linked", "reason": members[peer]}
            continue
        categories = granted_from(statement, peer, node.node_id)
        if revocation is not None or closed:
            # every holder would withhold (SPEC §11): nothing is asked, the reason is shown
            statuses[peer] = {
                "node_id": peer,
                "status": "withheld",
                "reason": (Reason.CONSENT_REVOKED if revocation else Reason.PLAN_CLOSED).value,
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

    async def ask(peer: str, cats: list[str]) -> tuple[Participant, Checked]:
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
        entry: Participant = {"node_id": peer, "status": "included", "requested": cats}
        if not result.ok:
            entry["status"] = PEER_STATUS.get(result.outcome, result.outcome)
            entry["reason"] = result.reason
            return entry, []
        verified, withheld, problem = _check_reply(
            node, result, plan_id, statement.consent_id, cats, statement.lead
        )
        if problem is None:
            entry["status"] = "included" if verified else "withheld"
            entry["fragments"] = len(verified)
            entry["categories"] = sorted({v.fragment.category.value for v in verified})
            entry["withheld"] = withheld
            return entry, verified
        entry["status"], entry["reason"] = "invalid", problem
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

    answers = await ask_each(asks.items(), lambda item: ask(*item), node.exchange_log, drafts)
    received = [v for _, verified in answers for v in verified]
    for entry, _ in answers:
        statuses[entry["node_id"]] = entry
    for peer in peers:
        missing = not_granted_by(statement, peer, node.node_id)
        asked_or_not = statuses[peer]["status"] != "not_linked"
        if revocation is None and not closed and asked_or_not and missing:
            statuses[peer]["not_granted"] = missing
    own = _own_fragments(node, facts.own, statement.consent_id)
    merged = merge_fragments(own + received)
    viewer: Participant = {"node_id": node.node_id, "status": "included", "viewer": True}
    if revocation is not None:
        viewer["status"], viewer["reason"] = "withheld", Reason.CONSENT_REVOKED.value
    else:
        viewer["fragments"] = len(own)
        viewer["categories"] = sorted({v.fragment.category.value for v in own})
    participants = [viewer, *(statuses[p] for p in peers)]
    for entry in participants:
        if entry["node_id"] == plan.lead_node:
            entry["role"] = "lead"
    return {
        "plan_id": plan_id,
        "assembled_at": format_time(node.clock.now()),
        "status": "revoked" if revocation is not None else "closed" if closed else "active",
        "revoked_at": format_time(revocation.revoked_at) if revocation is not None else None,
        "purpose": plan.purpose,
        "reason": plan.reason,
        "child": {"name": child.name, "personnummer": child.personnummer} if child else None,
        "lead_node": plan.lead_node,
        "viewer": {"node_id": node.node_id, "role": plan.role},
        "lead_professional": plan.lead_professional,
        "responsible_node": plan.responsible_node,
        "consent": {
            "consent_id": statement.consent_id,
            "issued_at": statement.issued_at,
            "valid_from": statement.valid_from,
            "valid_until": statement.valid_until,
            "expired": node.clock.now() >= parse_time(statement.valid_until),
            "given_by": [{"ref": c.ref, "role": c.role} for c in statement.given_by],
            # who the consent still waits for, by name (names stay at this node)
            "waiting_for": await _waiting_for(node, plan_id, facts.consent),
            "grants": [
                {"from": g.from_, "to": list(g.to), "categories": [c.value for c in g.categories]}
                for g in statement.grants
            ],
        },
        "agencies": agencies_named(
            node,
            [node.node_id, *members, plan.responsible_node]
            + [n for g in statement.grants for n in (g.from_, *g.to)],
        ),
        "participants": participants,
        "not_shown": explain_not_shown(participants, node.node_id),
        "not_granted": []
        if revocation is not None
        else not_granted_at_all(statement, node.node_id),
        **merged,
    }
