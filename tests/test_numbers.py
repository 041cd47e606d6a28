"""A token's numbers, computed in one place, on hand-made logits: no model needed."""

from __future__ import annotations

import math

import torch

from stepgen.numbers import token_numbers


def test_the_numbers_are_softmax_log_softmax_a_count_of_greater_logits_and_the_entropy() -> None:
    logits = torch.tensor([[2.0, 1.0, 1.0, -1.0], [0.0, 0.0, 0.0, 0.0]])
    numbers = token_numbers(logits, torch.tensor([2, 3]))
    logp = torch.log_softmax(logits, dim=-1)
    assert numbers.logprob.tolist() == [[float(logp[0, 2])], [float(logp[1, 3])]], numbers.logprob
    probs = torch.softmax(logits, dim=-1)
    assert numbers.prob.tolist() == [[float(probs[0, 2])], [float(probs[1, 3])]], (
        f"the probability is not the softmax, as sampling draws it: {numbers.prob}")
    assert numbers.rank.tolist() == [[2], [1]], f"tied logits share the rank below the greater ones: {numbers.rank}"
    assert abs(float(numbers.entropy[1]) - 2.0) < 1e-6, f"four equal tokens hold 2 bits, not {numbers.entropy[1]}"
    expected = -sum(p * math.log2(p) for p in logp[0].exp().tolist())
    assert abs(float(numbers.entropy[0]) - expected) < 1e-6, (numbers.entropy[0], expected)


def test_several_tokens_a_row_give_one_column_each() -> None:
    logits = torch.tensor([[3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    numbers = token_numbers(logits, torch.tensor([[0, 2], [0, 2]]))
    assert numbers.rank.tolist() == [[1, 3], [3, 1]], f"ranks per (row, token): {numbers.rank}"
    assert numbers.prob.shape == (2, 2) and numbers.entropy.shape == (2,), (numbers.prob.shape, numbers.entropy.shape)
    single = token_numbers(logits, torch.tensor([2, 2]))
    assert torch.equal(single.logprob[:, 0], numbers.logprob[:, 1]), "a token's numbers depend on its neighbours"


def test_a_probability_below_float32_shows_as_0_while_its_log_stays_finite() -> None:
    logits = torch.tensor([[0.0, -200.0, 5.0]])
    numbers = token_numbers(logits, torch.tensor([1]))
    assert float(numbers.prob) == 0.0 and math.isfinite(float(numbers.logprob)), numbers
    assert int(numbers.rank) == 3, f"two logits are greater, so the rank is 3, not {int(numbers.rank)}"


def test_cut_tokens_add_no_entropy_and_rank_after_every_survivor() -> None:
    scores = torch.tensor([[1.0, float("-inf"), 1.0, float("-inf")]])
    numbers = token_numbers(scores, torch.tensor([[1, 0]]))
    assert abs(float(numbers.entropy[0]) - 1.0) < 1e-6, f"two equal survivors hold 1 bit, not {numbers.entropy[0]}"
    assert numbers.prob.tolist() == [[0.0, 0.5]] and numbers.rank.tolist() == [[3, 1]], numbers
