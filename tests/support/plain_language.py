"""LIX (läsbarhetsindex), the readability measure Swedish plain-language work uses: words per
sentence plus the share of long words (more than six letters) in per cent. Under 30 reads as
very easy (children's books); 40 is ordinary news. One copy for every test that checks it."""

from __future__ import annotations

import re

WORD = re.compile(r"[A-Za-zÅÄÖåäöÉéÜü]+")
SENTENCE_END = re.compile(r"[.!?:]+(?:\s|$)")
PLACEHOLDER = re.compile(r"%\([a-z_]+\)s")


def lix(texts: list[str]) -> float:
    """LIX of ``texts``, each a text of its own: one that does not end a sentence with . ! ? or
    : (a heading, a button, a label) counts as one sentence. Placeholders (``%(name)s``: data
    the page fills in) are not counted as words."""
    words = sentences = long_words = 0
    for text in texts:
        plain = PLACEHOLDER.sub(" ", text)
        found = WORD.findall(plain)
        if not found:
            continue
        words += len(found)
        long_words += sum(1 for w in found if len(w) > 6)
        stripped = plain.strip()
        ends = len(SENTENCE_END.findall(stripped))
        sentences += ends if stripped[-1:] in (".", "!", "?", ":") else ends + 1
    if not words:
        return 0.0
    return words / sentences + 100 * long_words / words
