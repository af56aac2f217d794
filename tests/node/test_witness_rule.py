"""The witness rule (SPEC.md §7.8) decides from what the witness holds alone: each case here is
one line of the rule."""

from __future__ import annotations

import pytest

from node.domain.witness_rule import Held, Link, Problem, declaration_problem, judge

A, B, C = "a" * 64, "b" * 64, "c" * 64
NOTHING = Held(None, None)


def test_the_first_checkpoint_of_a_log_is_taken_as_it_is() -> None:
    assert judge(Link(7, A), None, NOTHING) is None
    assert judge(Link(7, A), Link(3, B), NOTHING) is None


def test_a_checkpoint_witnessed_before_is_signed_again_with_its_head_only() -> None:
    held = Held(A, Link(9, C))
    assert judge(Link(7, A), None, held) is None
    assert judge(Link(7, B), None, held) is Problem.DIFFERENT_HEAD


@pytest.mark.parametrize("prior", [None, Link(5, B), Link(2, A)])
def test_a_seq_below_the_latest_witnessed_is_a_shorter_log(prior: Link | None) -> None:
    assert judge(Link(6, A), prior, Held(None, Link(9, C))) is Problem.SHORTER_LOG


def test_a_higher_seq_following_the_latest_link_extends_the_log() -> None:
    assert judge(Link(12, A), Link(9, C), Held(None, Link(9, C))) is None


@pytest.mark.parametrize(
    "prior",
    [None, Link(8, C), Link(10, C), Link(2, B)],
    ids=["no prior", "an earlier link", "a later link", "a link the witness never saw"],
)
def test_a_higher_seq_not_naming_the_latest_link_is_not_an_extension(prior: Link | None) -> None:
    assert judge(Link(12, A), prior, Held(None, Link(9, C))) is Problem.NOT_EXTENSION


def test_a_prior_at_the_latest_seq_with_another_head_is_a_rewritten_log() -> None:
    assert judge(Link(12, A), Link(9, B), Held(None, Link(9, C))) is Problem.DIFFERENT_HEAD


def test_a_declaration_restores_to_the_history_witnessed_or_to_an_entry_never_seen() -> None:
    assert declaration_problem(Link(5, A), A) is None
    assert declaration_problem(Link(5, A), None) is None
    assert declaration_problem(Link(5, A), B) is Problem.DIFFERENT_HEAD
