"""``barnplan demo``: a small federation on loopback that walks through the whole mission.

Four agencies, each its own ``barnplan serve`` process with its own SQLite store and keys:
Kungsbacka school (elevhälsa), Kungsbacka social services (IFO, the lead), Region Halland child
psychiatry (BUP) and the police. Everything goes through the same CLI and HTTP API a user has;
all people and numbers are synthetic.
"""

from __future__ import annotations

import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from protocol.clock import SystemClock, format_time
from protocol.envelope import sign_envelope
from protocol.keys import load_private_key

from .demo_family import (
    GUARDIAN_LOGIN,
    GUARDIAN_NUMBER,
    RESIDENTS_NAME,
    family_visit,
    start_residents_provider,
)
from .dev_provider import (
    Client,
    DevProvider,
    new_signing_key,
    point_node_at,
    provider_unavailable,
)
from .loopback_ports import below_ephemeral, pick_port

SCHOOL, IFO, BUP, POLICE = (
    "elevhalsa.kungsbacka.se",
    "ifo.kungsbacka.se",
    "bup.regionhalland.se",
    "polisen-halland.polisen.se",
)
DEMO_NODES = (
    (SCHOOL, "Kungsbacka kommun, elevhälsa", "school", "education"),
    (IFO, "Kungsbacka kommun, IFO", "social_services", "social"),
    (BUP, "Region Halland, BUP", "child_psychiatry", "mental_health"),
    (POLICE, "Polisen, region Väst", "police", "police"),
)
LEAD = IFO
DEMO_ROLES = (("lead", "lead"), ("prof", "professional"), ("ops", "operator"))
PROVIDER_NAME = "Demo-inloggning"
CHILD = {"name": "Alva Demosson", "personnummer": "20140812-2388"}  # synthetic test number


@dataclass
class DemoNode:
    node_id: str
    name: str
    kind: str
    category: str
    directory: Path
    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class DemoError(click.ClickException):
    pass


DEMO_PASSWORD = "demo-losenord-2026"  # demo only: synthetic data on loopback


def _cli(*args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "node", *args], capture_output=True, text=True, input=stdin
    )
    if result.returncode != 0:
        raise DemoError(f"barnplan {args[0]} failed: {result.stderr.strip()}")
    return result.stdout


def step(number: int, text: str) -> None:
    click.echo("")
    click.echo(click.style(f"[{number}] {text}", bold=True))


def ok(text: str) -> None:
    click.echo(f"    ✓ {text}")


