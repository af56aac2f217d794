"""SQLModel tables of a node. Only this agency's own records live here (DESIGN.md invariant 1).

Times are stored as aware UTC datetimes; JSON documents as text exactly as received or signed,
so signatures over them can be re-checked later.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Index, Text, UniqueConstraint, false, text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores them naive; we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_column(nullable: bool = False, index: bool = False) -> Column:  # type: ignore[type-arg,unused-ignore]
    return Column(UTCDateTime(), nullable=nullable, index=index)


class OwnKey(SQLModel, table=True):
    """This node's signing keys: the current one and retired ones kept for old signatures."""

    __tablename__ = "own_key"

    key_id: str = Field(primary_key=True, max_length=300)
    public: str = Field(max_length=64)
    valid_from: datetime = Field(sa_column=utc_column())
    valid_until: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    file: str = Field(max_length=500)
    # the signed node document that announced this key, signed by the key before it (SPEC.md
    # §4.6); published while it still describes the node, so a peer that missed the
    # announcement learns the key by fetching the document (migration 0011)
    introduction: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Peer(SQLModel, table=True):
    """A trusted peer node, recorded after an operator checked its key fingerprint."""

    __tablename__ = "peer"

    node_id: str = Field(primary_key=True, max_length=253)
    base_url: str = Field(max_length=500)
    agency_name: str = Field(max_length=200)
    agency_kind: str = Field(max_length=40)
    document: str = Field(sa_column=Column(Text, nullable=False))
    fingerprint: str = Field(max_length=64)
    added_at: datetime = Field(sa_column=utc_column())
    last_contact_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class SeenMessage(SQLModel, table=True):
    """Replay memory: ids of verified inbound envelopes, kept until they expire."""

    __tablename__ = "seen_message"

    sender: str = Field(primary_key=True, max_length=253)
    message_id: str = Field(primary_key=True, max_length=36)
    expires_at: datetime = Field(sa_column=utc_column(index=True))


class User(SQLModel, table=True):
    """A person using this node: professional, lead professional or operator.

    Only a hash of the bearer token is kept; the token itself is shown once when issued.
    """

    __tablename__ = "app_user"
    __table_args__ = (
        Index("ix_app_user_oidc_subject", "oidc_issuer", "oidc_subject", unique=True),
    )

    user_id: str = Field(primary_key=True, max_length=64)
    display_name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=utc_column())
    # argon2id hash for the web pages' login; None: this user has no password (API token only)
    password_hash: str | None = Field(default=None, max_length=200)
    # set by ``barnplan users disable``: the user is refused everywhere (API, login, sessions)
    # but kept, so what they did stays attributed; None: the user may use the node
    disabled_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # web sessions signed in before this are over (set when the user is disabled, and kept when
    # they are enabled again, so a session left unused meanwhile does not come back)
    sessions_since: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    # a person who signs in through the agency's OpenID provider: its issuer and their stable
    # subject there (an identity number only as a keyed hash: node/oidc/identity.py)
    oidc_issuer: str | None = Field(default=None, max_length=255)
    oidc_subject: str | None = Field(default=None, max_length=255)
    # True: the role follows the provider's claims at every sign-in (a user the node created
    # from them); False: the role an operator gave (pre-registered, or a password user)
    role_from_claims: bool = Field(default=False, sa_column_kwargs={"server_default": false()})


class WebSession(SQLModel, table=True):
    """A signed-in web session. The session cookie carries a random id; only its SHA-256 is
    kept here. Signing out deletes the row, so a copy of the cookie taken before is refused on
    its next request by every process serving the store, while the user's other sessions go
    on. Rows past ``expires_at`` are refused and purged."""

    __tablename__ = "web_session"

    session_hash: str = Field(primary_key=True, max_length=64)
    user_id: str = Field(foreign_key="app_user.user_id", max_length=64, index=True)
    created_at: datetime = Field(sa_column=utc_column())
    expires_at: datetime = Field(sa_column=utc_column(index=True))
    # the provider's ID token of a session signed in through it (its logout needs it back)
    oidc_id_token: str | None = Field(default=None, sa_type=Text)
    # the provider's session id (the ID token's ``sid``): its back-channel logout names it
    oidc_sid: str | None = Field(default=None, max_length=255, index=True)
    # the session's last request (written at most once a minute), for the idle timeout
    last_seen_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class LoginThrottle(SQLModel, table=True):
    """Failed web logins of one subject (a user id, or a client address) in the window that
    began at ``window_start``. ``subject`` is a SHA-256 of the kind and the value, so neither
    what an attacker typed nor a client's address is kept as such. A row goes only when its
    window is over (by time, never to make room), so flooding cannot lift a lock."""

    __tablename__ = "login_throttle"

    subject: str = Field(primary_key=True, max_length=64)
    window_start: datetime = Field(sa_column=utc_column(index=True))
    failures: int = Field(default=0)


