"""barnplan benchmarks: measured figures with goals, recorded in docs/benchmarks.json.

Run ``python -m bench [--quick] [--json FILE] [--md FILE] [NAME ...]``. Benchmarks are not tests:
they report numbers and whether a goal is met, and never fail a build by themselves.

``BENCHMARKS`` is the one registry. Entries are ``"module:function"`` strings rather than imported
functions so that listing or running one benchmark never imports the others (a later benchmark may
pull in aiohttp, a database driver or a node); the harness imports only what it runs. To add a
benchmark, write ``bench/<name>.py`` with a ``run(config: RunConfig) -> list[Figure]`` function
(see ``bench.harness``) and add one line here.
"""

from __future__ import annotations

BENCHMARKS: dict[str, str] = {
    "envelope": "bench.envelope:run",
    "serve": "bench.serve:run",
    "assembly": "bench.assembly:run",
    "revocation": "bench.revocation:run",
    "log": "bench.log:run",
}
