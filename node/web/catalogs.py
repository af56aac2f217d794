"""The pages' message catalogs: extract the msgids the code uses, update the ``.po`` files, and
compile them to the ``.mo`` files the node reads (``node/web/pages/i18n.py``).

Both are checked in, so ``pip install -e .`` needs no build step; ``tests/browser/
test_catalogs.py`` fails when a ``.mo`` no longer matches its ``.po`` or a msgid the code uses is
missing from a catalog. After changing a text in a template or a page::

    python -m node.web.catalogs        # re-extract barnplan.pot, merge into sv and en, compile

then write the English of every new msgid in ``locale/en/LC_MESSAGES/barnplan.po`` (the
Swedish catalog repeats the msgid: Swedish is the source language) and run it once more.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

WEB = Path(__file__).resolve().parent
LOCALE = WEB / "locale"
DOMAIN = "barnplan"
LANGS = ("sv", "en")
# where msgids are: the pages' Python (``t.gettext``, ``N_``) and the templates (``_``)
METHODS = [
    ("pages/**.py", "python"),
    ("templates/**.html", "jinja2"),
]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}


def po_path(lang: str) -> Path:
    return LOCALE / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    """Every msgid (with its context) the pages' code and templates use."""
    catalog = Catalog(project="barnplan", domain=DOMAIN)
    for filename, lineno, message, _comments, context in extract_from_dir(
        str(WEB), METHODS, OPTIONS
    ):
        catalog.add(message, None, [(filename, lineno)], context=context)
    return catalog


def read(lang: str) -> Catalog:
    with po_path(lang).open("rb") as handle:
        return read_po(handle, locale=lang, domain=DOMAIN)


def compiled(catalog: Catalog) -> bytes:
    """The ``.mo`` bytes of ``catalog``."""
    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


HEADER = """\
# barnplan's pages: {what}.
# Swedish is the source language: the msgids are the Swedish text.
# Update with: python -m node.web.catalogs
#"""


def template() -> Catalog:
    """``extract()`` dated as the checked-in ``.pot`` is, so that re-running the update with
    nothing changed rewrites every file as it was (the ``.mo`` holds the header too)."""
    catalog = extract()
    pot = LOCALE / f"{DOMAIN}.pot"
    if pot.exists():
        with pot.open("rb") as handle:
            catalog.creation_date = read_po(handle).creation_date
    return catalog


def update() -> None:
    """Write the template (``.pot``), merge it into each ``.po`` and compile each ``.mo``.

    Locations name the file, not the line: a line number changes with every edit above a
    message, and each such change would make branches that touch the pages conflict here."""
    pot = template()
    pot.header_comment = HEADER.format(what="the template")
    with (LOCALE / f"{DOMAIN}.pot").open("wb") as handle:
        write_po(handle, pot, omit_header=False, sort_output=True, width=100, include_lineno=False)
    for lang in LANGS:
        catalog = read(lang)
        catalog.update(template(), no_fuzzy_matching=True)  # its own copy: messages are mutable
        catalog.header_comment = HEADER.format(what={"sv": "Swedish", "en": "English"}[lang])
        catalog.revision_date = catalog.creation_date
        catalog.last_translator = "barnplan"
        for message in catalog:
            if lang == "sv" and message.id and not message.string:
                message.string = message.id  # Swedish is the source: the msgid is the text
        catalog.obsolete.clear()
        with po_path(lang).open("wb") as handle:
            write_po(
                handle,
                catalog,
                sort_output=True,
                width=100,
                include_previous=False,
                include_lineno=False,
            )
        po_path(lang).with_suffix(".mo").write_bytes(compiled(read(lang)))
        untranslated = [m.id for m in read(lang) if m.id and not m.string]
        if untranslated:
            print(f"{lang}: {len(untranslated)} msgids without a translation", file=sys.stderr)


if __name__ == "__main__":
    update()
