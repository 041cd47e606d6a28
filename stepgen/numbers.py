"""A token's numbers, from the logits it was chosen from: probability, log-probability, rank, and the entropy.

:func:`token_numbers` is the one place these are computed, for generation
(raw logits and processed scores of every step), stepping, the next-token
distribution and scoring. It works on a batch: rows of logits (one row per
position or sequence) and, per row, one or more token ids. The rules:

* probability: ``softmax`` of the row, exactly what sampling draws from and what
  the model's own softmax gives (so a row no setting changed shows the same
  probability raw and final, to the bit); log-probability: ``log_softmax`` of
  the row (what ``compute_transition_scores`` gives; where the probability
  underflows to 0 the log stays finite);
* rank: 1 + the number of tokens whose logit is greater than the token's (ties
  share a rank; a comparison per token, never a sort of the vocabulary);
* entropy of the row's distribution, in bits (:func:`row_entropy_bits`).

It does not choose tokens, apply settings or run a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG2E = 1 / math.log(2)


@dataclass(frozen=True)
class TokenNumbers:
    """The numbers of some tokens of each row, as tensors: ``(rows, k)`` per token, ``(rows,)`` per row."""

    logprob: torch.Tensor
    prob: torch.Tensor
    rank: torch.Tensor
    entropy: torch.Tensor
    """Entropy of each row's distribution, in bits."""


def row_entropy_bits(logp: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of log-probabilities, in bits (tokens with probability 0 add nothing)."""
    return -(logp.exp() * logp).nansum(dim=-1) * LOG2E


def entropy_bits(probs: torch.Tensor) -> float:
    """Shannon entropy of a probability vector, in bits (zeros contribute nothing)."""
    return float(torch.special.entr(probs).sum() * LOG2E)


def token_numbers(logits: torch.Tensor, tokens: torch.Tensor) -> TokenNumbers:
    """The numbers of ``tokens`` (shape ``(rows,)`` or ``(rows, k)``) under ``logits`` (shape ``(rows, vocab)``)."""
    logits = logits.float()
    index = tokens.reshape(logits.shape[0], -1)
    logp = torch.log_softmax(logits, dim=-1)
    token_logp = logp.gather(1, index)
    own = logits.gather(1, index)
    rank = (logits.unsqueeze(1) > own.unsqueeze(2)).sum(dim=-1) + 1
    prob = torch.softmax(logits, dim=-1).gather(1, index)
    return TokenNumbers(logprob=token_logp, prob=prob, rank=rank, entropy=row_entropy_bits(logp))
