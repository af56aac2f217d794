"""The pages' words, in Swedish (the product's language, and the msgids) and English.

The sentences live in gettext catalogs, ``node/web/locale/{sv,en}/LC_MESSAGES/barnplan.po``,
compiled to the ``.mo`` files beside them (``tests/browser/test_catalogs.py`` holds the two equal
and checks that every msgid the code uses is in both; ``node/web/catalogs.py`` says how to
update them). Templates say ``_("…")`` (``jinja2.ext.i18n``); Python says ``t.gettext("…")``;
a word that means two things in English has a context (``pgettext``). Errors carry a code and
parameters (``node/errors.py``), and ``ERROR_TEXTS`` words each code in the catalogs: no page
reads an English message to guess what it means. Code lists (indicators, categories, reasons …)
come from ``protocol.codes`` so pages, schemas and the API say the same thing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from markupsafe import Markup

from protocol.codes import LABELS, REASON_LABELS

from ...domain.byte_size import in_units
from ...errors import FieldProblem, NodeError

LANGS = ("sv", "en")
DEFAULT_LANG = "sv"
LOCAL_TIME = ZoneInfo("Europe/Stockholm")
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "barnplan"


def N_(message: str) -> str:
    """Mark ``message`` as a msgid for extraction, translated where it is shown."""
    return message


# what a participant's standing in a plan and a peer's part in an assembly are called
PARTICIPANT_STATUS = {
    "lead": N_("Leder planen"),
    "invited": N_("Inbjuden"),
    "pending": N_("Väntar på koppling"),
    "linked": N_("Kopplad"),
    "declined": N_("Avböjde"),
    "failed": N_("Nåddes inte"),
    "named": N_("Med i samtycket"),
}
PEER_STATUS = {
    "included": N_("Med i planen"),
    "withheld": N_("Undanhållet"),
    "unreachable": N_("Nås inte"),
    "timed_out": N_("Svarade inte i tid"),
    "invalid": N_("Ogiltigt svar"),
    "refused": N_("Nekade"),
    "not_linked": N_("Inte kopplad"),
    "not_requested": N_("Inte efterfrågad"),
}

# what a viewer of the shared plan is not shown, and why (``assembly.explain_not_shown``): by the
# holder's reason code for what it withheld, or by how the agency answered when it did not
NOT_SHOWN_REASONS = {
    "category_not_granted": N_("%(agency)s delar inte %(categories)s med er enligt samtycket."),
    "requester_not_granted": N_("%(agency)s delar inte %(categories)s med er enligt samtycket."),
    "no_fragments": N_("%(agency)s har inget om %(categories)s i planen."),
}
NOT_SHOWN_OTHER = N_("%(agency)s visar inte %(categories)s. Skäl: %(reason)s.")
NOT_SHOWN_ALL = N_("%(agency)s lämnar inte ut något. Skäl: %(reason)s.")
NOT_SHOWN_STATUS = {
    "timed_out": N_("%(agency)s svarade inte i tid. Det som finns där visas inte nu."),
    "unreachable": N_("%(agency)s gick inte att nå. Det som finns där visas inte nu."),
    "invalid": N_("Svaret från %(agency)s gick inte att kontrollera och visas inte."),
    "refused": N_("%(agency)s nekade frågan. Skäl: %(reason)s."),
    "not_linked": N_("%(agency)s har inte kopplat planen än."),
}

# the words for a code a page shows: a direction, a peer's reachability, a plan role, a role
TERMS: dict[str, dict[str, str]] = {
    "direction": {"in": N_("in"), "out": N_("ut")},
    "reach": {
        "ok": N_("Ja"),
        "down": N_("Nej"),
        "bad": N_("Svarar felaktigt"),
        "unknown": N_("Okänt"),
    },
    "plan_role": {"lead": N_("Leder planen"), "participant": N_("Deltar")},
    # a person's answer to the consent, and how it was given (consent as people)
    "answer": {
        "consents": N_("Samtycker"),
        "declines": N_("Samtycker inte"),
        "not_asked": N_("Inte tillfrågad än"),
        "unreachable": N_("Går inte att nå"),
    },
    "method": {
        "signed_form": N_("Underskriven blankett"),
        "e_form": N_("E-tjänst"),
        "e_id": N_("E-legitimation"),
        "meeting": N_("Vid möte"),
    },
    # where a plan stands (node/domain/plan_status.py)
    "plan_status": {
        "closed": N_("Avslutad"),
        "declined": N_("Avböjd"),
        "waiting_for_links": N_("Väntar på att verksamheterna kopplar"),
        "waiting_for_consent": N_("Väntar på samtycke"),
        "consent_incomplete": N_("Samtycket är ofullständigt"),
        "consent_revoked": N_("Samtycket är återkallat"),
        "consent_expired": N_("Samtycket har gått ut"),
        "in_force": N_("Gäller"),
    },
    # a request's message type in the exchange log (the code, as ``barnplan log --type`` takes
    # it, stays in the row's title); a type not listed shows as its code
    "message_type": {
        "consent.revoke": N_("Återkallelse av samtycke"),
        "consent.statement": N_("Samtyckesbesked"),
        "fragments.request": N_("Begäran om planfragment"),
        "hello": N_("Handskakning"),
        "keys.update": N_("Nyckelbyte"),
        "log.checkpoint": N_("Loggens kontrollpunkt"),
        "plan.invite": N_("Inbjudan till plan"),
        "plan.link": N_("Koppling till plan"),
        "revocations.since": N_("Fråga om återkallelser"),
        "plan.close": N_("Avslutande av plan"),
        "closures.since": N_("Fråga om avslutade planer"),
        "access.report.request": N_("Fråga om utlämnanden"),
    },
    # an exchange's outcome in the exchange log (node/web/pages/ops.py OUTCOMES)
    "outcome": {
        "ok": N_("Lyckades"),
        "released": N_("Utlämnat"),
        "withheld": N_("Undanhållet"),
        "refused": N_("Nekade"),
        "unreachable": N_("Nås inte"),
        "timeout": N_("Svarade inte i tid"),
        "bad_reply": N_("Felaktigt svar"),
        "failed": N_("Misslyckades"),
    },
    "role": {
        "professional": N_("Yrkesverksam"),
        "lead": N_("Samordnare (huvudansvarig)"),
        "operator": N_("Driftansvarig"),
        "guardian": N_("Vårdnadshavare"),
        "child": N_("Barnet"),
        "young_person": N_("Den unge"),
        "resident": N_("Familj"),
    },
}

# Abbreviations agencies are named by (a node's agency_name, [node] in barnplan.toml, and its
# peers' node documents) that a family cannot be expected to know: "Min plan" spells them out.
AGENCY_ABBREVIATIONS = {
    "BUP": N_("Barn- och ungdomspsykiatrin"),
    "IFO": N_("Individ- och familjeomsorgen"),
    "BVC": N_("Barnavårdscentralen"),
    "EHT": N_("Elevhälsoteamet"),
}
_ABBREVIATION = re.compile(r"\b(" + "|".join(AGENCY_ABBREVIATIONS) + r")\b")

# An error's code (node/errors.py, or pydantic's error type for a form field) -> its sentence,
# filled from the error's params. A code not listed shows the error's English message.
_DATE = N_("Ange ett datum som ÅÅÅÅ-MM-DD.")
_CHOOSE = N_("Välj ett av alternativen.")
_AT_MOST = N_("Högst %(max_length)s tecken.")
ERROR_TEXTS: dict[str, str] = {
    # pydantic's error types
    "missing": N_("Obligatoriskt."),
    "string_too_long": _AT_MOST,
    "too_long": N_("Högst %(max_length)s rader."),
    "literal_error": _CHOOSE,
    "enum": _CHOOSE,
    "date_parsing": _DATE,
    "date_type": _DATE,
    "date_from_datetime_parsing": _DATE,
    "date_from_datetime_inexact": _DATE,
    # the node's own
    "max_length": _AT_MOST,
    "min_length": N_("Minst %(min_length)s tecken."),
    "one_of": _CHOOSE,
    "required_max_length": N_("Obligatoriskt, högst %(max_length)s tecken."),
    "no_such_child": N_("Välj ett av barnen som finns registrerade här."),
    "child_exists": N_("Personnumret finns redan (barn %(child_id)s)."),
    "child_mismatch": N_("Barnets personnummer stämmer inte med inbjudan."),
    "no_other_agency": N_("Bjud in minst en annan verksamhet."),
    "not_trusted_peers": N_("Inte anslutna verksamheter: %(nodes)s"),
    "not_participant": N_("Måste vara din verksamhet eller en deltagare."),
    "unknown_indicators": N_("Okänt område."),
    "rfc3339_time": _DATE,
    "ends_before_start": N_("Måste vara efter startdatumet."),
    "not_participants": N_("Deltar inte i planen: %(nodes)s"),
    "evidence_missing": N_("Ange en referens till den underskrivna blanketten eller e-tjänsten."),
    "personnummer_form": N_("Skriv personnumret som ÅÅÅÅMMDD-NNNN."),
    "personnummer_date": N_("Datumdelen är inte ett riktigt datum."),
    "personnummer_future": N_("Datumdelen ligger i framtiden."),
    "personnummer_check": N_("Kontrollsiffran stämmer inte."),
    # what an error page says
    "no_plan": N_("Planen %(plan_id)s finns inte här."),
    "no_led_plan": N_("Din verksamhet leder ingen plan %(plan_id)s."),
    "no_fragment": N_("Planfragmentet %(fragment_id)s finns inte i planen."),
    "family_fragment": N_("Det här är familjens egna ord. Bara den som skrev dem kan ändra dem."),
    "family_only": N_("Familjen skriver sina synpunkter i kategorin familj."),
    "written_by_set": N_("Bara familjen själv kan skriva familjens egna ord."),
    "no_invitation": N_("Det finns ingen inbjudan till plan %(plan_id)s."),
    "invitation_resolved": N_("Inbjudan är redan besvarad."),
    "no_consent": N_("Samtycket %(consent_id)s finns inte här."),
    "already_revoked": N_("Samtycket är redan återkallat."),
    "not_lead": N_("Bara samordnaren (huvudansvarig) kan göra det här."),
    "not_professional": N_("Bara yrkesverksamma kan göra det här."),
    "operator_reads_content": N_("Driftansvariga läser inte planernas innehåll."),
    "not_taking_part": N_("Er verksamhet deltar inte i den här planen, så den visas inte här."),
    "invitation_not_linked": N_(
        "Inbjudan till planen är inte kopplad till ett barn här än. Koppla den under Mina planer "
        "först."
    ),
    "store_unavailable": N_("Databasen går inte att nå just nu. Försök igen om en stund."),
    # the consent form's own
    "consenter_ref": N_("Bokstäver, siffror, _ och - (högst 32 tecken)."),
    "no_required_consenter": N_("Minst en person vars samtycke krävs."),
    "no_grants": N_("Kryssa i minst en kategori som får delas."),
    "answer_date_missing": N_("Ange när personen svarade."),
    "answer_method_missing": N_(
        "Ange hur personen svarade: blankett, e-tjänst, e-legitimation eller möte."
    ),
    "form_ref_missing": N_("Ange den underskrivna blankettens referens."),
    "child_age": N_("Ange åldern i hela år, 0–%(max)s."),
    "child_age_missing": N_("Ange barnets ålder: barnets syn vägs efter ålder och mognad."),
    "no_person": N_("Personen finns inte i planens samtycke."),
    "no_consent_to_complete": N_("Det finns inget samtycke att komplettera."),
    "consent_revoked_record_new": N_(
        "Samtycket är återkallat. Registrera ett nytt samtycke om familjen samtycker igen."
    ),
    "replaces_other_plan": N_("Samtycket som ersätts gäller en annan plan."),
    # the family's pages
    "no_such_plan": N_("Det finns ingen sådan plan här."),
    "no_lead_professional": N_(
        "Planen går inte att visa just nu. Kontakta samordnaren eller verksamheten."
    ),
    "family_answer": N_("Svara ja eller nej."),
    "no_consent_to_answer": N_("Det finns inget samtycke att svara på just nu."),
    "already_answered": N_(
        "Du har redan svarat. Vill du ta tillbaka ditt ja? Då kan du återkalla samtycket."
    ),
    "no_consent_to_withdraw": N_("Det finns inget samtycke att återkalla."),
    "family_withdraw_not_required": N_(
        "Du kan inte återkalla samtycket själv. Prata med din vårdnadshavare eller samordnare."
    ),
    # a plan's life
    "plan_closed": N_("Planen är avslutad och kan inte ändras."),
    "not_trusted_peer": N_("Välj en verksamhet som den här noden litar på."),
    "already_invited": N_("Verksamheten är redan inbjuden."),
    "date_time": N_("Ange datum som ÅÅÅÅ-MM-DD och tid som TT:MM."),
    "date_missing": N_("Ange mötets datum."),
}


@functools.cache
def catalog(lang: str) -> NullTranslations:
    """The compiled catalog of ``lang``, read once: the files are part of the installed
    package and never change while it runs (a missing one would show the msgids, Swedish)."""
    return Translations.load(str(LOCALE_DIR), [lang], DOMAIN)


class _Params(dict[str, Any]):
    """An error's params for ``%`` formatting; a placeholder it lacks shows empty, never fails."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Translator:
    """Everything a template needs to speak one language."""

    lang: str

    def gettext(self, message: str, /, **values: object) -> str:
        text = catalog(self.lang).gettext(message)
        return text % values if values else text

    def pgettext(self, context: str, message: str, /, **values: object) -> str:
        text = str(catalog(self.lang).pgettext(context, message))
        return text % values if values else text

    def callables(self) -> dict[str, Callable[..., Any]]:
        """What ``jinja2.ext.i18n`` looks up in a template's context (its ``_`` calls
        ``gettext``): the translated text as markup, the values escaped as they go in."""

        def gettext(message: str, /, **values: object) -> Markup:
            text = Markup(catalog(self.lang).gettext(message))
            return text % values if values else text

        def pgettext(context: str, message: str, /, **values: object) -> Markup:
            text = Markup(str(catalog(self.lang).pgettext(context, message)))
            return text % values if values else text

        def ngettext(singular: str, plural: str, n: int, /, **values: object) -> Markup:
            text = Markup(catalog(self.lang).ngettext(singular, plural, n))
            return text % {"num": n, **values}

        return {"gettext": gettext, "pgettext": pgettext, "ngettext": ngettext}

    def label(self, kind: str, code: str | None) -> str:
        if not code:
            return ""
        pair = LABELS.get(kind, {}).get(code)
        return pair[self.index] if pair else code

    def reason(self, code: str | None) -> str:
        if not code:
            return ""
        pair = REASON_LABELS.get(code)
        return pair[self.index] if pair else code

    @property
    def index(self) -> int:
        """Which of ``protocol.codes``' (sv, en) label pairs this language reads."""
        return 0 if self.lang == "sv" else 1

    def has_reason(self, code: str | None) -> bool:
        return bool(code) and code in REASON_LABELS

    def detail(self, code: str) -> str:
        """What an assembly says about a peer beyond a protocol reason: a participant's
        standing ("pending": waiting to be linked) in words, anything else (an exception's
        name from the transport) as "technical fault", never the English code itself."""
        if code in PARTICIPANT_STATUS:
            return self.participant(code)
        return self.gettext("Tekniskt fel")

    def participant(self, status: str) -> str:
        """A participant's standing in a plan (lead, invited, linked, …)."""
        message = PARTICIPANT_STATUS.get(status)
        return self.gettext(message) if message else status

    def term(self, kind: str, code: str) -> str:
        """The word for ``code`` among ``TERMS[kind]``; the code itself if it has none."""
        message = TERMS.get(kind, {}).get(code)
        return self.gettext(message) if message else code

    def peer_status(self, status: str) -> str:
        message = PEER_STATUS.get(status)
        return self.gettext(message) if message else status

    def categories(self, codes: list[str]) -> str:
        """Categories as a list people read: "Hälsa, Socialt"."""
        return ", ".join(self.label("category", c) for c in codes)

    def not_shown(self, entry: dict[str, Any], agency: str) -> str:
        """One sentence of what the viewer is not shown from ``agency`` and why."""
        categories = self.categories(entry["categories"])
        values = {
            "agency": agency,
            "categories": categories,
            "reason": self.reason(entry["reason"]),
        }
        if entry["status"] == "withheld":
            message = NOT_SHOWN_REASONS.get(entry["reason"] or "")
            if message is None or not categories:
                message = NOT_SHOWN_OTHER if categories else NOT_SHOWN_ALL
        else:
            message = NOT_SHOWN_STATUS.get(entry["status"], NOT_SHOWN_ALL)
        return self.gettext(message, **values)

    def problem(self, problem: FieldProblem | NodeError) -> str:
        """An error's sentence in this language, from its code and params; the English message
        for a code the catalogs do not word."""
        message = ERROR_TEXTS.get(problem.code)
        if message is None:
            return problem.message
        return catalog(self.lang).gettext(message) % _Params(problem.params)

    def fields(self, error: NodeError) -> dict[str, str]:
        """Field -> sentence, for a form to show beside each field."""
        return {name: self.problem(problem) for name, problem in error.fields.items()}

    def when(self, value: datetime | str | None) -> str:
        """A time as people read it here: local Swedish time, minutes."""
        if value is None or value == "":
            return ""
        moment: datetime
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
        else:
            moment = value
        if moment.tzinfo is None:
            return moment.strftime("%Y-%m-%d %H:%M")
        return moment.astimezone(LOCAL_TIME).strftime("%Y-%m-%d %H:%M")

    def when_utc(self, value: datetime | str | None) -> str:
        """A time for operators, in UTC and saying so: the CLI, the exchange log and the process
        logs all use UTC, and an operator matches a page's row against them."""
        if value is None or value == "":
            return ""
        moment = (
            datetime.fromisoformat(value.replace("Z", "+00:00"))
            if isinstance(value, str)
            else value
        )
        if moment.tzinfo is None:  # the store hands back aware UTC; a naive one is UTC too
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    @staticmethod
    def pnr(value: str | None) -> str:
        """A personnummer as people write it: YYYYMMDD-NNNN."""
        text = value or ""
        return f"{text[:8]}-{text[8:]}" if len(text) == 12 and text.isdigit() else text

    def long_moment(self, value: datetime) -> str:
        """A meeting's time as people say it, in local Swedish time, with its weekday
        ("söndag 13 december 2026 klockan 14:30")."""
        local = value.astimezone(LOCAL_TIME)
        return f"{self.long_day(local.date())} {self.gettext('klockan')} {local:%H:%M}"

    def long_day(self, value: date | str | None) -> str:
        """A date as people say it, with its weekday ("måndag 7 december 2026"): for the
        family's copy, where an ISO date is a code; an unreadable value is shown as it is."""
        if value is None or value == "":
            return ""
        try:
            day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
        except ValueError:
            return str(value)
        return str(format_date(day, "EEEE d MMMM y", locale=self.lang))

    def size(self, n: int) -> str:
        """A number of bytes as people read it: "1,5 MB" in Swedish, "1.5 MB" in English."""
        value, unit = in_units(n)
        shown = str(n) if unit == "B" else format_decimal(value, "0.0", locale=self.lang)
        return f"{shown} {unit}"

    def spell_out(self, name: str | None) -> str:
        """An agency's name with each abbreviation of ``AGENCY_ABBREVIATIONS`` followed by
        what it stands for: "Testregionen BUP" -> "Testregionen Barn- och
        ungdomspsykiatrin (BUP)"."""
        return _ABBREVIATION.sub(
            lambda m: f"{self.gettext(AGENCY_ABBREVIATIONS[m.group(1)])} ({m.group(1)})",
            name or "",
        )

    def day(self, value: date | str | None) -> str:
        if value is None or value == "":
            return ""
        if isinstance(value, str):
            return value[:10]
        return value.isoformat()


def pick_lang(query_lang: str | None, cookie_lang: str | None) -> str:
    for candidate in (query_lang, cookie_lang):
        if candidate in LANGS:
            return str(candidate)
    return DEFAULT_LANG
