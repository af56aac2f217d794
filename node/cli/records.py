"""CLI commands over this node's records: users, children, plans, invitations, fragments, consent.

Each command does what the matching ``/api/v1`` call does, through the same service.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..config import NodeConfig
from ..errors import FieldProblem, InvalidInput
from ..services import children as child_service
from ..services import consents as consent_service
from ..services import fragments as fragment_service
from ..services import plans as plan_service
from ..services import users as user_service
from ..services.plans import PlanView
from ..services.provider_sign_in import subject_as_stored
from ..store import records
from ..store.tables import User
from .main import answered, echo_json, node_dir_option, run_async
from .opened import acting_user, opened_node

as_option = click.option("--as", "as_user", required=True, help="User id to act as.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def users() -> None:
    """Users of this node and their bearer tokens."""


@users.command("add")
@node_dir_option
@click.argument("user_id")
@click.option("--name", "display_name", required=True, help="Display name.")
@click.option("--role", type=click.Choice(user_service.ROLES), required=True)
@click.option(
    "--subject",
    help="The person's stable id at the agency's OpenID provider (the oidc.subject_claim "
    "value, e.g. their HSA-id): they sign in through the provider with this role. An identity "
    "number is kept only as a keyed hash.",
)
@click.option("--issuer", help="The provider's issuer URL for --subject (default: oidc.issuer).")
@run_async
async def users_add(
    directory: Path,
    user_id: str,
    display_name: str,
    role: str,
    subject: str | None,
    issuer: str | None,
) -> None:
    """Add a user; prints the bearer token once (store it safely)."""
    async with opened_node(directory) as node:
        provider = None
        if subject is not None:
            provider = provider_subject(node.config, subject, issuer)
        user, token = await user_service.add_user(
            node.engine, user_id, display_name, role, node.clock.now(), provider
        )
    click.echo(f"added {user.user_id} ({user.role})")
    if provider is not None:
        click.echo(f"signs in through {provider[0]}")
    click.echo(f"token: {token}")


def provider_subject(config: NodeConfig, subject: str, issuer: str | None) -> tuple[str, str]:
    """(issuer, subject as stored) for ``users add --subject``; a clear error if no issuer."""
    chosen = issuer or config.oidc.issuer
    if not chosen:
        raise InvalidInput(
            "--subject needs the provider: set oidc.issuer in barnplan.toml or give --issuer",
            code="missing",
            fields={"issuer": FieldProblem("missing", "required")},
        )
    if not subject.strip():
        raise InvalidInput(
            "--subject must not be empty",
            code="missing",
            fields={"subject": FieldProblem("missing", "required")},
        )
    return chosen, subject_as_stored(config, subject.strip())


@users.command("list")
@node_dir_option
@click.option(
    "--residents",
    is_flag=True,
    help="Also list the residents (the family) who signed in at /familj: no name, only an id.",
)
@json_option
@run_async
async def users_list(directory: Path, residents: bool, as_json: bool) -> None:
    """List the staff's users, active or disabled (never their tokens).

    Residents who signed in with e-identification are users too, with no name (their names
    stay in the plans' records of people); they are left out unless ``--residents``."""
    async with opened_node(directory) as node:
        rows = await records.list_users(node.engine, None if residents else user_service.ROLES)
    data = [user_json(u) for u in rows]
    if as_json:
        echo_json(data)
    for u in [] if as_json else data:
        state = "disabled" if u["disabled"] else "active"
        click.echo(f"{u['user_id']:20} {u['role']:13} {state:9} {u['display_name']}")


def user_json(user: User) -> dict[str, Any]:
    """A user as ``users ... --json`` prints it (never the token hash or the password hash)."""
    disabled_at = user.disabled_at.isoformat() if user.disabled_at else None
    return {
        "user_id": user.user_id,
        "display_name": user.display_name,
        "role": user.role,
        "disabled": disabled_at is not None,
        "disabled_at": disabled_at,
        "provider": user.oidc_issuer,
        "subject": user.oidc_subject,
    }


@users.command("token")
@node_dir_option
@click.argument("user_id")
@json_option
@run_async
async def users_token(directory: Path, user_id: str, as_json: bool) -> None:
    """Issue a new bearer token for USER_ID; the old one stops at once.

    Use it when a token may have leaked or was lost. The new token is printed once: store it
    safely. Web passwords and sessions are not affected.
    """
    async with opened_node(directory) as node:
        user, token = await user_service.replace_token(node.engine, user_id)
    if as_json:
        echo_json({**user_json(user), "token": token})
        return
    click.echo(f"new token for {user.user_id} ({user.role}); the old one no longer works")
    click.echo(f"token: {token}")
    if user.disabled_at is not None:
        click.echo(f"note: {user.user_id} is disabled: the token works once enabled again")


@users.command("disable")
@node_dir_option
@click.argument("user_id")
@json_option
@run_async
async def users_disable(directory: Path, user_id: str, as_json: bool) -> None:
    """Stop USER_ID from using the node (API, web login, sessions).

    For someone who left the agency or whose access is in doubt. From the next request on,
    their bearer token gets 401, their password no longer signs in and their open web
    sessions end. The user and what they did stay on record; 'barnplan users enable' lets
    them in again with the same token and password.
    """
    async with opened_node(directory) as node:
        user = await user_service.disable_user(node.engine, user_id, node.clock.now())
    if as_json:
        echo_json(user_json(user))
        return
    click.echo(f"disabled {user.user_id} (since {user_json(user)['disabled_at']})")


@users.command("enable")
@node_dir_option
@click.argument("user_id")
@json_option
@run_async
async def users_enable(directory: Path, user_id: str, as_json: bool) -> None:
    """Let a disabled USER_ID in again with the same token and password.

    If the token or the password may have leaked meanwhile, replace them too
    ('barnplan users token', 'barnplan users passwd').
    """
    async with opened_node(directory) as node:
        user = await user_service.enable_user(node.engine, user_id)
    if as_json:
        echo_json(user_json(user))
        return
    click.echo(f"enabled {user.user_id} ({user.role})")


@click.group()
def children() -> None:
    """Children as this agency knows them (identity stays on this node)."""


@children.command("add")
@node_dir_option
@click.option("--name", required=True)
@click.option("--personnummer", required=True, help="YYYYMMDD-NNNN")
@json_option
@run_async
async def children_add(directory: Path, name: str, personnummer: str, as_json: bool) -> None:
    """Add a child record."""
    async with opened_node(directory) as node:
        child = await child_service.add_child(node.engine, name, personnummer, node.clock.now())
    if as_json:
        echo_json({"child_id": child.child_id, "name": child.name})
    else:
        click.echo(child.child_id)


@children.command("list")
@node_dir_option
@json_option
@run_async
async def children_list(directory: Path, as_json: bool) -> None:
    """List child records."""
    async with opened_node(directory) as node:
        rows = await records.list_children(node.engine)
    if as_json:
        echo_json([{"child_id": c.child_id, "name": c.name} for c in rows])
        return
    for c in rows:
        click.echo(f"{c.child_id}  {c.name}")


@click.group()
def plans() -> None:
    """Plans this node leads or takes part in."""


@plans.command("create")
@node_dir_option
@as_option
@click.option("--child", "child_id", required=True, help="Child id on this node.")
@click.option(
    "--participant",
    "participants",
    multiple=True,
    required=True,
    help="Node id of an agency to invite (repeat).",
)
@click.option("--purpose", default="sip", show_default=True)
@click.option("--reason", default="", help="Why the plan exists.")
@click.option("--responsible", default=None, help="Node with overall responsibility.")
@json_option
@run_async
async def plans_create(
    directory: Path,
    as_user: str,
    child_id: str,
    participants: tuple[str, ...],
    purpose: str,
    reason: str,
    responsible: str | None,
    as_json: bool,
) -> None:
    """Create a plan and invite the participants."""
    async with opened_node(directory) as node:
        actor = await acting_user(node, as_user)
        view = await plan_service.create_plan(
            node,
            actor,
            child_id=child_id,
            participants=list(participants),
            purpose=purpose,
            reason=reason,
            responsible_node=responsible,
        )
    _print_plan(view, as_json)


def _print_plan(view: PlanView, as_json: bool) -> None:
    if as_json:
        echo_json(view)
        return
    click.echo(f"plan {view['plan_id']} ({view['role']}, {view['status']})")
    for p in view["participants"]:
        click.echo(f"  {p['node_id']:32} {p['status']}")


@plans.command("list")
@node_dir_option
@json_option
@click.option(
    "--status",
    "which",
    type=click.Choice(list(plan_service.PLAN_LISTS)),
    default="active",
    show_default=True,
    help="Which plans: the active ones, the closed ones, or all of them.",
)
@run_async
async def plans_list(directory: Path, as_json: bool, which: str) -> None:
    """List this agency's plans (active ones unless --status says otherwise)."""
    async with opened_node(directory) as node:
        views = await plan_service.list_plan_views(node, which)
    if as_json:
        echo_json(views)
        return
    for v in views:
        click.echo(f"{v['plan_id']}  {v['role']:11} lead {v['lead_node']}")


@click.group()
def invitations() -> None:
    """Plan invitations waiting for a professional to link or decline."""


@invitations.command("list")
@node_dir_option
@json_option
@run_async
async def invitations_list(directory: Path, as_json: bool) -> None:
    """List pending invitations, each with the children here that match it."""
    async with opened_node(directory) as node:
        pending = await plan_service.list_invitations(node)
    data = [
        {"plan_id": p["plan_id"], "lead_node": p["lead_node"], "matches": p["matches"]}
        for p in pending
    ]
    if as_json:
        echo_json(data)
    for d in [] if as_json else data:
        matches = ", ".join(d["matches"]) or "none (add the child, or decline)"
        click.echo(f"{d['plan_id']}  from {d['lead_node']}  matching children: {matches}")


@invitations.command("link")
@node_dir_option
@as_option
@click.argument("plan_id")
@click.option("--child", "child_id", required=True, help="The local child it is about.")
@run_async
async def invitations_link(directory: Path, as_user: str, plan_id: str, child_id: str) -> None:
    """Link a pending invitation to a local child and tell the lead."""
    async with opened_node(directory) as node:
        actor = await acting_user(node, as_user)
        view = await plan_service.resolve_invitation(
            node, actor, plan_id, child_id=child_id, decline=False
        )
    click.echo(f"linked; lead notified: {view['lead_notified']}")


@invitations.command("decline")
@node_dir_option
@as_option
@click.argument("plan_id")
@run_async
async def invitations_decline(directory: Path, as_user: str, plan_id: str) -> None:
    """Decline a pending invitation and tell the lead."""
    async with opened_node(directory) as node:
        actor = await acting_user(node, as_user)
        view = await plan_service.resolve_invitation(
            node, actor, plan_id, child_id=None, decline=True
        )
    click.echo(f"declined; lead notified: {view['lead_notified']}")


@click.group()
def fragments() -> None:
    """This agency's own fragments of a plan."""


@fragments.command("add")
@node_dir_option
@as_option
@click.argument("plan_id")
@click.option("--category", required=True)
@click.option("--indicator", "indicators", multiple=True, help="SHANARRI indicator (repeat).")
@click.option(
    "--content",
    "content_file",
    type=click.File("r"),
    required=True,
    help="JSON file with needs, goals, actions, views, next_review ('-' for stdin).",
)
@click.option("--fragment", "fragment_id", default=None, help="Make a new version of this one.")
@json_option
@run_async
async def fragments_add(
    directory: Path,
    as_user: str,
    plan_id: str,
    category: str,
    indicators: tuple[str, ...],
    content_file: Any,
    fragment_id: str | None,
    as_json: bool,
) -> None:
    """Author a fragment (or a new version of one)."""
    try:
        content = json.load(content_file)
    except ValueError as exc:
        raise click.ClickException(f"--content is not valid JSON: {exc}") from None
    except RecursionError:
        raise click.ClickException("--content nests too deeply to be a fragment") from None
    if not isinstance(content, dict):
        raise click.ClickException("--content must hold a JSON object")
    async with opened_node(directory) as node:
        actor = await acting_user(node, as_user)
        view = await fragment_service.author_fragment(
            node,
            actor,
            plan_id,
            category=category,
            indicators=list(indicators),
            content=content,
            fragment_id=fragment_id,
        )
    if as_json:
        echo_json(view)
    else:
        click.echo(f"{view['fragment_id']} version {view['version']}")


@click.group()
def consent() -> None:
    """The family's consent to share (recorded by the lead professional)."""


def _person(text: str) -> dict[str, str]:
    ref, _, role = text.partition(":")
    if not ref or role not in ("guardian", "child", "young_person"):
        raise click.BadParameter(f"{text!r}: use REF:guardian|child|young_person")
    return {"ref": ref, "role": role}


def _grant(text: str) -> dict[str, Any]:
    parts = text.split(":")
    if len(parts) != 3 or not all(parts):
        raise click.BadParameter(f"{text!r}: use FROM:TO[,TO...]:CATEGORY[,CATEGORY...]")
    return {"from": parts[0], "to": parts[1].split(","), "categories": parts[2].split(",")}


@consent.command("record")
@node_dir_option
@as_option
@click.argument("plan_id")
@click.option(
    "--required",
    "required",
    multiple=True,
    required=True,
    help="Whose consent is needed, REF:ROLE (repeat; both custodians).",
)
@click.option(
    "--given-by", "given_by", multiple=True, required=True, help="Who consented, REF:ROLE (repeat)."
)
@click.option(
    "--grant",
    "grants",
    multiple=True,
    required=True,
    help="FROM:TO[,TO...]:CATEGORY[,CATEGORY...] (repeat).",
)
@click.option("--purpose", default="sip", show_default=True)
@click.option("--valid-from", required=True, help="RFC 3339 time, e.g. 2026-12-01T00:00:00Z")
@click.option("--valid-until", required=True)
@click.option("--evidence", required=True, help="Reference to the signed paper or e-form.")
@json_option
@run_async
async def consent_record(
    directory: Path,
    as_user: str,
    plan_id: str,
    required: tuple[str, ...],
    given_by: tuple[str, ...],
    grants: tuple[str, ...],
    purpose: str,
    valid_from: str,
    valid_until: str,
    evidence: str,
    as_json: bool,
) -> None:
    """Sign the family's consent as a statement and distribute it to every participant."""
    async with opened_node(directory) as node:
        actor = await acting_user(node, as_user)
        result = await consent_service.record_consent(
            node,
            actor,
            plan_id,
            given_by=[_person(g) for g in given_by],
            required=[_person(r) for r in required],
            grants=[_grant(g) for g in grants],
            purpose=purpose,
            valid_from=valid_from,
            valid_until=valid_until,
            evidence_ref=evidence,
        )
    if as_json:
        echo_json({k: v for k, v in result.items() if k != "statement"})
        return
    click.echo(f"consent {result['consent_id']}")
    for d in result["distribution"]:
        click.echo(f"  {d['node_id']:32} {d['outcome']} {d.get('status', d.get('reason', ''))}")


@consent.command("revoke")
@node_dir_option
@as_option
@click.argument("consent_id")
@json_option
@run_async
async def consent_revoke(directory: Path, as_user: str, consent_id: str, as_json: bool) -> None:
    """Record a guardian's withdrawal of consent; notices go to every participant."""
    from ..services.revocation import record_revocation

    async with opened_node(directory) as node:
        actor = await acting_user(node, as_user)
        result = await record_revocation(node, actor, consent_id)
        delivered = await node.outbox.drain()
    if as_json:
        echo_json({**result, "acknowledged_now": delivered})
        return
    click.echo(
        f"revoked {consent_id}; {delivered} of {len(result['notified'])} peers "
        "acknowledged now (the rest are retried by the running node)"
    )


@click.command()
@node_dir_option
@click.option("--all", "include_delivered", is_flag=True, help="Include delivered notices.")
@json_option
@run_async
async def outbox(directory: Path, include_delivered: bool, as_json: bool) -> None:
    """Notices waiting for delivery: backlog per peer, attempts, next attempt, last error."""
    from ..store.revocations import outbox_rows

    async with opened_node(directory) as node, node.engine.connect() as conn:
        rows = await outbox_rows(conn, include_delivered)
    data = [
        {
            "peer": r.peer,
            "type": r.message_type,
            "attempts": r.attempts,
            "next_attempt_at": r.next_attempt_at.isoformat(),
            "last_error": r.last_error,
            "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
            "created_at": r.created_at.isoformat(),
        }
        for r in rows
    ]
    if as_json:
        echo_json(data)
        return
    if not data:
        click.echo("outbox empty: every notice has been acknowledged")
        return
    backlog: dict[str, int] = {}
    for r in rows:
        backlog[r.peer] = backlog.get(r.peer, 0) + (0 if r.delivered_at else 1)
    for peer, count in sorted(backlog.items()):
        click.echo(f"{peer}: {count} pending")
    for d in data:
        state = (
            f"delivered {d['delivered_at']}"
            if d["delivered_at"]
            else (f"next {d['next_attempt_at']}")
        )
        click.echo(f"  {d['type']:16} attempts {d['attempts']:3}  {state}  {d['last_error'] or ''}")


@users.command("passwd")
@node_dir_option
@click.argument("user_id")
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from the first line of standard input instead of prompting.",
)
@run_async
async def users_passwd(directory: Path, user_id: str, password_stdin: bool) -> None:
    """Set USER_ID's password for the web pages (asked twice; at least 10 characters).

    Setting a new password ends the user's open web sessions. API tokens are not affected.
    """
    import sys

    from ..config import load_config
    from ..services import passwords as password_service

    if not load_config(directory).auth.passwords:
        raise click.ClickException(
            "passwords are off on this node ([auth] passwords = false in barnplan.toml): staff "
            "sign in through the identity provider; turn passwords on first to set one"
        )
    password: str
    if password_stdin:
        try:
            password = sys.stdin.readline().rstrip("\r\n")
        except UnicodeDecodeError:
            raise click.ClickException("the password on standard input is not UTF-8 text") from None
    else:
        password = answered(
            lambda: str(
                click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password")
            ),
            "give the password with --password-stdin",
        )
    async with opened_node(directory) as node:
        await password_service.set_password(node.engine, user_id, password)
    click.echo(f"password set for {user_id}")