def api(node: DemoNode, method: str, path: str, user: str, body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        node.url + "/api/v1" + path,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {node.tokens[user]}",
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as err:
        raise DemoError(
            f"{node.node_id} {method} {path}: {err.code} {err.read()[:300]!r}"
        ) from None


def probe(lead: DemoNode, holder: DemoNode, plan_id: str, consent_id: str) -> tuple[int, str]:
    """Ask ``holder`` for its category as the lead would: (fragments released, reasons)."""
    key = load_private_key(lead.directory / "node.key", lead.node_id, datetime.now(UTC))
    envelope = sign_envelope(
        type="fragments.request",
        body={
            "plan_id": plan_id,
            "consent_id": consent_id,
            "categories": [holder.category],
            "purpose": "sip",
            "professional": f"{lead.node_id}/u/lead",
        },
        sender=lead.node_id,
        to=holder.node_id,
        key=key,
        clock=SystemClock(),
        message_id=str(uuid.uuid4()),
    )
    request = urllib.request.Request(
        holder.url + "/federation/v1/messages",
        data=json.dumps(envelope).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=20) as resp:
        body = json.loads(resp.read())["body"]
    return len(body["fragments"]), ",".join(w["reason"] for w in body["withheld"]) or "-"


def start(node: DemoNode) -> None:
    log = open(node.directory / "serve.log", "ab")  # noqa: SIM115 - owned by the child
    node.proc = subprocess.Popen(
        [sys.executable, "-m", "node", "serve", "--dir", str(node.directory)],
        stdout=log,
        stderr=log,
    )


def wait_healthy(node: DemoNode, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.proc is not None and node.proc.poll() is not None:
            raise DemoError(f"{node.node_id} exited; see {node.directory}/serve.log")
        try:
            with urllib.request.urlopen(node.url + "/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise DemoError(f"{node.node_id} did not start; see {node.directory}/serve.log")


def stop(node: DemoNode) -> None:
    stop_nodes([node])


def stop_nodes(nodes: list[DemoNode]) -> None:
    """Ask every running node to stop at once, then wait for each (killing one that hangs)."""
    running = [n for n in nodes if n.proc is not None and n.proc.poll() is None]
    for node in running:
        assert node.proc is not None
        node.proc.terminate()
    for node in running:
        assert node.proc is not None
        try:
            node.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.proc.kill()
            node.proc.wait()
    for node in nodes:
        node.proc = None


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _stop_requested(signum: int, _frame: object) -> None:
    """Unwind from wherever the demo is, so its ``finally`` stops the nodes it started."""
    raise SystemExit(128 + signum)


@contextmanager
def stopping_nodes_on_signals(runner: Demo) -> Iterator[None]:
    """The nodes are child processes nobody else knows about: a plain ``kill`` (SIGTERM), a
    closed terminal (SIGHUP) or Ctrl-C (SIGINT) must not leave them running. Each signal
    unwinds the demo; while the nodes are stopped, further signals are ignored so a second
    Ctrl-C cannot cut the cleanup short."""
    previous = {s: signal.signal(s, _stop_requested) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)
        try:
            runner.stop_all()
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)


def fragment_for(node: DemoNode) -> dict[str, Any]:
    """A synthetic fragment in the agency's own words."""
    texts = {
        "education": (
            "Hög frånvaro under höstterminen",
            "Närvaro över 90 %",
            "Mentor följer upp närvaron varje vecka",
            "Mentor",
            "achieving",
        ),
        "social": (
            "Familjen behöver stöd i vardagen",
            "Trygg vardag hemma",
            "Föräldraskapsstöd varannan vecka",
            "Familjebehandlare",
            "nurtured",
        ),
        "mental_health": (
            "Oro och sömnsvårigheter",
            "Sover bättre och känner mindre oro",
            "Samtal på BUP varannan vecka",
            "Psykolog",
            "healthy",
        ),
        "police": (
            "Utsatt för hot på väg hem",
            "Känna sig trygg på väg hem",
            "Samverkan kring skolvägen",
            "Kommunpolis",
            "safe",
        ),
    }
    need, goal, action, who, indicator = texts[node.category]
    today = datetime.now(UTC).date()
    return {
        "category": node.category,
        "indicators": [indicator],
        "content": {
            "summary": f"{node.name}: {need.lower()}.",
            "needs": [{"what": need}],
            "goals": [{"what": goal, "by": (today + timedelta(days=180)).isoformat()}],
            "actions": [
                {
                    "what": action,
                    "who": who,
                    "start": today.isoformat(),
                    "end": (today + timedelta(days=120)).isoformat(),
                    "status": "ongoing",
                }
            ],
            "child_view": "Jag vill att det ska kännas lugnt i skolan."
            if node.category == "education"
            else "",
            "family_view": "Vi vill ha en plan, inte fyra." if node.category == "social" else "",
            "next_review": (today + timedelta(days=60 + len(node.category))).isoformat(),
            "internal_note": "Intern anteckning – visas inte i familjens kopia.",
        },
    }


class Demo:
    """The walk-through; each step prints what it did and what came of it."""

    def __init__(self, workdir: Path, with_provider: bool = False) -> None:
        self.workdir = workdir
        ports: set[int] = set()
        self.nodes = [
            DemoNode(i, n, k, c, workdir / i, pick_port(*below_ephemeral(), ports))
            for i, n, k, c in DEMO_NODES
        ]
        self.by_id = {n.node_id: n for n in self.nodes}
        self.with_provider = with_provider
        self.provider: DevProvider | None = None
        self.residents: DevProvider | None = None

    def setup(self) -> None:
        step(1, f"Setting up {len(self.nodes)} agencies in {self.workdir}")
        for node in self.nodes:
            _cli(
                "init",
                str(node.directory),
                "--id",
                node.node_id,
                "--agency-name",
                node.name,
                "--kind",
                node.kind,
                "--port",
                str(node.port),
            )
            for user, role in DEMO_ROLES:
                if user == "lead" and node.node_id != LEAD:
                    continue
                out = _cli(
                    "users",
                    "add",
                    user,
                    "--name",
                    f"Demo {role}",
                    "--role",
                    role,
                    "--dir",
                    str(node.directory),
                )
                node.tokens[user] = out.split("token: ")[1].strip()
                _cli(
                    "users",
                    "passwd",
                    user,
                    "--password-stdin",
                    "--dir",
                    str(node.directory),
                    stdin=DEMO_PASSWORD + "\n",
                )
            ok(f"{node.name} ({node.node_id}): own Ed25519 key and SQLite store")
        if self.with_provider:
            self.start_provider()
        click.echo("    starting each node as its own process ...")
        for node in self.nodes:
            start(node)
        for node in self.nodes:
            wait_healthy(node)
            ok(f"{node.node_id} serving at {node.url}")
        pairs = [(a, b) for a in self.nodes for b in self.nodes if a is not b]
        with ThreadPoolExecutor(4) as pool:
            list(
                pool.map(
                    lambda p: _cli("peers", "add", p[1].url, "--dir", str(p[0].directory), "--yes"),
                    pairs,
                )
            )
        ok(f"each node fetched, verified and trusts the others ({len(pairs)} trust links)")

    def start_provider(self) -> None:
        """A development OpenID provider on loopback: each node a client, each demo user an
        account whose groups claim grants their role at their node (passwords stay on)."""
        why = provider_unavailable()
        if why:
            raise DemoError(f"--oidc: {why}")
        clients, accounts = [], {}
        for node in self.nodes:
            clients.append(
                Client(
                    node.node_id,
                    secrets.token_urlsafe(24),
                    [f"{node.url}/login/oidc/callback"],
                    [f"{node.url}/login?out=1"],
                )
            )
            for user, role in DEMO_ROLES:
                if user in node.tokens:
                    accounts[f"{user}@{node.node_id}"] = {
                        "name": f"Demo {role} ({node.name})",
                        "groups": [f"{node.node_id}:{role}"],
                    }
        self.provider = DevProvider(self.workdir, clients, accounts, [new_signing_key("demo-1")])
        self.provider.start()
        for node, client in zip(self.nodes, clients, strict=True):
            roles = {role: f"{node.node_id}:{role}" for _user, role in DEMO_ROLES}
            point_node_at(
                node.directory,
                self.provider.issuer,
                client,
                PROVIDER_NAME,
                role_claim="groups",
                roles=roles,
            )
        ok(f"{PROVIDER_NAME} (a development OpenID provider) at {self.provider.issuer}")
        lead = self.by_id[LEAD]
        self.residents = start_residents_provider(self.workdir, lead.directory, lead.url)
        ok(f"{RESIDENTS_NAME} (the family's e-identification, a second provider) for {LEAD}")

    def run(self) -> None:
        lead = self.by_id[LEAD]
        others = [n for n in self.nodes if n is not lead]
        step(2, "Each agency has its own record of the child (synthetic data)")
        children = {
            n.node_id: api(n, "POST", "/children", "prof", CHILD)["child_id"] for n in self.nodes
        }
        ok(f"{CHILD['name']} registered separately at {len(children)} agencies")

        step(3, "Invite: IFO's lead professional creates the plan and invites the others")
        plan = api(
            lead,
            "POST",
            "/plans",
            "lead",
            {
                "child_id": children[lead.node_id],
                "participants": [n.node_id for n in others],
                "purpose": "sip",
                "reason": "Samordnad individuell plan efter oro från skolan",
                "responsible_node": lead.node_id,
            },
        )
        plan_id = plan["plan_id"]
        for p in plan["participants"]:
            ok(f"{p['node_id']:28} {p['status']}")
        meeting = (datetime.now(UTC) + timedelta(days=14)).date().isoformat()
        api(
            lead,
            "PUT",
            f"/plans/{plan_id}/details",
            "lead",
            {
                "reason": "Samordnad individuell plan efter oro från skolan",
                "coordinator_name": "Sara Samordnare",
                "coordinator_contact": "0300-00 00 00 (demo)",
                "review_date": meeting,
                "review_time": "14:30",
                "review_place": "IFO:s mötesrum, Kungsbacka",
            },
        )
        ok(f"coordinator Sara Samordnare; next review meeting {meeting} 14:30 (at the lead only)")

        step(4, "Link: a professional at each invited agency matches the child and links")
        for node in others:
            self.link_invitation(node, plan_id)
        view = api(lead, "GET", f"/plans/{plan_id}", "lead")
        statuses = {p["node_id"]: p["status"] for p in view["participants"]}
        if sorted(statuses.values()) != ["lead", *["linked"] * len(others)]:
            raise DemoError(f"not every agency linked the plan to its child: {statuses}")
        ok(
            f"the lead's plan: all {len(others)} invited agencies linked, "
            "each by its own professional"
        )

        step(5, "Each agency writes its own fragment of the plan")
        for node in self.nodes:
            api(node, "POST", f"/plans/{plan_id}/fragments", "prof", fragment_for(node))
            ok(f"{node.node_id}: {node.category}")

        step(6, "Consent: both guardians consent; police information is NOT shared")
        now = datetime.now(UTC)
        grants = [
            # BUP may also tell the school (elevhälsan) about the child's mental health
            {
                "from": n.node_id,
                "to": [lead.node_id, *([SCHOOL] if n.node_id == BUP else [])],
                "categories": [n.category],
            }
            for n in self.nodes
            if n.node_id not in (POLICE, LEAD)
        ]
        today = now.date().isoformat()
        # the lead records each person by name (names stay at the lead; the statement carries
        # p1, p2, p3); the second guardian has not been asked yet
        consent = api(
            lead,
            "POST",
            f"/plans/{plan_id}/consent",
            "lead",
            {
                "people": [
                    {
                        "name": "Maria Demosson",
                        "role": "guardian",
                        "required": True,
                        "answer": "consents",
                        "answered_on": today,
                        "method": "signed_form",
                        "form_ref": "Samtyckesblankett SIP 1",
                        # kept only as a keyed hash: she signs in at /familj with it
                        "personnummer": GUARDIAN_NUMBER,
                    },
                    {"name": "Johan Demosson", "role": "guardian", "required": True},
                    {
                        "name": CHILD["name"],
                        "role": "child",
                        "age": 12,
                        "answer": "consents",
                        "answered_on": today,
                        "method": "meeting",
                        "view": "Vill att skolan och BUP pratar med varandra",
                    },
                ],
                "grants": grants,
                "purpose": "sip",
                "valid_from": format_time(now - timedelta(minutes=1)),
                "valid_until": format_time(now + timedelta(days=365)),
                "evidence_ref": "Samtyckesblankett SIP",
            },
        )
        waiting = ", ".join(consent["waiting_for"])
        released, reasons = probe(lead, self.by_id[SCHOOL], plan_id, consent["consent_id"])
        ok(f"incomplete — waiting for {waiting}: {SCHOOL} released {released}, withheld {reasons}")
        if released or "consenter_missing" not in reasons:
            raise DemoError(f"an incomplete consent released at {SCHOOL}: {reasons}")
        # one step completes it: a new statement replaces the incomplete one
        first_id = consent["consent_id"]
        consent = api(
            lead,
            "POST",
            f"/plans/{plan_id}/consent/answers",
            "lead",
            {"ref": "p2", "answer": "consents", "answered_on": today, "method": "e_form"},
        )
        if consent["waiting_for"] or consent["statement"].get("replaces") != first_id:
            raise DemoError(f"the answer did not complete the consent: {consent}")
        consent_id = consent["consent_id"]
        for d in consent["distribution"]:
            ok(f"signed statement delivered to {d['node_id']}: {d.get('status', d['outcome'])}")
        released, reasons = probe(lead, self.by_id[SCHOOL], plan_id, first_id)
        ok(f"the incomplete consent is replaced: {SCHOOL} withholds {reasons} under it")
        if released or "consent_replaced" not in reasons:
            raise DemoError(f"a replaced consent released at {SCHOOL}: {reasons}")

        step(7, "Assemble: the lead asks every agency at once and merges the shared plan")
        shared = api(lead, "GET", f"/plans/{plan_id}/shared", "lead")
        self.show_plan(shared)
        # every participant sees the plan its consent allows: the school, what BUP may share
        seen = api(self.by_id[SCHOOL], "GET", f"/plans/{plan_id}/shared", "prof")
        shown = sorted({(f["origin"], f["category"]) for f in seen["fragments"]})
        ok(
            f"elevhälsan's professional opens the plan too and sees: "
            f"{', '.join(f'{o} {c}' for o, c in shown)}"
        )
        ok(f"not granted to the school by anyone: {', '.join(seen['not_granted'])}")

        step(8, "A peer goes down: BUP stops; the plan still assembles")
        bup = self.by_id[BUP]
        stop(bup)
        shared = api(lead, "GET", f"/plans/{plan_id}/shared", "lead")
        status = {p["node_id"]: p for p in shared["participants"]}[BUP]["status"]
        ok(f"{BUP} is marked {status}; {len(shared['fragments'])} fragments still shown")
        if status != "unreachable":
            raise DemoError(f"expected BUP unreachable, got {status}")

        step(9, "The family: a guardian signs in at the lead with e-identification")
        family_withdrew = self.family_part(plan_id)

        if family_withdrew:
            step(10, "Revoke: Maria's withdrawal at the lead reaches every agency")
            revoked = api(lead, "GET", f"/plans/{plan_id}/shared", "lead")
            ok(f"revocation recorded at {LEAD} at {revoked['revoked_at']}, queued for the others")
        else:
            step(10, "Revoke at the school: a guardian withdraws consent at elevhälsan")
            school = self.by_id[SCHOOL]
            result = api(school, "POST", f"/consents/{consent_id}/revoke", "prof")
            ok(f"revocation recorded at {SCHOOL} and queued for {', '.join(result['notified'])}")

        step(11, "Every running node now refuses to release under the consent")
        time.sleep(1.0)
        for node in (n for n in self.nodes if n is not lead and n.node_id != BUP):
            released, reasons = probe(lead, node, plan_id, consent_id)
            ok(f"{node.node_id:28} released {released}, withheld: {reasons}")
            if released or "consent_revoked" not in reasons:
                raise DemoError(f"{node.node_id} still releases")
        shared = api(lead, "GET", f"/plans/{plan_id}/shared", "lead")
        ok(f"the lead's plan view: status {shared['status']} since {shared['revoked_at']}")

        step(12, "BUP comes back and catches up before it answers anyone")
        start(bup)
        wait_healthy(bup)
        released, reasons = probe(lead, bup, plan_id, consent_id)
        ok(f"{BUP:28} released {released}, withheld: {reasons}")
        if released or "consent_revoked" not in reasons:
            raise DemoError("BUP did not catch up")

        step(13, "Every operator verifies its exchange log")
        for node in self.nodes:
            _cli("log", "checkpoint", "--dir", str(node.directory))
            report = json.loads(_cli("log", "verify", "--json", "--dir", str(node.directory)))
            ok(
                f"{node.node_id:28} {report['entries']} entries, {report['checkpoints']} "
                f"checkpoint(s), {report['witnesses']} witness(es): "
                f"{'OK' if report['ok'] else 'FAILED'}"
            )
            if not report["ok"]:
                raise DemoError(f"log verification failed at {node.node_id}")

    def family_part(self, plan_id: str) -> bool:
        """With --oidc: Maria signs in at /familj through the residents' provider, reads Min
        plan, writes the family's view, sees who has been told what (BUP, down, shown as not
        answering) and withdraws the consent. True when she did."""
        lead = self.by_id[LEAD]
        if self.residents is None:
            ok(
                "run the demo with --oidc to see it: Maria Demosson signs in at "
                f"{lead.url}/familj with e-identification (a development provider)"
            )
            return False
        try:
            visit = family_visit(lead.url, plan_id)
        except (RuntimeError, OSError) as exc:  # a page or the provider did not answer
            raise DemoError(f"the family's pages: {exc}") from None
        ok(f"Maria signed in with {RESIDENTS_NAME}; Min plan names {visit.coordinator}")
        if visit.coordinator != "Sara Samordnare":
            raise DemoError(f"Min plan does not name the coordinator: {visit.coordinator!r}")
        ok("she writes the family's view: it is on Min plan, marked as the family's own words")
        if not visit.view_shown:
            raise DemoError("the family's view is not on Min plan")
        for node_id, answer in visit.answers.items():
            releases = visit.releases.get(node_id, 0)
            ok(f"Vem har fått veta vad: {node_id:28} {answer:13} {releases} release(s)")
        if visit.answers.get(BUP) != "not_answered" or not visit.releases.get(SCHOOL):
            raise DemoError(f"the family's access report is not as expected: {visit}")
        ok("she withdraws the consent herself ('Är du säker?' – 'Ja, återkalla samtycket')")
        if not visit.withdrawn:
            raise DemoError("the consent does not show as withdrawn")
        return True

    def link_invitation(self, node: DemoNode, plan_id: str) -> None:
        """What the professional at ``node`` does on the invitations page: look at the waiting
        invitation, see which of the agency's own children match it, and link it to that one
        (the invited node never tells the lead whether the child is on record, SPEC §7.1)."""
        waiting = api(node, "GET", "/invitations", "prof")
        matches = next((i["matches"] for i in waiting if i["plan_id"] == plan_id), None)
        if matches is None or len(matches) != 1:
            raise DemoError(f"{node.node_id}: no single matching child for the invitation")
        linked = api(node, "POST", f"/invitations/{plan_id}/link", "prof", {"child_id": matches[0]})
        ok(f"{node.node_id:28} linked to its own record; lead told: {linked['lead_notified']}")

    def show_plan(self, shared: dict[str, Any]) -> None:
        for p in shared["participants"]:
            extra = ", ".join(p.get("categories", [])) or p.get("reason", "")
            withheld = ", ".join(f"{w['category']}: {w['reason']}" for w in p.get("withheld", []))
            ok(f"{p['node_id']:28} {p['status']:13} {extra} {withheld}".rstrip())
        click.echo("    Vem gör vad, när:")
        for a in shared["actions"]:
            click.echo(
                f"      - {a['who']}: {a['what']} ({a['start']} – {a['end']}, "
                f"{a['status']}) [{a['provenance']['origin']}, signed ✓]"
            )
        review = shared.get("next_review") or {}
        click.echo(f"    Next review: {review.get('date', '-')}")

    def goodbye(self) -> None:
        click.echo("")
        click.echo(click.style("Demo complete. Nodes and logins:", bold=True))
        click.echo(f"  Web pages: log in with a user below and the password {DEMO_PASSWORD!r}")
        click.echo("  (lead = lead professional, prof = professional, ops = operator at /ops)")
        if self.provider is not None:
            click.echo(
                f"  Or 'Logga in med {PROVIDER_NAME}' on any node's login page: log in at the "
                "provider as USER@NODE (e.g. prof@ifo.kungsbacka.se) with any password."
            )
        if self.residents is not None:
            click.echo(
                f"  The family: {self.by_id[LEAD].url}/familj, 'Logga in med {RESIDENTS_NAME}', "
                f"log in as {GUARDIAN_LOGIN} with any password (Maria Demosson, a guardian)."
            )
        for node in self.nodes:
            click.echo(f"  {node.node_id:28} {node.url}/  users: {', '.join(node.tokens)}")
            for user, token in node.tokens.items():
                click.echo(f"      API token {user}: {token}")

    def stop_all(self) -> None:
        stop_nodes(self.nodes)
        for provider in (self.provider, self.residents):
            if provider is not None:
                provider.stop()


@click.command()
@click.option(
    "--dir",
    "base",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to create the demo nodes [default: a new temporary directory].",
)
@click.option("--no-wait", is_flag=True, help="Exit when the walk-through is done.")
@click.option(
    "--oidc",
    "with_provider",
    is_flag=True,
    help="Also start a development OpenID provider (needs Node.js and npm ci --prefix "
    "deploy/dev-provider; deploy/demo.sh --oidc does both) that every node's staff can sign "
    "in through.",
)
def demo(base: Path | None, no_wait: bool, with_provider: bool) -> None:
    """Start a four-agency demo federation on loopback and walk through the mission."""
    workdir = base or Path(tempfile.mkdtemp(prefix="barnplan-demo-"))
    if base is not None and any(base.iterdir() if base.exists() else []):
        raise DemoError(f"{base} is not empty; give an empty or new directory")
    runner = Demo(workdir, with_provider)
    try:
        with stopping_nodes_on_signals(runner):
            runner.setup()
            runner.run()
            runner.goodbye()
            if not no_wait:
                click.echo("Nodes keep running; press Ctrl-C to stop.")
                while True:
                    signal.pause()  # until a stop signal unwinds (see stopping_nodes_on_signals)
    finally:
        if base is None and no_wait:
            shutil.rmtree(workdir, ignore_errors=True)