class Child(SQLModel, table=True):
    """A child as this agency knows it. Name and personnummer never leave this node's store,
    except the personnummer inside a plan invitation to link the same child at a peer."""

    __tablename__ = "child"

    child_id: str = Field(primary_key=True, max_length=36)
    name: str = Field(max_length=200)
    personnummer: str = Field(max_length=12, index=True)
    created_at: datetime = Field(sa_column=utc_column())


class Plan(SQLModel, table=True):
    """A plan this node leads or takes part in. ``link_personnummer`` is held only while an
    invitation waits for a professional to confirm which child it is, then cleared."""

    __tablename__ = "plan"

    plan_id: str = Field(primary_key=True, max_length=36)
    child_id: str | None = Field(default=None, foreign_key="child.child_id", max_length=36)
    role: str = Field(max_length=12)  # lead | participant
    status: str = Field(max_length=12)  # active | pending | declined | closed
    lead_node: str = Field(max_length=253)
    lead_professional: str = Field(max_length=320)
    responsible_node: str = Field(max_length=253)
    purpose: str = Field(max_length=20)
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    link_personnummer: str | None = Field(default=None, max_length=12)
    created_at: datetime = Field(sa_column=utc_column())
    # the plan's details, kept at the lead only (migration 0017): who coordinates it and how to
    # reach them, and the next review meeting
    coordinator_name: str | None = Field(default=None, max_length=200)
    coordinator_contact: str | None = Field(default=None, max_length=200)
    review_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))
    review_place: str | None = Field(default=None, max_length=200)
    # when the lead closed the plan (status ``closed``); final (SPEC §7.11)
    closed_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class PlanParticipant(SQLModel, table=True):
    __tablename__ = "plan_participant"

    plan_id: str = Field(primary_key=True, foreign_key="plan.plan_id", max_length=36)
    node_id: str = Field(primary_key=True, max_length=253)
    status: str = Field(max_length=12)  # lead | invited | linked | pending | declined | failed


class FragmentVersion(SQLModel, table=True):
    """One version of one of this agency's own fragments; the highest version is current."""

    __tablename__ = "fragment_version"

    fragment_id: str = Field(primary_key=True, max_length=36)
    version: int = Field(primary_key=True)
    plan_id: str = Field(foreign_key="plan.plan_id", max_length=36, index=True)
    category: str = Field(max_length=40)
    indicators: str = Field(max_length=200)  # comma-separated codes
    content: str = Field(sa_column=Column(Text, nullable=False))
    authored_by: str = Field(max_length=64)
    authored_at: datetime = Field(sa_column=utc_column())


