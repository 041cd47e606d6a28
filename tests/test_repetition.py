"""Repetition marks: a token repeats when the n tokens ending with it occurred before, as no_repeat_ngram_size sees it."""

from __future__ import annotations

import pytest
import torch
from transformers import NoRepeatNGramLogitsProcessor

from stepgen.repetition import first_repeat, repeats


def test_a_loop_is_marked_from_its_second_round() -> None:
    """'the cat sat on the cat sat': the run 'the cat sat' is seen again, so its last token repeats (3-grams)."""
    the, cat, sat, on = 1, 2, 3, 4
    ids = [the, cat, sat, on, the, cat, sat, on]
    assert repeats(ids) == (False, False, False, False, False, False, True, True), repeats(ids)
    assert first_repeat(ids) == 6 and first_repeat(ids, start=7) == 7 and first_repeat(ids[:6]) is None


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_marks_are_what_no_repeat_ngram_size_forbids(n: int) -> None:
    generator = torch.Generator().manual_seed(n)
    ids = torch.randint(0, 6, (60,), generator=generator).tolist()
    processor = NoRepeatNGramLogitsProcessor(n)
    forbidden = []
    for end in range(len(ids)):
        scores = processor(torch.tensor([ids[:end]]), torch.zeros(1, 6)) if end else torch.zeros(1, 6)
        forbidden.append(bool(torch.isinf(scores[0, ids[end]])))
    assert list(repeats(ids, n)) == forbidden, f"n={n}: marks differ from what the processor bans"


def test_n_is_checked() -> None:
    with pytest.raises(ValueError, match="`n` has to be a positive integer, but is 0"):
        repeats([1, 2], 0)
