"""axe-core in a Playwright page: the WCAG 2.1 A and AA rules, checked in the real browser.

axe-core comes from npm (tests/axe/package.json pins it; ``.ci/run`` installs it with
``npm ci --prefix tests/axe``). ``check_page`` injects it into the page as it is now (after
any form was submitted or the viewport changed) and returns the violations as short readable
lines, so a failing test names the rule, the element and why. Tests skip, saying how to
install it, when axe-core is not there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

AXE_JS = Path(__file__).resolve().parents[1] / "axe" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")


def axe_source() -> str:
    """axe-core's script, or a skip saying how to install it."""
    if not AXE_JS.exists():
        pytest.skip(f"axe-core is not installed at {AXE_JS}: npm ci --prefix tests/axe")
    return AXE_JS.read_text(encoding="utf-8")


async def axe_violations(page: Any, source: str, tags: tuple[str, ...] = WCAG_TAGS) -> list[Any]:
    """Run axe-core over ``page`` (injecting it if needed) with only the rules tagged ``tags``;
    the raw violations axe reports."""
    if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
        # evaluated over the DevTools protocol, which the pages' CSP (script-src 'self') does
        # not govern: a <script> tag would be refused, as it should be
        await page.evaluate(f"(() => {{ {source}\n}})(); true")
    result = await page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {
                runOnly: {type: 'tag', values: tags},
                resultTypes: ['violations'],
            });
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({target: n.target.join(' '),
                                          summary: n.failureSummary}))
            }));
        }""",
        list(tags),
    )
    return list(result)


async def check_page(page: Any, source: str, where: str) -> list[str]:
    """The page's WCAG 2.1 A/AA violations as lines ``where: rule (impact): element – why``;
    empty when it passes."""
    lines = []
    for violation in await axe_violations(page, source):
        for node in violation["nodes"]:
            why = " ".join(str(node["summary"] or "").split())
            lines.append(
                f"{where}: {violation['id']} ({violation['impact']}): {node['target']} – {why}"
            )
    return lines
