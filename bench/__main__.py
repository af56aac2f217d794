"""``python -m bench``: see ``bench.harness.main`` for options and exit codes."""

from __future__ import annotations

from .harness import main

raise SystemExit(main())
