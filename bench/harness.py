"""The benchmark harness: timing helpers, the figure record, and the JSON/Markdown writers.

A benchmark is a function ``run(config: RunConfig) -> list[Figure]`` registered in
``bench.BENCHMARKS``. The harness runs the requested ones, prints a table, merges their figures
into ``docs/benchmarks.json`` by stable name and regenerates ``docs/BENCHMARKS.md`` from that JSON.

Design choices, and why:

* Every figure carries its own provenance (machine, exact command, date, quick or not) because the
  JSON is merged across runs: running one benchmark must not erase the others, so one file ends up
  holding figures measured at different times, possibly on different machines.
* Re-running a benchmark replaces *all* of that benchmark's figures, so a renamed or dropped figure
  does not linger with a stale number.
* Timings are medians over several repeats after a warm-up. The median resists the odd slow repeat
  (GC pause, another process on this 2-core machine); we report it rather than the minimum because
  the goals are about what a node typically pays, not the best case.
* Comparisons (ours vs a baseline) are timed interleaved, repeat by repeat, so drift in machine
  speed during the run hits both sides alike (DESIGN.md §9: ratios hold better than absolutes).
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import math
import os
import platform
import re
import shlex
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

from . import BENCHMARKS

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = REPO_ROOT / "docs" / "benchmarks.json"
DEFAULT_MD = REPO_ROOT / "docs" / "BENCHMARKS.md"
JSON_SCHEMA_VERSION = 1
_FIGURE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Libraries whose version moves our numbers: Ed25519 lives in PyNaCl's libsodium (OpenSSL's is
# timed for comparison), body validation in pydantic, reference canonicalization in rfc8785.
_LIBRARIES = ("pynacl", "cryptography", "pydantic", "pydantic-core", "rfc8785")


class BenchmarkError(Exception):
    """A benchmark or the figures file is unusable; the message says what to fix."""


@dataclass(frozen=True)
class RunConfig:
    """What a benchmark may vary by: ``quick`` asks for few iterations (smoke tests, CI)."""

    quick: bool = False

    def pick(self, full: int, quick: int) -> int:
        """Choose an iteration count: ``full`` for real runs, ``quick`` for smoke runs."""
        return quick if self.quick else full


@dataclass(frozen=True)
class Figure:
    """One measured number with a stable name and, optionally, a goal it is judged against.

    ``threshold`` with ``higher_is_better`` is the goal predicate: met when ``value >= threshold``
    (higher is better) or ``value <= threshold`` (lower is better). ``goal`` says in words why
    that threshold; a figure without a threshold is context (e.g. a message size) and is never
    "missed".
    """

    name: str
    value: float
    unit: str
    description: str
    goal: str | None = None
    threshold: float | None = None
    higher_is_better: bool = True

    def __post_init__(self) -> None:
        if not _FIGURE_NAME.match(self.name):
            raise BenchmarkError(f"figure name {self.name!r} must be lower_snake_case")
        if not math.isfinite(self.value):
            raise BenchmarkError(f"figure {self.name!r} has a non-finite value {self.value!r}")

    @property
    def met(self) -> bool | None:
        return goal_met(self.value, self.threshold, self.higher_is_better)


def goal_met(value: float, threshold: float | None, higher_is_better: bool) -> bool | None:
    """The goal predicate shared by live figures and figures read back from JSON."""
    if threshold is None:
        return None
    return value >= threshold if higher_is_better else value <= threshold


BenchmarkFn = Callable[[RunConfig], list[Figure]]


# --- timing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Seconds per call, one sample per repeat; summarize with ``median``."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """(max - min) / median: how noisy the repeats were, for the printed notes."""
        return (max(self.samples) - min(self.samples)) / self.median if self.median else 0.0


def paired_ratio(numerator: Timing, denominator: Timing) -> float:
    """Median of per-repeat ratios of two interleaved timings.

    Both blocks of one repeat ran back to back, so a slow phase of the machine (this VM shares
    its cores) inflates both and cancels in their ratio; the median then drops the repeats where
    a burst hit only one side. This is steadier than a ratio of two medians.
    """
    if len(numerator.samples) != len(denominator.samples):
        raise BenchmarkError("paired_ratio needs timings from the same interleaved run")
    return statistics.median(
        n / d for n, d in zip(numerator.samples, denominator.samples, strict=True)
    )


def _time_block(fn: Callable[[], object], iterations: int) -> float:
    """Seconds per call of ``fn`` over one block of ``iterations`` calls."""
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations


def time_interleaved(
    fns: Mapping[str, Callable[[], object]], *, iterations: int, repeats: int, warmup: int
) -> dict[str, Timing]:
    """Time several functions repeat by repeat, alternating their order each repeat.

    Interleaving spreads slow phases of the machine over every contender, and alternating the
    order cancels any advantage of running first (warm caches) or last. A full ``gc.collect()``
    before each block keeps one contender's garbage from being collected on another's clock;
    GC stays enabled inside blocks because a node pays for its own garbage.
    """
    if iterations < 1 or repeats < 1:
        raise BenchmarkError("iterations and repeats must be at least 1")
    names = list(fns)
    for name in names:
        for _ in range(warmup):
            fns[name]()
    samples: dict[str, list[float]] = {name: [] for name in names}
    for repeat in range(repeats):
        order = names if repeat % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            samples[name].append(_time_block(fns[name], iterations))
    return {name: Timing(tuple(values)) for name, values in samples.items()}


def time_per_call(
    fn: Callable[[], object], *, iterations: int, repeats: int, warmup: int
) -> Timing:
    """Median-ready timing of one function (see ``time_interleaved``)."""
    return time_interleaved({"fn": fn}, iterations=iterations, repeats=repeats, warmup=warmup)["fn"]


# --- provenance -------------------------------------------------------------------------------


def _read_proc(path: str, key: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                name, sep, value = line.partition(":")
                if sep and name.strip() == key:
                    return value.strip()
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on; ``nproc`` honours CPU affinity like nproc(1) does."""
    try:
        nproc = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        nproc = os.cpu_count() or 0
    memory = _read_proc("/proc/meminfo", "MemTotal")
    mem_gib: float | None = None
    if memory and memory.endswith("kB"):
        mem_gib = round(int(memory.split()[0]) / 1024 / 1024, 1)
    libraries: dict[str, str] = {}
    for name in _LIBRARIES:
        try:
            libraries[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return {
        "nproc": nproc,
        "cpu_model": _read_proc("/proc/cpuinfo", "model name") or platform.processor() or "?",
        "memory_gib": mem_gib,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "libraries": libraries,
    }


def load_average() -> float | None:
    """1-minute load average: on a shared 2-core machine, what else ran explains odd numbers."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def command_line(argv: Sequence[str]) -> str:
    """The exact command as a shell would take it, so a reader can re-run it verbatim."""
    return shlex.join([sys.executable, "-m", "bench", *argv])


# --- the figures file -------------------------------------------------------------------------


def _round_sig(value: float, digits: int = 4) -> float:
    """Keep 4 significant digits: more is noise, and it keeps diffs of the JSON readable."""
    if value == 0:
        return 0.0
    return round(value, digits - 1 - math.floor(math.log10(abs(value))))


def load_figures(path: Path) -> dict[str, Any]:
    """Read the figures file, or an empty one if it does not exist yet.

    A file that exists but is not ours is an error rather than something to overwrite: it may
    hold the only record of figures measured elsewhere.
    """
    if not path.exists():
        return {"schema": JSON_SCHEMA_VERSION, "benchmarks": {}, "figures": {}}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BenchmarkError(f"cannot read figures file {path}: {exc}") from exc
    if (
        not isinstance(doc, dict)
        or doc.get("schema") != JSON_SCHEMA_VERSION
        or not isinstance(doc.get("figures"), dict)
        or not isinstance(doc.get("benchmarks"), dict)
    ):
        raise BenchmarkError(f"{path} is not a schema-{JSON_SCHEMA_VERSION} figures file")
    return doc


def merge_figures(
    doc: dict[str, Any],
    benchmark: str,
    description: str,
    figures: Sequence[Figure],
    provenance: Mapping[str, Any],
) -> None:
    """Replace ``benchmark``'s figures in ``doc`` with ``figures``; leave every other one alone."""
    names = [f.name for f in figures]
    if len(set(names)) != len(names):
        raise BenchmarkError(f"benchmark {benchmark!r} reported a figure name twice: {names}")
    for name in names:
        owner = doc["figures"].get(name, {}).get("benchmark")
        if owner not in (None, benchmark):
            raise BenchmarkError(f"figure {name!r} already belongs to benchmark {owner!r}")
    for name in doc["benchmarks"].get(benchmark, {}).get("figures", []):
        doc["figures"].pop(name, None)
    for figure in figures:
        value = _round_sig(figure.value)
        doc["figures"][figure.name] = {
            "benchmark": benchmark,
            "value": value,
            "unit": figure.unit,
            "description": figure.description,
            "goal": figure.goal,
            "threshold": figure.threshold,
            "higher_is_better": figure.higher_is_better,
            "met": goal_met(value, figure.threshold, figure.higher_is_better),
            **provenance,
        }
    doc["benchmarks"][benchmark] = {"description": description, "figures": names}


def _write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file and rename, so an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_figures(path: Path, doc: Mapping[str, Any]) -> None:
    _write_atomically(path, json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


# --- rendering --------------------------------------------------------------------------------


def format_value(value: float) -> str:
    """Readable numbers: thousands separators for big ones, 4 significant digits otherwise."""
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def format_goal(goal: str | None, threshold: float | None, higher_is_better: bool) -> str:
    if threshold is None:
        return goal or "—"
    bound = f"{'≥' if higher_is_better else '≤'} {format_value(threshold)}"
    return f"{bound} ({goal})" if goal else bound


def format_met(met: bool | None) -> str:
    return {True: "yes", False: "**NO**", None: "—"}[met]


def _describe_machine(machine: Mapping[str, Any]) -> str:
    memory = machine.get("memory_gib")
    libraries = ", ".join(f"{k} {v}" for k, v in sorted(machine.get("libraries", {}).items()))
    parts = [
        f"{machine.get('nproc', '?')} CPUs (nproc)",
        str(machine.get("cpu_model", "?")),
        f"{memory} GiB memory" if memory is not None else "memory unknown",
        str(machine.get("python", "?")),
        str(machine.get("platform", "?")),
    ]
    if libraries:
        parts.append(libraries)
    return "; ".join(parts)


def _benchmark_order(doc: Mapping[str, Any]) -> list[str]:
    """Registry order first (the order a reader meets them in), then any no longer registered."""
    present = list(doc["benchmarks"])
    return [b for b in BENCHMARKS if b in present] + sorted(
        b for b in present if b not in BENCHMARKS
    )


FINDINGS = Path(__file__).resolve().parent / "FINDINGS.md"


def render_markdown(doc: Mapping[str, Any], json_name: str) -> str:
    """docs/BENCHMARKS.md from the figures file alone, so the two can never disagree."""
    machines: list[str] = []
    lines = [
        "# Benchmarks",
        "",
        f"Generated by `python -m bench` from `{json_name}`; do not edit by hand. Benchmarks are",
        "not tests: a missed goal is a finding to act on, not a failing build. Ratios carry over",
        "between machines better than absolute times do (DESIGN.md §9). Timings are medians of",
        "several repeats after a warm-up.",
        "",
    ]
    for benchmark in _benchmark_order(doc):
        entry = doc["benchmarks"][benchmark]
        lines += [f"## `{benchmark}`", "", entry.get("description", "").strip(), ""]
        runs: dict[tuple[str, str, str, bool, object], list[str]] = {}
        for name in entry.get("figures", []):
            figure = doc["figures"].get(name)
            if figure is None:
                continue
            machine = _describe_machine(figure.get("machine", {}))
            if machine not in machines:
                machines.append(machine)
            key = (
                figure.get("measured_at", "?"),
                figure.get("command", "?"),
                machine,
                bool(figure.get("quick")),
                figure.get("load_1m"),
            )
            runs.setdefault(key, []).append(name)
        for (measured_at, command, machine, quick, load), names in runs.items():
            label = chr(ord("A") + machines.index(machine))
            lines.append(
                f"Measured {measured_at} on machine {label} with `{command}`"
                + (f" (1-minute load average before the run: {load})" if load is not None else "")
                + (" — **quick run: few iterations, rough numbers**." if quick else ".")
            )
            lines += ["", "| Figure | Value | Unit | Goal | Met |", "|---|---:|---|---|---|"]
            for name in names:
                f = doc["figures"][name]
                goal = format_goal(
                    f.get("goal"), f.get("threshold"), f.get("higher_is_better", True)
                )
                cells = [
                    f"`{name}`",
                    format_value(f["value"]),
                    str(f.get("unit", "")),
                    goal,
                    format_met(f.get("met")),
                ]
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
            lines.append("")
            for name in names:
                lines.append(f"- `{name}`: {doc['figures'][name].get('description', '')}")
            lines.append("")
    if machines:
        lines += ["## Machines", ""]
        for index, machine in enumerate(machines):
            lines.append(f"- **{chr(ord('A') + index)}**: {machine}")
        lines.append("")
    if FINDINGS.exists():  # what profiling found: written by people, kept with the figures
        lines += [FINDINGS.read_text(encoding="utf-8").strip(), ""]
    return "\n".join(lines)


def write_markdown(path: Path, doc: Mapping[str, Any], json_path: Path) -> None:
    try:
        json_name = str(json_path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        json_name = str(json_path)
    _write_atomically(path, render_markdown(doc, json_name))


def print_table(rows: Sequence[tuple[str, Figure]], out: TextIO | None = None) -> None:
    """The console summary: one row per figure, columns padded to fit."""
    out = out or sys.stdout
    header = ("benchmark", "figure", "value", "unit", "goal", "met?")
    table = [header] + [
        (
            bench,
            f.name,
            format_value(f.value),
            f.unit,
            format_goal(None, f.threshold, f.higher_is_better),
            {True: "yes", False: "NO", None: "-"}[f.met],
        )
        for bench, f in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for index, row in enumerate(table):
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)), file=out
        )
        if index == 0:
            print("  ".join("-" * width for width in widths), file=out)


# --- running ----------------------------------------------------------------------------------


def resolve(name: str) -> tuple[BenchmarkFn, str]:
    """Import a registered benchmark; return its function and its module's description."""
    target = BENCHMARKS[name]
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise BenchmarkError(f"registry entry {name!r} -> {target!r} is not a function")
    description = (module.__doc__ or "").strip()
    return fn, description


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run barnplan benchmarks and record their figures.",
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="few iterations; rough numbers")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help=f"figures file to merge into (default: {DEFAULT_JSON.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--md",
        type=Path,
        default=None,
        help=(
            f"Markdown report to regenerate (default: {DEFAULT_MD.relative_to(REPO_ROOT)}, or, "
            "when --json is given, the same path with a .md suffix so a side run never rewrites "
            "the committed report from a different figures file)"
        ),
    )
    parser.add_argument("--list", action="store_true", help="list registered benchmarks and exit")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m bench``; returns the process exit code.

    Exit codes: 0 all requested benchmarks ran (goals met or not), 1 a benchmark crashed or the
    figures file is unusable, 2 usage error such as an unknown benchmark name.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.list:
        for name in BENCHMARKS:
            print(name)
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(BENCHMARKS)}"
        )  # exits with status 2
    names = list(dict.fromkeys(args.names)) or list(BENCHMARKS)
    json_path: Path = args.json or DEFAULT_JSON
    md_path: Path = args.md or (json_path.with_suffix(".md") if args.json else DEFAULT_MD)

    try:
        doc = load_figures(json_path)
    except BenchmarkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if args.quick and json_path == DEFAULT_JSON:
        print(
            "warning: --quick numbers are rough and will replace the recorded ones in "
            f"{json_path}; pass --json to keep them elsewhere",
            file=sys.stderr,
        )
    config = RunConfig(quick=args.quick)
    provenance = {
        "command": command_line(args_list),
        "machine": machine_info(),
        "quick": args.quick,
    }
    rows: list[tuple[str, Figure]] = []
    failed: list[str] = []
    for name in names:
        print(f"running {name}{' (quick)' if args.quick else ''} ...", file=sys.stderr)
        started = time.perf_counter()
        load = load_average()
        try:
            fn, description = resolve(name)
            figures = fn(config)
            measured_at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            merge_figures(
                doc,
                name,
                description,
                figures,
                {**provenance, "measured_at": measured_at, "load_1m": load},
            )
        except Exception:  # a crashing benchmark must not cost the others their figures
            traceback.print_exc()
            failed.append(name)
            continue
        print(f"  {name} took {time.perf_counter() - started:.1f} s", file=sys.stderr)
        rows += [(name, f) for f in figures]
    if rows:
        print_table(rows)
        write_figures(json_path, doc)
        write_markdown(md_path, doc, json_path)
        print(f"wrote {json_path} and {md_path}", file=sys.stderr)
    if failed:
        print(f"error: benchmark(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


__all__ = [
    "BenchmarkError",
    "BenchmarkFn",
    "Figure",
    "RunConfig",
    "Timing",
    "main",
    "paired_ratio",
    "time_interleaved",
    "time_per_call",
]
