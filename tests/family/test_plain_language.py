"""The family's pages are written in plain Swedish: the product's own text on each of them (every
msgid of each family template and family page module; data the page fills in is not counted)
has a LIX under 30, as issue #18 asks. A new family page is checked as soon as it exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from tests.support.plain_language import lix

WEB = Path(__file__).resolve().parents[2] / "node" / "web"
GOAL = 30


def product_text(path: Path) -> list[str]:
    """The msgids ``path`` uses (the Swedish source text), each once."""
    method = "jinja2" if path.suffix == ".html" else "python"
    options = {"extensions": "jinja2.ext.i18n"} if method == "jinja2" else {}
    found: list[str] = []
    for _line, message, _comments, _context in extract_from_file(
        method, str(path), options=options
    ):
        for text in message if isinstance(message, tuple) else (message,):
            if text and text not in found:
                found.append(text)
    return found


# every family template, and every family page module that has text of its own
PAGES = [
    p
    for p in sorted((WEB / "templates").glob("family*.html"))
    + sorted((WEB / "pages").glob("family*.py"))
    if p.suffix == ".html" or product_text(p)
]


def test_lix_counts_words_sentences_and_long_words() -> None:
    # 9 words, 2 sentences, 1 long word ("familjen" has 8 letters)
    assert lix(["Du kan läsa din plan här.", "Det gör familjen."]) == pytest.approx(9 / 2 + 100 / 9)
    assert lix(["Ett. Två tre."]) == pytest.approx(3 / 2)
    assert lix(["En rubrik utan punkt"]) == pytest.approx(4 + 0)  # one sentence
    assert lix(["Hej %(name)s."]) == pytest.approx(1)  # the placeholder is data, not a word


@pytest.mark.parametrize("path", PAGES, ids=[p.name for p in PAGES])
def test_each_family_page_reads_easily(path: Path) -> None:
    texts = product_text(path)
    assert texts, f"{path.name} has no text of its own to check"
    score = lix(texts)
    assert score < GOAL, f"{path.name}: LIX {score:.1f} (goal < {GOAL}): {texts}"
