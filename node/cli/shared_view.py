"""The shared plan as a person reads it in a terminal (rich), for ``barnplan plan show``.

Laid out the way a SIP meeting reads a plan: who takes part and who did not answer (and why),
per wellbeing indicator the needs, goals and actions, "vem gör vad, när", the next review, the
chronology, and where every piece came from. Pure rendering of the dict ``assemble`` returns;
kept apart from the click command so it can be used and tested without the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from protocol.codes import LABELS, REASON_LABELS

from ..domain.shared_plan_shape import SharedPlan, View
from ..domain.shared_plan_shape import Text as TextItem

PARTICIPANT_STATUS = {
    "included": "Med",
    "withheld": "Undanhållet",
    "refused": "Nekade",
    "unreachable": "Nås inte",
    "timed_out": "Svarade inte i tid",
    "invalid": "Ogiltigt svar",
    "not_requested": "Inte efterfrågad",
    "not_linked": "Inte ansluten",
}
STATUS_STYLE = {"included": "green", "withheld": "yellow", "not_requested": "dim"}
LINK_REASONS = {
    "invited": "inbjuden, inget svar",
    "pending": "väntar på handläggare",
    "declined": "avböjde",
    "failed": "inbjudan nådde inte fram",
}
INDICATOR_ORDER = [*LABELS["indicator"], "unassigned"]


def label(kind: str, code: str | None) -> str:
    """Swedish label for a code, falling back to the code itself."""
    if code is None:
        return "-"
    return LABELS.get(kind, {}).get(code, (code, code))[0]


def indicator_heading(slot: str) -> str:
    if slot == "unassigned":
        return "Utan indikator"
    return f"{label('indicator', slot)} ({slot})"


def reason_text(reason: str | None, status: str | None = None) -> str:
    """A reason code with its Swedish label, or the raw text (e.g. a connection error name)."""
    if not reason:
        return ""
    if status == "unreachable":
        return f"ingen anslutning ({reason})"
    if reason in REASON_LABELS:
        return f"{REASON_LABELS[reason][0]} ({reason})"
    if reason in LINK_REASONS:
        return f"{LINK_REASONS[reason]} ({reason})"
    if reason == "timeout":
        return "tidsgränsen passerad (timeout)"
    return reason


def _when(start: str | None, end: str | None) -> str:
    if start and end:
        return f"{start} – {end}"
    return start or (f"– {end}" if end else "")


def _header(plan: SharedPlan) -> Panel:
    consent = plan["consent"]
    child = plan["child"]
    revoked = plan["status"] == "revoked"
    waiting = ", ".join(consent.get("waiting_for") or [])
    if revoked:
        status = Text(f"ÅTERKALLAD {plan['revoked_at']} (revoked)", style="bold red")
    elif waiting:
        status = Text(
            f"Ofullständigt – väntar på {waiting} (incomplete — waiting for {waiting})",
            style="bold yellow",
        )
    else:
        status = Text("Aktiv (active)", style="bold green")
    validity = f"{consent['valid_from']} – {consent['valid_until']}"
    if consent.get("expired"):
        validity += "  (utgånget)"
    given = ", ".join(f"{g['ref']} ({g['role']})" for g in consent.get("given_by", []))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    rows: list[tuple[str, str | Text]] = [
        ("Barn", (child["name"] if child else "") or "-"),
        ("Plan", f"{plan['plan_id']} · {label('purpose', plan['purpose'])}"),
        ("Anledning", plan.get("reason") or "-"),
        ("Huvudansvarig", f"{plan['lead_professional']} ({plan['lead_node']})"),
        ("Huvudansvarig verksamhet", plan["responsible_node"]),
        ("Samtycke", f"{consent['consent_id']}, giltigt {validity}"),
        ("Givet av", given or "-"),
        ("Status", status),
        ("Sammanställd", plan["assembled_at"]),
    ]
    for name, value in rows:
        grid.add_row(name, value)
    return Panel(grid, title="Barnplan", title_align="left")


def _participants(plan: SharedPlan) -> Table:
    table = Table(title="Deltagare", title_justify="left", expand=True)
    for column in ("Verksamhet", "Status", "Orsak", "Kategorier", "Undanhållet"):
        table.add_column(column)
    for p in plan["participants"]:
        status = p["status"]
        shown = f"{PARTICIPANT_STATUS.get(status, status)} ({status})"
        name = p["node_id"] + (" (huvudansvarig nod)" if p.get("role") == "lead" else "")
        categories = p.get("categories") or p.get("requested") or []
        # what it withheld, and what the consent lets it share with others but not with this node
        withheld = "; ".join(
            f"{label('category', w['category'])}: {reason_text(w['reason'])}"
            for w in [*p.get("withheld", []), *p.get("not_granted", [])]
        )
        table.add_row(
            name,
            Text(shown, style=STATUS_STYLE.get(status, "red")),
            reason_text(p.get("reason"), status),
            ", ".join(label("category", c) for c in categories),
            withheld,
        )
    return table


def _indicators(plan: SharedPlan) -> list[Table]:
    tables = []
    slots = sorted(plan["indicators"], key=lambda s: INDICATOR_ORDER.index(s))
    for slot in slots:
        content = plan["indicators"][slot]
        table = Table(title=indicator_heading(slot), title_justify="left", expand=True)
        for column in ("", "Vad", "När / vem", "Källa"):
            table.add_column(column)
        for need in content["needs"]:
            table.add_row("Behov", need["what"], "", need["provenance"]["origin"])
        for goal in content["goals"]:
            by = f"senast {goal['by']}" if goal.get("by") else ""
            table.add_row("Mål", goal["what"], by, goal["provenance"]["origin"])
        for action in content["actions"]:
            when = _when(action["start"], action["end"])
            table.add_row(
                "Insats",
                action["what"],
                f"{action['who']}, {when}" if when else action["who"],
                action["provenance"]["origin"],
            )
        tables.append(table)
    return tables


def _actions(plan: SharedPlan) -> Table:
    table = Table(title="Vem gör vad, när", title_justify="left", expand=True)
    for column in ("Vem", "Vad", "Från", "Till", "Status", "Indikator", "Källa"):
        table.add_column(column)
    for a in plan["actions"]:
        table.add_row(
            a["who"],
            a["what"],
            a["start"] or "",
            a["end"] or "",
            label("action_status", a["status"]),
            label("indicator", a["indicator"]) if a["indicator"] != "unassigned" else "-",
            a["provenance"]["origin"],
        )
    return table


def _texts(title: str, items: Sequence[TextItem | View]) -> Table:
    table = Table(title=title, title_justify="left", expand=True, show_header=False)
    table.add_column("Text")
    table.add_column("Källa")
    for item in items:
        table.add_row(item["text"], item["provenance"]["origin"])
    return table


def _chronology(plan: SharedPlan) -> Table:
    table = Table(title="Kronologi", title_justify="left", expand=True)
    for column in ("Datum", "Händelse", "Källa"):
        table.add_column(column)
    for event in plan["chronology"]:
        table.add_row(event["on"], event["what"], event["provenance"]["origin"])
    return table


def _provenance(plan: SharedPlan) -> Table:
    table = Table(title="Ursprung (signerade planfragment)", title_justify="left", expand=True)
    for column in ("Ursprung", "Kategori", "Fragment", "Version", "Nyckel", "Signatur"):
        table.add_column(column)
    for f in plan["fragments"]:
        verified = (
            Text("✓ verifierad", style="green")
            if f["signature_verified"]
            else Text("✗ ej verifierad", style="red")
        )
        table.add_row(
            f["origin"],
            label("category", f["category"]),
            f["fragment_id"],
            str(f["version"]),
            f["key_id"],
            verified,
        )
    return table


def render_shared_plan(plan: SharedPlan, console: Console) -> None:
    """Print the shared plan for a person; sections without content say so instead of vanishing."""
    parts: list[RenderableType] = [_header(plan), _participants(plan)]
    if plan["summaries"]:
        parts.append(_texts("Sammanfattning", plan["summaries"]))
    if plan["indicators"]:
        parts.extend(_indicators(plan))
    else:
        parts.append(Text("Inga behov, mål eller insatser delade.", style="italic"))
    if plan["actions"]:
        parts.append(_actions(plan))
    for views, title in ((plan["views"]["child"], "Barnets syn"),
                         (plan["views"]["family"], "Familjens syn")):  # fmt: skip
        if views:
            parts.append(_texts(title, views))
    review = plan.get("next_review")
    parts.append(
        Text(f"Nästa uppföljning: {review['date']} ({review['provenance']['origin']})")
        if review
        else Text("Nästa uppföljning: ej bestämd")
    )
    if plan["chronology"]:
        parts.append(_chronology(plan))
    if plan["fragments"]:
        parts.append(_provenance(plan))
    console.print(Group(*parts))
