"""The node's one error tree (node/errors.py): every exception class the node defines derives
from ``NodeError`` and carries a code; statuses are chosen in node/web/ and exit codes in
node/cli/ alone."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import node
from node.cli.main import USER_ERRORS, describe
from node.errors import (
    Conflict,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NodeError,
    NotFound,
    Refusal,
    Unavailable,
)
from node.web.federation import status_of
from node.web.problems import answer_for
from protocol.errors import Reason

NODE = Path(node.__file__).resolve().parent
# click's own exception, which click itself prints and exits with
OUTSIDE_THE_TREE = {"node.cli.demo.DemoError"}
CODE = re.compile(r"^[a-z][a-z0-9_]*$")


def node_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages([str(NODE)], "node."):
        if ".migrations" in info.name or info.name.endswith("__main__"):
            continue  # alembic's env runs a migration when imported; __main__ runs the CLI
        names.append(info.name)
    return names


def test_every_exception_the_node_defines_is_in_the_tree() -> None:
    outside, seen = set(), 0
    for name in node_modules():
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != name or not issubclass(cls, BaseException):
                continue
            seen += 1
            where = f"{name}.{cls.__qualname__}"
            if not issubclass(cls, NodeError):
                outside.add(where)
            else:
                assert CODE.match(cls.code), where
    assert seen > 10
    assert outside == OUTSIDE_THE_TREE


def test_services_know_no_http_status() -> None:
    for path in (NODE / "services").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for item in ast.walk(tree):
            if isinstance(item, ast.keyword) and item.arg == "status":
                assert not isinstance(item.value, ast.Constant) or not isinstance(
                    item.value.value, int
                ), f"{path}: an HTTP status"
            if isinstance(item, ast.Name):
                assert item.id != "HTTP_STATUS", f"{path}: an HTTP status table"


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidInput("x"), 422),
        (InvalidInput("not JSON", code="malformed_json"), 400),
        (NotFound("x"), 404),
        (Forbidden("x"), 403),
        (Conflict("x"), 409),
        (Unavailable("x"), 503),
    ],
)
def test_the_web_layer_answers_each_branch_with_its_status(error: NodeError, status: int) -> None:
    assert answer_for(error)[0] == status


def test_a_refusal_is_answered_by_its_code_then_its_reason() -> None:
    assert status_of(None) == 200
    assert status_of(Refusal(Reason.UNKNOWN_SENDER, "x")) == 400  # a handler's refusal
    assert status_of(Refusal(Reason.UNKNOWN_SENDER, "x", code="unknown_sender")) == 401
    assert status_of(Refusal(Reason.REPLAYED, "x", code="change_refused")) == 409
    assert status_of(Refusal(Reason.MALFORMED, "x", code="checkpoint_conflict")) == 409
    assert status_of(Refusal(Reason.INTERNAL, "x", code="internal")) == 500


def test_an_error_carries_its_code_params_and_fields() -> None:
    error = InvalidInput(
        "the child could not be saved",
        code="child_invalid",
        params={"n": 1},
        fields={"name": FieldProblem("missing", "required")},
    )
    assert (error.code, dict(error.params), str(error)) == (
        "child_invalid",
        {"n": 1},
        "the child could not be saved",
    )
    assert error.errors == {"name": "required"}
    assert Refusal(Reason.MALFORMED, "bad").params == {"reason": "malformed"}


def test_the_cli_reports_every_node_error_as_one_line() -> None:
    assert NodeError in USER_ERRORS
    error = InvalidInput("bad user", fields={"role": FieldProblem("unknown_role", "unknown role")})
    assert describe(error) == "bad user (role: unknown role)"
