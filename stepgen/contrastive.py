"""Contrastive search (Su et al., 2022, "A Contrastive Framework for Neural Text Generation"), on token ids.

At every step the ``top_k`` likeliest tokens are the candidates, by their
probability after the settings that apply without sampling (the penalties of
:meth:`DecodingSettings.processors`, then ``min_new_tokens``' ban of the end
token, in ``generate()``'s order: transformers' own processor classes). Each
candidate is scored

    (1 - penalty_alpha) * p  -  penalty_alpha * max cosine similarity

where the similarity is between the candidate's last-layer hidden state and
that of every earlier token, the prompt included (the *degeneration penalty*),
and the best score is taken, as transformers 4's ``_contrastive_search`` did.
A candidate the settings ban (probability 0) is never taken.

:func:`contrastive_steps` is the primitive: it reuses one KV cache (a
transformers ``DynamicCache``) and sends the k candidates through the model as
one batch per step, then keeps the cache of the chosen one. It yields a
:class:`ContrastiveStep` per token and ends at an end-of-sequence token, the
length limit, the context window, or the stop flag (checked before every
step). :func:`contrastive_search` is the batch wrapper.

This module runs the model but knows nothing of prompts, requests, threads or
streams (:mod:`stepgen.generation` turns it into a run); sampling warpers do
not apply (contrastive search does not sample), and beams are not combined with it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, MinNewTokensLengthLogitsProcessor

from stepgen.checks import whole_in_range
from stepgen.effective import eos_ids
from stepgen.inputs import check_context, check_ids
from stepgen.knobs import MAX_NEW_TOKENS, knob
from stepgen.readout import token_rows
from stepgen.request import check_contrastive
from stepgen.results import TokenInfo
from stepgen.settings import DecodingSettings
from stepgen.tokens import token_text

Stop = threading.Event | Callable[[], bool] | None
"""A stop flag: an event that is set, or a callable that returns True, ends the search before the next step."""


@dataclass(frozen=True)
class ContrastiveCandidate:
    """One of the ``top_k`` tokens contrastive search weighed at a step."""

    id: int
    text: str
    """Readable form (hex for partial UTF-8), see :func:`stepgen.tokens.token_text`."""
    prob: float
    """Model confidence: its probability after the settings (the softmax of the processed scores)."""
    penalty: float
    """Degeneration penalty: the largest cosine similarity of its hidden state with an earlier token's."""
    score: float
    """``(1 - penalty_alpha) * prob - penalty_alpha * penalty``; -inf for a token the settings ban."""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "prob": self.prob, "penalty": self.penalty, "score": self.score}


@dataclass(frozen=True)
class ContrastiveStep:
    """One generated token: its id, and as :attr:`token` the numbers every run reports (model and final
    probability, rank, entropy) with the candidates it was chosen from."""

    id: int
    token: TokenInfo

    @property
    def candidates(self) -> tuple[ContrastiveCandidate, ...]:
        """The ``top_k`` tokens weighed, likeliest first."""
        return self.token.candidates

    @property
    def overruled(self) -> bool:
        """True when the penalty made another candidate win over the likeliest token."""
        return self.token.overruled


@dataclass(frozen=True)
class ContrastiveSearch:
    """What :func:`contrastive_search` wrote."""

    steps: tuple[ContrastiveStep, ...]
    finish: str
    """``eos``, ``length``, ``context`` (the context window is full) or ``stopped``."""

    @property
    def token_ids(self) -> tuple[int, ...]:
        return tuple(step.id for step in self.steps)


def stopped(stop: Stop) -> bool:
    if stop is None:
        return False
    return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())


def processors(
    loaded: Any, settings: DecodingSettings, prompt_length: int, min_new_tokens: int,
) -> LogitsProcessorList:
    """The processors contrastive search applies, in ``generate()``'s order: the penalties of ``settings``
    (never the sampling warpers), then the ban of the end token until ``min_new_tokens`` are written."""
    eos = loaded.model.generation_config.eos_token_id
    steps: list[LogitsProcessor] = [
        processor for _, processor in replace(settings, temperature=0).processors(
            loaded.tokenizer, eos_token_id=eos, device=loaded.device)
    ]
    stop_ids = sorted(eos_ids(loaded.model.generation_config))
    if min_new_tokens > 0 and stop_ids:
        steps.append(MinNewTokensLengthLogitsProcessor(prompt_length, min_new_tokens, stop_ids, device=loaded.device))
    return LogitsProcessorList(steps)


def unit(hidden: torch.Tensor) -> torch.Tensor:
    """Each row scaled to length 1 (as transformers 4 did: divided by its norm), for cosine similarities."""
    return hidden / hidden.norm(dim=-1, keepdim=True)