class Consent(SQLModel, table=True):
    """A consent statement signed by a plan's lead node, exactly as signed."""

    __tablename__ = "consent"

    consent_id: str = Field(primary_key=True, max_length=36)
    plan_id: str = Field(max_length=36, index=True)
    statement: str = Field(sa_column=Column(Text, nullable=False))
    valid_until: datetime = Field(sa_column=utc_column())
    received_at: datetime = Field(sa_column=utc_column())
    expired_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class ExchangeLogEntry(SQLModel, table=True):
    """One exchange with a peer. Ids, types, categories, counts, outcomes and reasons only —
    never plan content, names or identity numbers (DESIGN.md invariant 3)."""

    __tablename__ = "exchange_log"

    seq: int = Field(primary_key=True)
    at: datetime = Field(sa_column=utc_column(index=True))
    direction: str = Field(max_length=3)  # in | out
    peer: str = Field(max_length=253, index=True)
    message_type: str = Field(max_length=64)
    message_id: str = Field(max_length=36)
    plan_id: str | None = Field(default=None, max_length=36, index=True)
    consent_id: str | None = Field(default=None, max_length=36)
    purpose: str | None = Field(default=None, max_length=20)
    professional: str | None = Field(default=None, max_length=320)
    categories: str = Field(default="", max_length=400)
    released: int = Field(default=0)
    withheld: str = Field(default="", max_length=2000)  # "category:reason,..."
    outcome: str = Field(max_length=20)
    reason: str | None = Field(default=None, max_length=40)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class RevocationRecord(SQLModel, table=True):
    """A consent revocation this node knows of. Final: it is never deleted. Without a matching
    consent row it is a tombstone, so a late statement can never re-enable release.

    It revokes the consent within ``plan_id`` only: the plan of the consent's statement, or for
    a tombstone the plan its notice named. A tombstone that names another plan than the
    statement that arrives later revokes nothing, and the consent's own revocation is still
    recorded beside it (unique per consent *and* plan, migration 0012)."""

    __tablename__ = "revocation"
    __table_args__ = (UniqueConstraint("consent_id", "plan_id", name="uq_revocation_consent_plan"),)

    seq: int = Field(primary_key=True)
    consent_id: str = Field(max_length=36)
    plan_id: str = Field(max_length=36, index=True)
    revoked_at: datetime = Field(sa_column=utc_column())
    revoked_by: str = Field(max_length=253)
    notice_id: str = Field(max_length=36)
    recorded_at: datetime = Field(sa_column=utc_column())


class OutboxItem(SQLModel, table=True):
    """A message that must reach a peer (revocation notices): retried until acknowledged."""

    __tablename__ = "outbox"
    # due items are looked up every second: index only the undelivered ones (migration 0007)
    __table_args__ = (
        Index(
            "ix_outbox_undelivered_due",
            "next_attempt_at",
            sqlite_where=text("delivered_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )

    item_id: str = Field(primary_key=True, max_length=36)
    peer: str = Field(max_length=253, index=True)
    message_type: str = Field(max_length=64)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=utc_column())
    attempts: int = Field(default=0)
    next_attempt_at: datetime = Field(sa_column=utc_column(index=True))
    last_error: str | None = Field(default=None, max_length=200)
    delivered_at: datetime | None = Field(default=None, sa_column=utc_column(nullable=True))


class PeerState(SQLModel, table=True):
    """Per-peer catch-up state: the last revocation seq pulled from that peer."""

    __tablename__ = "peer_state"

    node_id: str = Field(primary_key=True, max_length=253)
    revocation_cursor: int = Field(default=0)
    # the last closure seq pulled from that peer (closures.since, migration 0017)
    closure_cursor: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class PlanClosure(SQLModel, table=True):
    """A plan's closing, recorded by its lead or received from it (SPEC §7.11). Final: never
    deleted; ``seq`` is this node's own order, the cursor peers page by in ``closures.since``."""

    __tablename__ = "plan_closure"

    seq: int = Field(primary_key=True)
    plan_id: str = Field(max_length=36, unique=True)
    closed_at: datetime = Field(sa_column=utc_column())
    closed_by: str = Field(max_length=253)
    notice_id: str = Field(max_length=36)
    recorded_at: datetime = Field(sa_column=utc_column())


class LogCheckpoint(SQLModel, table=True):
    """A signed statement of this node's exchange-log head: (seq, hash) at a moment."""

    __tablename__ = "log_checkpoint"

    seq: int = Field(primary_key=True)
    head_hash: str = Field(max_length=64)
    signed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=utc_column())


class CheckpointWitness(SQLModel, table=True):
    """A peer's countersignature over one of our checkpoints."""

    __tablename__ = "checkpoint_witness"

    seq: int = Field(primary_key=True)
    witness: str = Field(primary_key=True, max_length=253)
    signed: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=utc_column())


class WitnessedCheckpoint(SQLModel, table=True):
    """A peer's checkpoint we countersigned: our copy, so their history cannot be rewritten
    without ours showing it."""

    __tablename__ = "witnessed_checkpoint"

    origin: str = Field(primary_key=True, max_length=253)
    seq: int = Field(primary_key=True)
    head_hash: str = Field(max_length=64)
    signed: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = Field(sa_column=utc_column())


