"""The access report: who has received what about the child (SPEC.md §7.12).

Two sides. **Holder** (``handle_access_report``): only the plan's lead, as this node knows the
plan, may ask, and only for that plan; anyone else gets the same ``plan_unknown`` refusal
whether or not this node knows the plan (invariant 9: no oracle). The answer is read from this
node's own exchange log (``store.access_report``), so it says exactly what the log says.

**Lead** (``access_timeline``): asks every linked participant at once with one deadline, as
the assembly does, verifies each signed reply (``PeerClient``), pages on with the cursor while
the deadline lasts, and merges the replies with the lead's own releases from its own log into
one timeline. A participant that does not answer is shown as such. The function takes a plan
id and returns a typed ``AccessTimeline``, so a page for the family can call it as the lead's
page does.

The acting professional is reported by *role* only: ``lead_professional`` when the reference
that asked is the plan's lead professional as the holder knows the plan, else
``professional``. The reference itself is added only where the holder's agency allows naming
staff (``[agency] access_report_names_staff``); no name or other personal data is added to
the exchange log for this.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Connection

from protocol.clock import format_time, parse_time
from protocol.envelope import Verified
from protocol.errors import Reason
from protocol.messages import (
    ACCESS_REPORT_PAGE,
    AccessReport,
    AccessReportRequest,
    ReleaseRecord,
)

from ..domain.json_object import JsonObject
from ..errors import Forbidden, NotFound, Refusal
from ..store import records
from ..store.access_report import LoggedRelease, archived_before, releases_for_plan
from ..store.exchange_log import LogDraft
from ..store.tables import Plan, User
from .fan_out import ask_each
from .inbound import Outcome
from .outbound import LogContext
from .ports import FederationNode
from .users import professional_ref

REQUEST_TYPE = "access.report.request"
# the most pages the lead reads from one holder for one report (200 releases a page)
MAX_PAGES = 50
# participants whose state says they never took part: not asked (they made no release)
NOT_ASKED = ("declined", "failed", "pending", "invited")
PEER_STATUS = {
    "timeout": "not_answered",
    "unreachable": "not_answered",
    "bad_reply": "invalid",
    "refused": "refused",
}


def release_role(professional: str | None, plan: Plan) -> str:
    """The acting professional's role, from the plan as this node knows it."""
    return "lead_professional" if professional == plan.lead_professional else "professional"


def _release_body(entry: LoggedRelease, plan: Plan, names_staff: bool) -> JsonObject:
    body: JsonObject = {
        "seq": entry.seq,
        "at": format_time(entry.at),
        "recipient": entry.recipient,
        "consent_id": entry.consent_id,
        "purpose": entry.purpose,
        "released": list(entry.released),
        "withheld": [{"category": c, "reason": r} for c, r in entry.withheld],
        "role": release_role(entry.professional, plan),
    }
    if names_staff and entry.professional:
        body["professional"] = entry.professional
    return body


def _archived_for(conn: Connection, plan: Plan) -> datetime | None:
    """When this node's log is complete from, if it archived entries the plan may be in: the
    plan began before (or as) the first entry the log kept was logged."""
    since = archived_before(conn)
    return since if since is not None and plan.created_at <= since else None


def _report_page(
    conn: Connection, plan_id: str, sender: str, cursor: int
) -> tuple[Plan | None, list[LoggedRelease], datetime | None]:
    """The plan, if ``sender`` leads it as this node knows it, one page of its releases (plus
    one, to know whether more follow) and when the log is complete from (``_archived_for``),
    in one read. Nothing more is read for any other sender, so a refusal costs the same
    whether or not the plan is known here."""
    plan = records.get_plan_sync(conn, plan_id)
    if plan is None or plan.lead_node != sender:
        return None, [], None
    page = releases_for_plan(conn, plan_id, cursor, ACCESS_REPORT_PAGE + 1)
    return plan, page, _archived_for(conn, plan)


async def handle_access_report(node: FederationNode, message: Verified) -> Outcome:
    """Holder side: answer the plan's lead from this node's own exchange log.

    Any sender that is not the lead of ``plan_id`` as this node knows the plan (a participant,
    another member, a node naming a plan this node does not know) is refused ``plan_unknown``
    with the same detail, so the refusal says nothing about what is held here."""
    body = message.body
    assert isinstance(body, AccessReportRequest)
    plan, page, archived = await node.store.read(
        _report_page, body.plan_id, message.sender, body.cursor
    )
    if plan is None:
        raise Refusal(Reason.PLAN_UNKNOWN, "no such plan with this lead")
    more = len(page) > ACCESS_REPORT_PAGE
    page = page[:ACCESS_REPORT_PAGE]
    names_staff = node.config.agency.access_report_names_staff
    reply: JsonObject = {
        "plan_id": body.plan_id,
        "releases": [_release_body(e, plan, names_staff) for e in page],
        "cursor": page[-1].seq if page else body.cursor,
        "more": more,
    }
    if archived is not None:
        reply["archived_before"] = format_time(archived)
    return Outcome(
        body=reply,
        plan_id=body.plan_id,
        purpose=body.purpose.value,
        professional=body.professional,
    )


