"""The pages' gettext catalogs: every msgid the code uses is in both, every one has its text,
the checked-in ``.mo`` files are what their ``.po`` files compile to, and errors are worded
from their code and params in each language (never from an English message)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field, ValidationError

from node.domain.personnummer import PersonnummerError, normalize_personnummer
from node.errors import FieldProblem, InvalidInput, field_problems
from node.web.catalogs import LANGS, compiled, extract, po_path, read
from node.web.pages.i18n import ERROR_TEXTS, Translator


def keys(catalog: object) -> set[tuple[str, str | None]]:
    return {(m.id, m.context) for m in catalog if m.id}  # type: ignore[attr-defined]


@pytest.mark.parametrize("lang", LANGS)
def test_every_msgid_the_code_uses_is_in_the_catalog(lang: str) -> None:
    used = keys(extract())
    held = keys(read(lang))
    assert used, "nothing extracted: the extraction itself is broken"
    assert sorted(used - held) == [], (
        f"missing from {po_path(lang)}: run python -m node.web.catalogs"
    )
    assert sorted(held - used) == [], f"unused in {po_path(lang)}: run python -m node.web.catalogs"


@pytest.mark.parametrize("lang", LANGS)
def test_every_msgid_has_its_text_and_the_same_placeholders(lang: str) -> None:
    for message in read(lang):
        if not message.id:
            continue
        assert message.string, (lang, message.id)
        if lang == "sv":
            assert message.string == message.id  # Swedish is the source language
        assert message.python_format == ("%(" in str(message.string)), (lang, message.id)


@pytest.mark.parametrize("lang", LANGS)
def test_the_checked_in_mo_is_the_compiled_po(lang: str) -> None:
    mo = po_path(lang).with_suffix(".mo")
    assert mo.read_bytes() == compiled(read(lang)), (
        f"{mo} is stale: run python -m node.web.catalogs"
    )


def test_each_language_words_an_error_from_its_code_and_params() -> None:
    sv, en = Translator("sv"), Translator("en")
    problem = FieldProblem("child_exists", "already recorded, as child c-1", {"child_id": "c-1"})
    assert sv.problem(problem) == "Personnumret finns redan (barn c-1)."
    assert en.problem(problem) == "The personnummer is already recorded (child c-1)."
    # the message a code has no sentence for is shown as the error said it
    assert sv.problem(FieldProblem("something_new", "something new")) == "something new"


def test_personnummer_errors_carry_a_code_per_problem() -> None:
    from datetime import date

    with pytest.raises(PersonnummerError) as refused:
        normalize_personnummer("20150315-2388", date(2026, 1, 1))
    assert isinstance(refused.value, InvalidInput) and refused.value.code == "personnummer_check"
    assert Translator("sv").problem(refused.value) == "Kontrollsiffran stämmer inte."
    assert Translator("en").problem(refused.value) == "The check digit is wrong."


def test_pydantic_errors_become_codes_with_params_not_english() -> None:
    class Form(BaseModel):
        name: str = Field(max_length=3)
        when: str

    with pytest.raises(ValidationError) as invalid:
        Form.model_validate({"name": "long"})
    fields = field_problems(invalid.value, "content.")
    assert fields["content.name"].code == "string_too_long"
    assert fields["content.name"].params == {"max_length": 3}
    assert fields["content.when"].code == "missing"
    sv = Translator("sv")
    assert sv.problem(fields["content.name"]) == "Högst 3 tecken."
    assert sv.problem(fields["content.when"]) == "Obligatoriskt."
    assert Translator("en").problem(fields["content.name"]) == "At most 3 characters."


def test_every_error_sentence_is_a_msgid_of_the_catalogs() -> None:
    used = {message for message, _context in keys(extract())}
    assert set(ERROR_TEXTS.values()) <= used