class WitnessEvent(SQLModel, table=True):
    """What this node did as a witness that its operators must see (SPEC.md §7.8): a peer's
    checkpoint it refused as not a consistent extension of what it witnessed (``refused``,
    with the ``problem``), or a peer's restore declaration it accepted (``restore``), with the
    checkpoints of that peer the declaration set aside kept as evidence."""

    __tablename__ = "witness_event"

    id: int | None = Field(default=None, primary_key=True)
    origin: str = Field(max_length=253, index=True)
    at: datetime = Field(sa_column=utc_column(index=True))
    kind: str = Field(max_length=16)  # refused | restore
    problem: str | None = Field(default=None, max_length=32)
    # refused: the checkpoint's seq and head; restore: the entry the log was restored to
    seq: int
    head_hash: str = Field(max_length=64)
    seen_seq: int | None = None  # the highest seq witnessed of that log before
    signed: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    superseded: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class LogRestore(SQLModel, table=True):
    """This node's own restore declarations (``barnplan log restored``); the latest is sent
    with every checkpoint, so its peers' witnesses accept the history continuing from it."""

    __tablename__ = "log_restore"

    id: int | None = Field(default=None, primary_key=True)
    seq: int
    head_hash: str = Field(max_length=64)
    signed: str = Field(sa_column=Column(Text, nullable=False))
    declared_at: datetime = Field(sa_column=utc_column())


class LogVerification(SQLModel, table=True):
    """The outcome of one ``barnplan log verify`` run (whichever process ran it), so the
    running node's ``/metrics`` and ``barnplan status`` can say when the log was last verified
    and whether it held."""

    __tablename__ = "log_verification"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=utc_column(index=True))
    ok: bool
    entries: int
    checkpoints: int
    witnesses: int
    problems: int


class ConsentReplacement(SQLModel, table=True):
    """A consent replaced within its plan by a later statement of the plan's lead (``replaces``,
    SPEC.md §7.3). Final, like a revocation: never deleted, so a replaced consent cannot come
    back. Kept also when the replaced statement has not arrived yet: it arrives replaced."""

    __tablename__ = "consent_replacement"
    __table_args__ = (
        UniqueConstraint("consent_id", "plan_id", name="uq_consent_replacement_consent_plan"),
    )

    id: int | None = Field(default=None, primary_key=True)
    consent_id: str = Field(max_length=36)  # the replaced consent
    plan_id: str = Field(max_length=36, index=True)
    replaced_by: str = Field(max_length=36)
    recorded_at: datetime = Field(sa_column=utc_column())


class ConsentPerson(SQLModel, table=True):
    """A person whose consent a plan needs, as the lead recorded them (at the lead node only:
    names never leave it; the wire carries ``ref``, a plan-local reference such as ``p1``).

    ``answer`` is consents / declines / not_asked / unreachable; ``answered_on``, ``method``
    (signed_form / e_form / meeting) and ``form_ref`` say when and how. For the child, ``age``,
    ``maturity`` (the professional's assessment of age and maturity) and ``view`` (the child's
    own view on sharing) record what GIRFEC practice asks."""

    __tablename__ = "consent_person"
    __table_args__ = (UniqueConstraint("plan_id", "ref", name="uq_consent_person_plan_ref"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: str = Field(max_length=36, index=True)
    ref: str = Field(max_length=32)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    required: bool
    answer: str = Field(max_length=20)
    answered_on: str | None = Field(default=None, max_length=10)  # ISO date
    method: str | None = Field(default=None, max_length=20)
    form_ref: str | None = Field(default=None, max_length=200)
    age: int | None = Field(default=None)
    maturity: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    view: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = Field(sa_column=utc_column())
    # the keyed hash of the person's personal identity number (``node.oidc.resident``), when
    # the lead recorded it: how the person, signing in with e-identification, finds the plan
    identity_hash: str | None = Field(default=None, max_length=80, index=True)


class LogArchive(SQLModel, table=True):
    """One ``barnplan log archive`` run: the entries up to ``seq`` (from ``first_seq``) moved
    out of the store into an archive file. The latest row (highest ``seq``) is the live log's
    boundary: ``log verify`` walks the chain from entry ``seq + 1``, whose ``prev_hash`` must be
    ``head_hash``, and checks ``signed`` (this node's checkpoint of entry ``seq``) and the
    ``log.archive`` entry the run appended (message id ``archive-<seq>``)."""

    __tablename__ = "log_archive"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(index=True)
    head_hash: str = Field(max_length=64)
    first_seq: int
    entries: int
    signed: str = Field(sa_column=Column(Text, nullable=False))
    file_sha256: str = Field(max_length=64)
    archived_at: datetime = Field(sa_column=utc_column())
