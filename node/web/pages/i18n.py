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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.support import NullTranslations, Translations
from markupsafe import Markup

from protocol.codes import LABELS, REASON_LABELS

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
        "meeting": N_("Vid möte"),
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
    "no_such_child": N_("Välj ett barn på den här noden."),
    "child_exists": N_("Personnumret finns redan (barn %(child_id)s)."),
    "child_mismatch": N_("Barnets personnummer stämmer inte med inbjudan."),
    "no_other_agency": N_("Bjud in minst en annan verksamhet."),
    "not_trusted_peers": N_("Inte betrodda noder: %(nodes)s"),
    "not_participant": N_("Måste vara den här noden eller en deltagare."),
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
    "no_plan": N_("Planen %(plan_id)s finns inte på den här noden."),
    "no_led_plan": N_("Den här noden leder ingen plan %(plan_id)s."),
    "no_fragment": N_("Planfragmentet %(fragment_id)s finns inte i planen."),
    "no_invitation": N_("Det finns ingen inbjudan till plan %(plan_id)s."),
    "invitation_resolved": N_("Inbjudan är redan besvarad."),
    "no_consent": N_("Samtycket %(consent_id)s finns inte på den här noden."),
    "already_revoked": N_("Samtycket är redan återkallat."),
    "not_lead": N_("Bara samordnaren (huvudansvarig) kan göra det här."),
    "not_professional": N_("Bara yrkesverksamma kan göra det här."),
    "operator_reads_content": N_("Driftansvariga läser inte planernas innehåll."),
    "store_unavailable": N_("Nodens databas går inte att nå just nu. Försök igen om en stund."),
    # the consent form's own
    "consenter_ref": N_("Bokstäver, siffror, _ och - (högst 32 tecken)."),
    "no_required_consenter": N_("Minst en person vars samtycke krävs."),
    "no_grants": N_("Kryssa i minst en kategori som får delas."),
    "answer_date_missing": N_("Ange när personen svarade."),
    "answer_method_missing": N_("Ange hur personen svarade: blankett, e-tjänst eller möte."),
    "form_ref_missing": N_("Ange den underskrivna blankettens referens."),
    "child_age": N_("Ange åldern i hela år, 0–%(max)s."),
    "child_age_missing": N_("Ange barnets ålder: barnets syn vägs efter ålder och mognad."),
    "no_person": N_("Personen finns inte i planens samtycke."),
    "no_consent_to_complete": N_("Det finns inget samtycke att komplettera."),
    "consent_revoked_record_new": N_(
        "Samtycket är återkallat. Registrera ett nytt samtycke om familjen samtycker igen."
    ),
    "replaces_other_plan": N_("Samtycket som ersätts gäller en annan plan."),
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