# --- the lead's side ------------------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseEntry:
    """One release decision in the timeline: ``holder`` released ``released`` (and withheld
    ``withheld``) to ``recipient`` at ``at``."""

    at: datetime
    holder: str
    recipient: str
    consent_id: str
    purpose: str
    released: tuple[str, ...]
    withheld: tuple[tuple[str, str], ...]
    role: str
    professional: str | None = None


@dataclass(frozen=True)
class HolderStatus:
    """How one participant's part of the report went: ``answered`` (its releases are in the
    timeline; ``complete`` False when it had more than the lead read in time), ``not_answered``
    (down, slow: "svarade inte"), ``refused`` or ``invalid`` (a reply that failed checks; none
    of it is shown), or ``not_asked`` (it never took part; ``reason`` says its state).
    ``archived_before``: the holder archived its log's start while the plan ran, so its
    releases before then are not shown."""

    node_id: str
    status: str
    reason: str | None = None
    releases: int = 0
    complete: bool = True
    archived_before: datetime | None = None


@dataclass(frozen=True)
class AccessTimeline:
    plan_id: str
    generated_at: datetime
    entries: tuple[ReleaseEntry, ...]
    holders: tuple[HolderStatus, ...]

    def as_json(self) -> JsonObject:
        """The timeline as the JSON API returns it."""
        return {
            "plan_id": self.plan_id,
            "generated_at": format_time(self.generated_at),
            "releases": [
                {
                    "at": format_time(e.at),
                    "holder": e.holder,
                    "recipient": e.recipient,
                    "consent_id": e.consent_id,
                    "purpose": e.purpose,
                    "released": list(e.released),
                    "withheld": [{"category": c, "reason": r} for c, r in e.withheld],
                    "role": e.role,
                    **({"professional": e.professional} if e.professional else {}),
                }
                for e in self.entries
            ],
            "holders": [
                {
                    "node_id": h.node_id,
                    "status": h.status,
                    **({"reason": h.reason} if h.reason else {}),
                    "releases": h.releases,
                    "complete": h.complete,
                    **(
                        {"archived_before": format_time(h.archived_before)}
                        if h.archived_before
                        else {}
                    ),
                }
                for h in self.holders
            ],
        }


@dataclass(frozen=True)
class _LeadReads:
    plan: Plan
    members: dict[str, str]
    own: list[LoggedRelease]
    archived_before: datetime | None


def _lead_reads(conn: Connection, plan_id: str) -> _LeadReads:
    plan = records.get_plan_sync(conn, plan_id)
    if plan is None or plan.role != "lead":
        raise NotFound(f"no plan {plan_id} led by this node")
    members = records.participants_sync(conn, plan_id)
    # the lead's own releases: its whole log for the plan (no page limit on its own store)
    own: list[LoggedRelease] = []
    while True:
        page = releases_for_plan(conn, plan_id, own[-1].seq if own else 0, 1000)
        own.extend(page)
        if len(page) < 1000:
            return _LeadReads(plan, members, own, _archived_for(conn, plan))


def _own_entry(node_id: str, plan: Plan, e: LoggedRelease, names_staff: bool) -> ReleaseEntry:
    return ReleaseEntry(
        at=e.at,
        holder=node_id,
        recipient=e.recipient,
        consent_id=e.consent_id,
        purpose=e.purpose,
        released=e.released,
        withheld=e.withheld,
        role=release_role(e.professional, plan),
        professional=e.professional if names_staff else None,  # this agency's own policy
    )


