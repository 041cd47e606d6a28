"""How likely the model found each token of a text: its prediction at every position, from one pass.

A causal model predicts the next token at *every* position of its input, not
only after the last one: its logits have one row per position. Row ``i - 1``
is what it expected before it read token ``i``, so one forward pass tells how
probable each token of a text was, which token the model would have picked
there instead, how unsure it was, and the perplexity of the whole text.

The numbers are the model's raw probabilities (the softmax of each row): no
decoding setting applies to a text that is already written. The pass runs in
chunks that carry the KV cache forward, so the logits of a long text never
need to be held all at once. This module does not tokenize text (the caller
passes ids) and keeps nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from stepgen.inputs import check_ids
from stepgen.numbers import token_numbers
from stepgen.tokens import token_text

MAX_SCORED = 2048
"""The longest text scored at once, in tokens (one pass over it, in chunks)."""
CHUNK = 256
"""Tokens per forward pass: the logits of one chunk (``CHUNK`` × vocabulary floats) are all that is held."""


@dataclass(frozen=True)
class TokenScore:
    """One token of the text and what the model expected at its position."""

    position: int
    id: int
    text: str
    """Readable form (hex for partial UTF-8), see :func:`stepgen.tokens.token_text`."""
    prob: float | None
    """The probability the model gave this token, having read the tokens before it (None for the first)."""
    logprob: float | None
    rank: int | None
    """1 when it was the model's most likely token there."""
    entropy: float | None
    """How unsure the model was at this position, in bits."""
    expected_id: int | None
    """The token the model found most likely there (greedy decoding would have written it)."""
    expected_text: str | None
    expected_prob: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"position": self.position, "id": self.id, "text": self.text, "prob": self.prob,
                "logprob": self.logprob, "rank": self.rank, "entropy": self.entropy,
                "expected_id": self.expected_id, "expected_text": self.expected_text,
                "expected_prob": self.expected_prob}


@dataclass(frozen=True)
class TextScore:
    """Every token of a text with the model's probability for it, and the text's perplexity."""

    tokens: tuple[TokenScore, ...]

    @property
    def scored(self) -> tuple[TokenScore, ...]:
        """The tokens the model predicted (all but the first: nothing comes before it)."""
        return tuple(token for token in self.tokens if token.logprob is not None)

    @property
    def logprob(self) -> float:
        """Sum of the natural-log probabilities of the scored tokens."""
        return math.fsum(token.logprob for token in self.scored)

    @property
    def perplexity(self) -> float | None:
        """exp of the mean negative log-probability per scored token (1 = no surprise at all)."""
        scored = self.scored
        return math.exp(-self.logprob / len(scored)) if scored else None

    def to_dict(self) -> dict[str, Any]:
        return {"tokens": [token.to_dict() for token in self.tokens], "ids": [token.id for token in self.tokens],
                "scored": len(self.scored), "logprob": self.logprob if self.scored else None,
                "perplexity": self.perplexity}


@torch.no_grad()
def score(loaded: Any, ids: list[int]) -> TextScore:
    """The model's probability for every token of ``ids`` given the tokens before it."""
    if hasattr(ids, "__len__") and len(ids) > MAX_SCORED:  # before anything else: no work for a text too long
        raise ValueError(f"`token_ids` has to hold at most {MAX_SCORED} tokens to be scored, but holds {len(ids)}; "
                         "score a shorter text")
    ids = check_ids(loaded, ids)
    tokenizer = loaded.tokenizer
    tokens = [TokenScore(0, ids[0], token_text(tokenizer, ids[0]), None, None, None, None, None, None, None)]
    cache = None
    # row i of a chunk's logits predicts the token after it; the last row of a chunk predicts the next chunk's first
    for start in range(0, len(ids) - 1, CHUNK):
        chunk = ids[start : start + CHUNK]
        out = loaded.model(input_ids=torch.tensor([chunk], device=loaded.device), past_key_values=cache,
                           use_cache=True)
        cache = out.past_key_values
        following = ids[start + 1 : start + 1 + len(chunk)]
        rows = out.logits[0, : len(following)]
        best_ids = rows.argmax(dim=-1)
        # the token written and the one the model found likeliest, in one pass over each row
        numbers = token_numbers(rows, torch.stack([torch.tensor(following, device=rows.device), best_ids], dim=1))
        probs, logprobs, ranks = numbers.prob.tolist(), numbers.logprob.tolist(), numbers.rank.tolist()
        for offset, token_id in enumerate(following):
            best = int(best_ids[offset])
            tokens.append(TokenScore(
                position=start + 1 + offset, id=token_id, text=token_text(tokenizer, token_id),
                prob=probs[offset][0], logprob=logprobs[offset][0], rank=ranks[offset][0],
                entropy=float(numbers.entropy[offset]), expected_id=best, expected_text=token_text(tokenizer, best),
                expected_prob=probs[offset][1],
            ))
    return TextScore(tokens=tuple(tokens))
