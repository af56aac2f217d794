"""Handlers for each inbound request type. Each decides from what this node holds and returns
an ``Outcome``: reply body, log fields and the state change to commit with the log entry."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from protocol.clock import format_time, parse_time
from protocol.documents import verify_consent
from protocol.envelope import Verified
from protocol.errors import ProtocolError, Reason
from protocol.messages import (
    ConsentStatementMessage,
    FragmentsRequest,
    PlanInvite,
    PlanLink,
)

from ..domain.personnummer import PersonnummerError, normalize_personnummer
from ..domain.release import ConsentFacts, ReleaseRequest, decide_release
from ..errors import Refusal
from ..store import consent_people, records
from ..store import revocations as revocation_store
from ..store.tables import Plan
from . import key_updates, revocation, witness
from .inbound import Handler, Outcome
from .ports import FederationNode


async def plan_invite(node: FederationNode, message: Verified) -> Outcome:
    """Hold an invitation for a professional here to decide; answer ``pending``, always.

    The reply is the same whether or not this agency holds the child or already knows the plan
    (SPEC §7.1): an answer that said so would let any member learn who is on record here (e.g.
    a BUP patient). The children are therefore not even looked up here; a professional sees the
    matches when deciding (``plans.list_invitations``). A known plan id is never overwritten: the
    lead re-sending it changes nothing, and another sender's copy is only logged, as refused."""
    body = message.body
    assert isinstance(body, PlanInvite)
    if body.lead_node != message.sender:
        raise Refusal(Reason.MALFORMED, "only the lead node invites to its plan")
    if node.node_id not in body.participants:
        raise Refusal(Reason.NOT_PARTICIPANT, "this node is not among the participants")
    try:
        pnr = normalize_personnummer(body.child.personnummer, node.clock.now().date())
    except PersonnummerError as exc:
        raise Refusal(Reason.MALFORMED, f"child.personnummer: {exc}") from None
    outcome = Outcome(
        body={"plan_id": body.plan_id, "status": "pending"},
        plan_id=body.plan_id,
        purpose=body.purpose.value,
        professional=body.lead_professional,
    )
    async with node.store.reading() as conn:
        existing = await records.get_plan_on(conn, body.plan_id)
    if existing is not None:
        if existing.lead_node != message.sender:  # logged here; the sender learns nothing
            outcome.outcome, outcome.reason = "refused", Reason.PLAN_UNKNOWN.value
        return outcome
    plan = Plan(
        plan_id=body.plan_id,
        child_id=None,
        role="participant",
        status="pending",
        lead_node=body.lead_node,
        lead_professional=body.lead_professional,
        responsible_node=body.responsible_node,
        purpose=body.purpose.value,
        link_personnummer=pnr,
        created_at=node.clock.now(),
    )
    members = {n: "invited" for n in body.participants}
    members[body.lead_node] = "lead"
    members[node.node_id] = "pending"

    async def change(conn: AsyncConnection) -> None:
        # a concurrent invitation for the same id may have been stored since: keep that one
        await records.insert_plan_if_absent(conn, plan, members)

    outcome.change = change
    return outcome


# participant states in which the lead still waits for the invited node's answer (plan.link)
AWAITING_ANSWER = ("invited", "pending")


async def plan_link(node: FederationNode, message: Verified) -> Outcome:
    """A participant confirmed or declined a pending invitation to a plan this node leads."""
    body = message.body
    assert isinstance(body, PlanLink)
    plan = await records.get_plan(node.engine, body.plan_id)
    if plan is None or plan.role != "lead":
        raise Refusal(Reason.PLAN_UNKNOWN, "no such plan led by this node")
    members = await records.participants(node.engine, body.plan_id)
    status = members.get(message.sender)
    # only an answer this node waits for changes the plan: a node that declined, that the
    # invitation never reached, or that already answered otherwise cannot (re)join by saying so
    if status not in AWAITING_ANSWER and status != body.status:
        raise Refusal(Reason.NOT_PARTICIPANT, "no invitation to this plan awaits this answer")

    async def change(conn: AsyncConnection) -> None:
        await records.set_participant_status(conn, body.plan_id, message.sender, body.status)

    return Outcome(
        body={"ok": True}, plan_id=body.plan_id, professional=body.professional, change=change
    )