def degeneration_penalty(candidates: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """The largest cosine similarity of each candidate's hidden state ``(k, hidden)`` with any row of the unit
    ``context`` ``(tokens, hidden)``."""
    return (unit(candidates) @ context.T).max(dim=-1).values


def choose(
    loaded: Any, probs: torch.Tensor, ids: torch.Tensor, hidden: torch.Tensor, context: torch.Tensor,
    penalty_alpha: float,
) -> tuple[int, tuple[ContrastiveCandidate, ...]]:
    """The index of the best candidate and every candidate's numbers, from their probabilities ``(k,)``, ids
    ``(k,)``, last hidden states ``(k, hidden)`` and the unit hidden states of the text so far."""
    penalty = degeneration_penalty(hidden, context)
    score = (1.0 - penalty_alpha) * probs - penalty_alpha * penalty
    score = score.masked_fill(probs == 0, float("-inf"))  # a banned token stays banned, whatever its penalty
    best = int(score.argmax())
    candidates = tuple(
        ContrastiveCandidate(id=token_id, text=token_text(loaded.tokenizer, token_id), prob=p, penalty=pen, score=s)
        for token_id, p, pen, s in zip(ids.tolist(), probs.tolist(), penalty.tolist(), score.tolist())
    )
    return best, candidates


def check_arguments(
    loaded: Any, ids: Any, penalty_alpha: Any, top_k: Any, max_new_tokens: Any, min_new_tokens: Any,
) -> tuple[list[int], float, int, int, int]:
    """Every argument of :func:`contrastive_steps` checked, before any work: a bad request costs nothing."""
    alpha, k = check_contrastive(penalty_alpha, top_k)
    k = whole_in_range("top_k", k, 1, int(knob("top_k").maximum))
    max_new = whole_in_range("max_new_tokens", max_new_tokens, 1, MAX_NEW_TOKENS)
    min_new = whole_in_range("min_new_tokens", min_new_tokens, 0, max_new)
    ids = check_ids(loaded, ids)
    check_context(loaded, len(ids))
    return ids, alpha, k, max_new, min_new


@torch.no_grad()
def contrastive_steps(
    loaded: Any, ids: Any, *, penalty_alpha: float, top_k: int, max_new_tokens: int,
    settings: DecodingSettings | None = None, min_new_tokens: int = 0, stop: Stop = None,
) -> Iterator[ContrastiveStep]:
    """Contrastive search after ``ids``, one :class:`ContrastiveStep` per generated token.

    One forward pass reads the prompt; then each step is one forward pass of the ``top_k`` candidates as a
    batch, on the cache of the text so far (repeated ``top_k`` times, then cut back to the chosen row).
    """
    ids, alpha, k, max_new, min_new = check_arguments(loaded, ids, penalty_alpha, top_k, max_new_tokens,
                                                      min_new_tokens)
    settings = settings or DecodingSettings()
    model, device = loaded.model, loaded.device
    processed = processors(loaded, settings, len(ids), min_new)
    stop_ids = eos_ids(model.generation_config)
    sequence = torch.tensor([ids], device=device)
    if stopped(stop):
        return
    out = model(sequence, use_cache=True, output_hidden_states=True)
    cache = out.past_key_values
    if not callable(getattr(cache, "batch_repeat_interleave", None)):
        raise ValueError(f"{loaded.name} keeps no KV cache that can be shared out to the candidates, so stepgen "
                         "cannot run contrastive search on it")
    context = unit(out.hidden_states[-1][0].float())
    logits = out.logits[0, -1:].float().clone()  # a copy: the prompt's logits are large, only this row is kept
    del out
    k = min(k, logits.shape[-1])
    for written in range(max_new):
        if written and stopped(stop):
            return
        if sequence.shape[1] >= loaded.context_length:
            return
        scores = processed(sequence, logits.clone())  # some processors write in place
        top = torch.softmax(scores, dim=-1)[0].topk(k)
        cache.batch_repeat_interleave(k)
        out = model(top.indices[:, None], past_key_values=cache, use_cache=True, output_hidden_states=True)
        hidden = out.hidden_states[-1][:, -1].float()
        best, candidates = choose(loaded, top.values, top.indices, hidden, context, alpha)
        cache = out.past_key_values
        cache.batch_select_indices(torch.tensor([best], device=device))
        token_id = candidates[best].id
        prob, final_prob, rank, entropy, final_entropy, logprob = token_rows(
            logits, scores, torch.tensor([token_id], device=device))[0]
        token = TokenInfo(token_id, candidates[best].text, prob, final_prob, int(rank), entropy, final_entropy,
                          logprob, candidates=candidates)
        yield ContrastiveStep(id=token_id, token=token)
        if token_id in stop_ids:
            return
        sequence = torch.cat([sequence, top.indices[best : best + 1, None]], dim=1)
        context = torch.cat([context, unit(hidden[best : best + 1])])
        logits = out.logits[best : best + 1, -1].float()


def contrastive_search(
    loaded: Any, ids: Any, *, penalty_alpha: float, top_k: int, max_new_tokens: int,
    settings: DecodingSettings | None = None, min_new_tokens: int = 0, stop: Stop = None,
) -> ContrastiveSearch:
    """Run :func:`contrastive_steps` to its end and say why it ended."""
    steps = tuple(contrastive_steps(loaded, ids, penalty_alpha=penalty_alpha, top_k=top_k,
                                    max_new_tokens=max_new_tokens, settings=settings,
                                    min_new_tokens=min_new_tokens, stop=stop))
    if steps and steps[-1].id in eos_ids(loaded.model.generation_config):
        finish = "eos"
    elif len(steps) >= max_new_tokens:
        finish = "length"
    elif len(ids) + len(steps) >= loaded.context_length:
        finish = "context"
    else:  # the stop flag is not asked again: a callable may answer differently each time
        finish = "stopped"
    return ContrastiveSearch(steps=steps, finish=finish)