async def access_timeline(
    node: FederationNode,
    plan_id: str,
    *,
    professional: str | None = None,
    deadline_s: float | None = None,
) -> AccessTimeline:
    """Ask every participant of a plan this node leads for the releases it made, verify, and
    merge them with this node's own into one timeline (newest first).

    ``professional``: the reference named in the requests (default: the plan's lead
    professional, e.g. when a family page asks). The caller decides who may see the result;
    ``report_for`` is the lead professional's entry."""
    reads = await node.store.read(_lead_reads, plan_id)
    plan, members, own = reads.plan, reads.members, reads.own
    ref = professional or plan.lead_professional
    deadline = deadline_s or node.config.assembly.deadline_s
    purpose = plan.purpose
    peers = sorted(n for n in members if n != node.node_id)
    statuses: dict[str, HolderStatus] = {}
    asked: list[str] = []
    for peer in peers:
        if members[peer] in NOT_ASKED:
            statuses[peer] = HolderStatus(peer, "not_asked", members[peer])
        else:
            asked.append(peer)
    drafts: list[LogDraft] = []
    context = LogContext(plan_id=plan_id, purpose=purpose, professional=ref)
    loop_deadline = time.monotonic() + deadline

    async def ask(peer: str) -> tuple[HolderStatus, list[ReleaseEntry]]:
        entries: list[ReleaseEntry] = []
        cursor = 0
        archived: datetime | None = None
        for _ in range(MAX_PAGES):
            left = loop_deadline - time.monotonic()
            if left <= 0:
                return _partial(peer, entries, "timeout", archived), entries
            result, draft = await node.peers.exchange(
                peer,
                REQUEST_TYPE,
                AccessReportRequest.model_validate(
                    {"plan_id": plan_id, "cursor": cursor, "purpose": purpose, "professional": ref}
                ),
                context,
                timeout=left,
            )
            drafts.append(draft)
            if not result.ok or result.reply is None:
                if entries:  # earlier pages verified: shown, marked incomplete
                    return _partial(peer, entries, result.reason, archived), entries
                status = PEER_STATUS.get(result.outcome, result.outcome)
                return HolderStatus(peer, status, result.reason), []
            body = result.reply.body
            assert isinstance(body, AccessReport)
            problem = _check_page(body, plan_id, cursor)
            if problem is not None:
                drafts.append(_bad_reply(node, peer, result.reply.id, problem, context))
                return HolderStatus(peer, "invalid", problem), []
            entries.extend(_peer_entry(peer, r) for r in body.releases)
            if body.archived_before is not None:
                archived = parse_time(body.archived_before)
            if not body.more:
                done = HolderStatus(peer, "answered", None, len(entries), archived_before=archived)
                return done, entries
            cursor = body.cursor
        return _partial(peer, entries, "too_many", archived), entries

    answers = await ask_each(asked, ask, node.exchange_log, drafts)
    names_staff = node.config.agency.access_report_names_staff
    entries = [_own_entry(node.node_id, plan, e, names_staff) for e in own]
    for status, received in answers:
        statuses[status.node_id] = status
        entries.extend(received)
    entries.sort(key=lambda e: (e.at, e.holder), reverse=True)
    holders = [
        HolderStatus(
            node.node_id, "answered", None, len(own), archived_before=reads.archived_before
        )
    ]
    holders.extend(statuses[p] for p in peers)
    return AccessTimeline(plan_id, node.clock.now(), tuple(entries), tuple(holders))


def _partial(
    peer: str, entries: list[ReleaseEntry], reason: str | None, archived: datetime | None
) -> HolderStatus:
    return HolderStatus(
        peer, "answered", reason, len(entries), complete=False, archived_before=archived
    )


def _check_page(body: AccessReport, plan_id: str, cursor: int) -> str | None:
    """A page the lead can show: for the plan asked about, releases in increasing seq after
    the cursor, and a cursor that moves on while more follow (else the paging would loop)."""
    if body.plan_id != plan_id:
        return Reason.MALFORMED.value
    seqs = [r.seq for r in body.releases]
    if seqs != sorted(set(seqs)) or (seqs and seqs[0] <= cursor):
        return Reason.MALFORMED.value
    if body.more and (not seqs or body.cursor != seqs[-1]):
        return Reason.MALFORMED.value
    return None


def _peer_entry(peer: str, r: ReleaseRecord) -> ReleaseEntry:
    withheld = tuple((w.category.value if w.category else "-", w.reason.value) for w in r.withheld)
    return ReleaseEntry(
        at=parse_time(r.at),
        holder=peer,
        recipient=r.recipient,
        consent_id=r.consent_id,
        purpose=r.purpose.value,
        released=tuple(c.value for c in r.released),
        withheld=withheld,
        role=r.role,
        professional=r.professional,
    )


def _bad_reply(
    node: FederationNode, peer: str, reply_id: str, problem: str, context: LogContext
) -> LogDraft:
    """The request is logged ``ok`` (a signed reply arrived); record that its content was then
    rejected, so the log says what the page shows (as the assembly does)."""
    return LogDraft(
        direction="in",
        peer=peer,
        message_type="access.report",
        message_id=reply_id,
        outcome="bad_reply",
        reason=problem,
        plan_id=context.plan_id,
        purpose=context.purpose,
        professional=context.professional,
        at=node.clock.now(),
    )


async def report_for(
    node: FederationNode, actor: User, plan_id: str, *, deadline_s: float | None = None
) -> AccessTimeline:
    """The lead professional's access report of a plan this node leads."""
    if actor.role != "lead":
        raise Forbidden("only the lead professional sees who has received what")
    return await access_timeline(
        node, plan_id, professional=professional_ref(node.node_id, actor), deadline_s=deadline_s
    )


__all__ = [
    "AccessTimeline",
    "HolderStatus",
    "ReleaseEntry",
    "access_timeline",
    "handle_access_report",
    "report_for",
]
