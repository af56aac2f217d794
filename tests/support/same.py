"""Field-by-field equality for the tests that hold a fast raw-SQL read equal to the SQLAlchemy
read it replaces: same type and value in every field, and datetimes aware UTC on both sides
(equal instants in different zones would compare equal and hide a conversion bug)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from node.domain.records import FragmentRecord


def assert_same_value(name: str, got: Any, expected: Any) -> None:
    assert type(got) is type(expected), (name, got, expected)
    assert got == expected, (name, got, expected)
    if isinstance(expected, datetime):
        assert expected.tzinfo is UTC and got.tzinfo is UTC, (name, got, expected)


def assert_same_records(
    got: dict[str, list[FragmentRecord]], expected: dict[str, list[FragmentRecord]]
) -> None:
    """The same categories in the same order (first authored first), record for record."""
    assert list(got) == list(expected)
    for category, want in expected.items():
        have = got[category]
        assert len(have) == len(want), category
        for g, w in zip(have, want, strict=True):
            for f in dataclasses.fields(FragmentRecord):
                assert_same_value(f.name, getattr(g, f.name), getattr(w, f.name))
