"""Where a text repeats itself: the tokens that complete a run of tokens already seen before.

Greedy decoding is famous for loops: once a phrase has been written, writing
it again becomes likely, and the text goes round in circles. A token is marked
as repeating when the ``n`` tokens ending with it (an n-gram) already occurred
earlier in the same sequence, prompt included: exactly the n-grams that
``no_repeat_ngram_size=n`` would have forbidden. This module works on token ids
only; how the marks are shown is the app's business.
"""

from __future__ import annotations

from collections.abc import Sequence

NGRAM = 3
"""The run length that counts as a repetition (three tokens: a phrase, not a common word pair)."""


def repeats(ids: Sequence[int], n: int = NGRAM) -> tuple[bool, ...]:
    """For each position, True when the ``n`` tokens ending there occurred earlier in ``ids``."""
    if n < 1:
        raise ValueError(f"`n` has to be a positive integer, but is {n}")
    seen: set[tuple[int, ...]] = set()
    marks = []
    for end in range(len(ids)):
        if end + 1 < n:
            marks.append(False)
            continue
        gram = tuple(ids[end + 1 - n : end + 1])
        marks.append(gram in seen)
        seen.add(gram)
    return tuple(marks)


def first_repeat(ids: Sequence[int], start: int = 0, n: int = NGRAM) -> int | None:
    """The first position at or after ``start`` that completes an n-gram seen before, or None."""
    return next((index for index, mark in enumerate(repeats(ids, n)) if mark and index >= start), None)


def distinct(ids: Sequence[int], n: int = 2) -> float | None:
    """The share of the n-grams in ``ids`` that are different from each other (1 = no n-gram twice), or None
    when ``ids`` holds fewer than ``n`` tokens (the "distinct-n" measure of Li et al., 2016)."""
    if n < 1:
        raise ValueError(f"`n` has to be a positive integer, but is {n}")
    grams = [tuple(ids[start : start + n]) for start in range(len(ids) - n + 1)]
    return len(set(grams)) / len(grams) if grams else None