async def consent_statement(node: FederationNode, message: Verified) -> Outcome:
    """Verify a consent statement from the plan's lead node and store it as signed."""
    body = message.body
    assert isinstance(body, ConsentStatementMessage)
    raw = body.statement
    if raw.get("lead") != message.sender:  # only its lead distributes a statement (SPEC §7.3)
        raise Refusal(Reason.MALFORMED, "statement's lead is not the sending node")
    lead_keys = node.keyring.keys_for(message.sender) or []
    try:
        statement, _ = verify_consent(raw, lead_keys)
    except ProtocolError as exc:
        raise Refusal(exc.reason, f"statement: {exc.detail}") from None
    replaces = statement.replaces
    if replaces == statement.consent_id:
        raise Refusal(Reason.MALFORMED, "a statement cannot replace itself")
    async with node.store.reading() as conn:
        # a plan this node declined reads as unknown: it keeps no consent of a plan it is not in
        plan = await records.plan_facts(conn, statement.plan_id)
        known = await records.consent_statement(conn, statement.consent_id)
        revoked = await revocation_store.is_revoked(conn, statement.consent_id, statement.plan_id)
        replaced_plan = (
            await conn.run_sync(records.consent_plan_sync, replaces) if replaces else None
        )
    if plan is None or plan.lead_node != message.sender:
        raise Refusal(Reason.PLAN_UNKNOWN, "no such plan with this lead", code="not_lead_of_plan")
    if known is not None and known["plan_id"] != statement.plan_id:
        raise Refusal(Reason.CONSENT_OTHER_PLAN, "this consent id is held here for another plan")
    if replaced_plan is not None and replaced_plan != statement.plan_id:
        # only a plan's own lead replaces its consents: never one of a plan it does not lead
        raise Refusal(
            Reason.CONSENT_OTHER_PLAN,
            "the consent it replaces is held here for another plan",
            code="replaces_other_plan",
        )
    outcome = Outcome(
        body={},
        plan_id=statement.plan_id,
        consent_id=statement.consent_id,
        purpose=statement.purpose.value,
        professional=statement.recorded_by,
    )
    if revoked:
        outcome.body = {"consent_id": statement.consent_id, "status": "revoked"}
    if known is not None:
        outcome.body = outcome.body or {
            "consent_id": statement.consent_id,
            "status": "already_stored",
        }
        return outcome
    valid_until = parse_time(statement.valid_until)
    now = node.clock.now()

    async def change(conn: AsyncConnection) -> None:
        await records.insert_consent(conn, raw, valid_until, now)
        if replaces:  # durably, with the statement that replaces it (SPEC §7.3)
            await consent_people.record_replacement(
                conn, replaces, statement.plan_id, statement.consent_id, now
            )

    outcome.body = outcome.body or {"consent_id": statement.consent_id, "status": "stored"}
    outcome.change = change
    return outcome


async def fragments_request(node: FederationNode, message: Verified) -> Outcome:
    """Decide a release from the consent held here, now; sign what is released."""
    body = message.body
    assert isinstance(body, FragmentsRequest)
    await node.caught_up.wait()  # never release before missed revocations were pulled
    request = ReleaseRequest(
        holder=node.node_id,
        requester=message.sender,
        plan_id=body.plan_id,
        consent_id=body.consent_id,
        categories=tuple(c.value for c in body.categories),
        purpose=body.purpose.value,
    )
    now = node.clock.now()
    facts = await node.store.read(
        records.release_facts,
        body.plan_id,
        body.consent_id,
        list(request.categories),
        node.release_cache.records,
    )
    plan, raw, revoked, fragments = facts.plan, facts.statement, facts.revoked, facts.fragments
    statement = node.release_cache.consent(raw) if raw is not None else None
    consent = ConsentFacts(statement, revoked, facts.replaced)
    decision = decide_release(request, plan, consent, fragments, now)
    signed_at = format_time(now)
    released = [
        node.release_cache.signed(f, body.consent_id, node.identity.key, signed_at)
        for f in decision.released
    ]
    withheld = [(c, r.value) for c, r in decision.withheld]
    for category in decision.released_categories:
        node.metrics.release_decisions.labels(category, "released", "").inc()
    for category, reason in withheld:
        node.metrics.release_decisions.labels(category, "withheld", reason).inc()
    return Outcome(
        body={
            "plan_id": body.plan_id,
            "consent_id": body.consent_id,
            "fragments": released,
            "withheld": [{"category": c, "reason": r} for c, r in withheld],
        },
        outcome="released" if released else "withheld",
        reason=withheld[0][1] if withheld and not released else None,
        plan_id=body.plan_id,
        consent_id=body.consent_id,
        purpose=body.purpose.value,
        professional=body.professional,
        categories=list(request.categories),
        released=len(released),
        withheld=withheld,
        prepared=True,  # ids from the verified request, signed fragments, reason codes
    )


HANDLERS: dict[str, Handler] = {
    "hello": revocation.handle_hello,
    "consent.revoke": revocation.handle_revoke,
    "revocations.since": revocation.handle_since,
    "log.checkpoint": witness.handle_checkpoint,
    "plan.invite": plan_invite,
    "plan.link": plan_link,
    "consent.statement": consent_statement,
    "fragments.request": fragments_request,
    "keys.update": key_updates.handle_keys_update,
}
