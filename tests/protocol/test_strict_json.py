"""Strict Python-mode validation of a parsed body gives strict JSON-mode's verdict and model for
every type in ``PARSED_BODY_TYPES``, and types where the modes differ are kept out of it."""

from __future__ import annotations

import copy
from datetime import date
from typing import Annotated, Any, Literal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import AfterValidator, BaseModel, Field, ValidationError, field_validator

from protocol.codes import Category
from protocol.messages import MESSAGE_TYPES, PARSED_BODY_TYPES
from protocol.models import Timestamp, WireModel
from protocol.strict_json import python_mode_is_json_mode
from tests.schemas.test_schemas import body

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53 - 1), 2**53 - 1),
    st.sampled_from([0, 1, -1, 5, 5.0, 1.5, -0.0, 1e300]),
    st.sampled_from(
        [
            "",
            "5",
            "true",
            "null",
            "linked",
            "stored",
            "sip",
            "education",
            "2026-11-23T09:00:00Z",
            "2026-11-23",
            "00000000-0000-0000-0000-000000000001",
            "skola.test.se",
            "skola.test.se/u/17",
        ]
    ),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children)
    ),
    max_leaves=8,
)


def paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, the root included."""
    found = [here]
    if isinstance(value, dict):
        for key, sub in value.items():
            found += paths(sub, (*here, key))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            found += paths(sub, (*here, index))
    return found


def mutate(value: Any, where: tuple[Any, ...], how: str, new: Any) -> Any:
    result = copy.deepcopy(value)
    if not where:
        return new if how == "replace" else result
    parent = result
    for step in where[:-1]:
        parent = parent[step]
    last = where[-1]
    if how == "replace":
        parent[last] = new
    elif how == "delete":
        del parent[last]
    elif isinstance(parent, dict):
        parent[f"extra_{len(parent)}"] = new
    return result


def verdicts(model: type[BaseModel], value: Any) -> tuple[BaseModel | None, BaseModel | None]:
    try:
        python: BaseModel | None = model.model_validate(value, strict=True)
    except ValidationError:
        python = None
    try:
        as_json: BaseModel | None = model.model_validate_json(orjson.dumps(value), strict=True)
    except ValidationError:
        as_json = None
    return python, as_json


@given(
    st.sampled_from(sorted(PARSED_BODY_TYPES)),
    st.integers(0, 10_000),
    st.sampled_from(["replace", "delete", "add"]),
    json_values,
)
def test_python_mode_gives_json_modes_verdict(name: str, pick: int, how: str, new: Any) -> None:
    example = body(name)
    where = paths(example)[pick % len(paths(example))]
    value = mutate(example, where, how, new)
    python, as_json = verdicts(MESSAGE_TYPES[name], value)
    assert (python is None) == (as_json is None), (name, value)
    assert python == as_json


@pytest.mark.parametrize("name", sorted(PARSED_BODY_TYPES))
def test_valid_examples_pass_both_ways(name: str) -> None:
    python, as_json = verdicts(MESSAGE_TYPES[name], body(name))
    assert python is not None and python == as_json


def test_the_common_bodies_qualify() -> None:
    """The types a node exchanges most, and the benchmark's consent.statement."""
    assert {"consent.statement", "consent.ack", "hello", "revocations.since"} <= PARSED_BODY_TYPES


class Plain(WireModel):
    n: Annotated[int, Field(ge=0)]
    tags: list[str] = Field(default_factory=list)
    extra: dict[str, Any] | None = None
    kind: Literal["a", "b"] = "a"


class WithEnum(WireModel):
    category: Category


class WithFloat(WireModel):
    x: float


class WithDate(WireModel):
    on: date


class WithUnion(WireModel):
    x: int | str


class WithValidator(WireModel):
    x: str

    @field_validator("x")
    @classmethod
    def _x(cls, value: str) -> str:
        return value


def _upper(value: str) -> str:
    return value.upper()


class WithOtherAfterValidator(WireModel):
    x: Annotated[str, AfterValidator(_upper)]


class WithTimestamp(WireModel):
    at: Timestamp


class WithAlias(WireModel):
    from_: str = Field(alias="from")


class Nested(WireModel):
    inner: list[WithEnum]


def test_the_check_accepts_plain_schemas() -> None:
    assert python_mode_is_json_mode(Plain)


def test_the_check_accepts_the_timestamps_mode_blind_after_validator_only() -> None:
    assert python_mode_is_json_mode(WithTimestamp)
    assert not python_mode_is_json_mode(WithOtherAfterValidator)
    for value in ("2026-11-23T09:00:00Z", "2026-02-30T00:00:00Z", 5, None):
        python, as_json = verdicts(WithTimestamp, {"at": value})
        assert python == as_json, value


@pytest.mark.parametrize(
    "model",
    [
        WithEnum,
        WithFloat,
        WithDate,
        WithUnion,
        WithValidator,
        WithOtherAfterValidator,
        WithAlias,
        Nested,
    ],
)
def test_the_check_refuses_what_it_has_not_reasoned_about(model: type[BaseModel]) -> None:
    assert not python_mode_is_json_mode(model)


def test_an_enum_really_differs_between_the_modes() -> None:
    """Why enums are kept out: strict Python mode wants the enum member, JSON mode its value."""
    python, as_json = verdicts(WithEnum, {"category": "education"})
    assert python is None and as_json is not None
