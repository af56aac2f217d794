"""Smoke test of the benchmark harness: it runs, records figures, and rejects unknown names.

Timings are never asserted: benchmarks are measurements, and a loaded CI machine must not turn a
slow run into a failed build. Every run points ``--json`` and ``--md`` at a temporary directory so
the committed docs/benchmarks.json and docs/BENCHMARKS.md are never touched by tests.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMMITTED = (REPO / "docs" / "benchmarks.json", REPO / "docs" / "BENCHMARKS.md")
ENVELOPE_FIGURES = {
    "envelope_vs_raw",
    "envelope_sign_verify_us",
    "raw_sign_verify_us",
    "envelope_verify_us",
    "raw_verify_us",
    "envelope_encode_us",
    "envelope_bytes",
}

# Figures each benchmark that drives real nodes must record (values are never judged here).
NODE_BENCHMARK_FIGURES = {
    "serve": {
        "serve_vs_bare",
        "serve_rps",
        "bare_rps",
        "serve_p50_ms",
        "bare_p50_ms",
        "signatures_vs_bare",
        "signatures_rps",
        "serve_beyond_signatures_us",
    },
    "assembly": {
        *(f"assembly_p50_vs_bare_n{n}" for n in (3, 8, 32)),
        *(f"assembly_signatures_p50_vs_bare_n{n}" for n in (3, 8, 32)),
        "assembly_signatures_p50_ms_n32_delay50",
        *(f"assembly_{q}_ms_n{n}" for q in ("p50", "p95") for n in (3, 8, 32)),
        "assembly_p50_ms_n32_delay50",
        "assembly_bare_p50_ms_n32_delay50",
    },
    "revocation": {
        "revocation_p99_s_n16",
        "revocation_p50_s_n16",
        "revocation_vs_hello_fanout",
        "catchup_s",
        "catchup_listen_s",
    },
    "log": {
        "log_append_per_s",
        "log_append_commit_per_row_per_s",
        "log_append_vs_commit_per_row",
        "log_verify_1m_s",
    },
}


def run_bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_quick_envelope_run_records_figures(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    report = tmp_path / "report.md"
    docs_before = {p: p.read_bytes() if p.exists() else None for p in COMMITTED}

    result = run_bench("--quick", "--json", str(figures_file), "--md", str(report), "envelope")

    assert result.returncode == 0, result.stderr
    doc = json.loads(figures_file.read_text(encoding="utf-8"))
    figures = doc["figures"]
    assert set(figures) >= ENVELOPE_FIGURES
    for name in ENVELOPE_FIGURES:
        value = figures[name]["value"]
        assert isinstance(value, int | float) and not isinstance(value, bool), name
        assert math.isfinite(value), name
        assert figures[name]["quick"] is True
        assert figures[name]["machine"]["nproc"] >= 1
    assert doc["benchmarks"]["envelope"]["figures"][0] == "envelope_vs_raw"
    text = report.read_text(encoding="utf-8")
    assert "envelope_vs_raw" in text and "--quick" in text
    docs_after = {p: p.read_bytes() if p.exists() else None for p in COMMITTED}
    assert docs_after == docs_before


def test_rerun_merges_with_other_figures(tmp_path: Path) -> None:
    """Running one benchmark keeps figures another benchmark left in the same file."""
    figures_file = tmp_path / "figures.json"
    figures_file.write_text(
        json.dumps(
            {
                "schema": 1,
                "benchmarks": {"other": {"description": "x", "figures": ["other_figure"]}},
                "figures": {"other_figure": {"benchmark": "other", "value": 1.0, "unit": "x"}},
            }
        ),
        encoding="utf-8",
    )
    md = tmp_path / "report.md"
    result = run_bench("--quick", "--json", str(figures_file), "--md", str(md), "envelope")

    assert result.returncode == 0, result.stderr
    figures = json.loads(figures_file.read_text(encoding="utf-8"))["figures"]
    assert "other_figure" in figures and "envelope_vs_raw" in figures


def test_unknown_benchmark_exits_2(tmp_path: Path) -> None:
    figures_file = tmp_path / "figures.json"
    result = run_bench("--json", str(figures_file), "--md", str(tmp_path / "r.md"), "no_such")

    assert result.returncode == 2
    assert "no_such" in result.stderr
    assert not figures_file.exists()


@pytest.mark.skipif(
    os.environ.get("BARNPLAN_BENCH_SMOKE") != "1",
    reason="starts many node processes for minutes; set BARNPLAN_BENCH_SMOKE=1 to run",
)
@pytest.mark.parametrize("name", sorted(NODE_BENCHMARK_FIGURES))
def test_quick_node_benchmark_records_numeric_figures(tmp_path: Path, name: str) -> None:
    """Each benchmark that starts real nodes runs end to end with --quick and records numbers."""
    figures_file = tmp_path / "figures.json"
    result = run_bench(
        "--quick", "--json", str(figures_file), "--md", str(tmp_path / "r.md"), name, timeout=600
    )

    assert result.returncode == 0, result.stderr[-4000:]
    figures = json.loads(figures_file.read_text(encoding="utf-8"))["figures"]
    assert set(figures) >= NODE_BENCHMARK_FIGURES[name]
    for figure in NODE_BENCHMARK_FIGURES[name]:
        value = figures[figure]["value"]
        assert isinstance(value, int | float) and not isinstance(value, bool), figure
        assert math.isfinite(value), figure
        assert figures[figure]["benchmark"] == name
