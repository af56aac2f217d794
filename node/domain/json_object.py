"""A JSON object as the node's parts hand one to each other: a statement as held, a view the
web layer serialises. ``object`` values, not ``Any``: a reader says what it expects (``str(...)``,
``isinstance``) and mypy checks that it did; a value read in many places gets a ``TypedDict``
(``shared_plan_shape``)."""

from __future__ import annotations

JsonObject = dict[str, object]
