"""The next-token distribution: raw, after each decoding setting, and final.

Given the token ids so far, the model's last logits are turned into

* the raw distribution (softmax of the logits: what the model believes),
* one :class:`Stage` per logits processor, applied in ``generate()``'s order
  (from :meth:`DecodingSettings.processors`), with how many tokens survive it
  (keep a probability above 0: a token whose probability underflows to 0 can
  no more be drawn than one a setting cut), how much probability mass it
  removed and how much it moved,
* the final distribution: what sampling draws from (the softmax of the fully
  processed scores, exactly as ``generate(do_sample=True)`` computes it), or,
  with temperature 0, all mass on the greedy choice.

It works on token ids and logits; it does not tokenize text nor choose a
token (see :mod:`stepgen.stepping`), and it keeps no cache itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from stepgen.checks import whole_in_range
from stepgen.inputs import check_context, check_ids
from stepgen.numbers import entropy_bits, token_numbers
from stepgen.settings import DecodingSettings
from stepgen.tokens import token_text

MAX_TOP_N = 200


@dataclass(frozen=True)
class Candidate:
    """One possible next token."""

    id: int
    text: str
    """Readable form (hex for partial UTF-8), see :func:`stepgen.tokens.token_text`."""
    logit: float
    prob: float
    """The model's raw probability (softmax of the logits)."""
    logprob: float
    rank: int
    """1 for the most likely token under the raw distribution."""
    final_prob: float
    """The probability after every setting: what sampling would draw it with."""
    removed_by: str = ""
    """The setting that cut this token (``top_k``, …, or ``greedy``), empty when it survives."""

    @property
    def removed(self) -> bool:
        """True when the settings cut this token (it cannot be drawn)."""
        return self.final_prob == 0.0


@dataclass(frozen=True)
class Stage:
    """The distribution after one processor."""

    name: str
    """The transformers argument behind it (``temperature``, ``top_k``, …)."""
    processor: str
    """The class name of the transformers processor."""
    survivors: int
    """Tokens that can still be drawn after this stage: probability above 0 (cut or underflowed tokens have none)."""
    removed_mass: float
    """Probability mass (of the stage before) that this stage cut away."""
    top: tuple[tuple[int, float], ...]
    """The (id, probability) pairs of the most likely tokens after this stage."""
    moved_mass: float = 0.0
    """Total variation distance to the stage before: the share of probability that changed hands
    (a cut or a reshaping such as ``temperature`` or ``repetition_penalty``)."""
    entropy_bits: float = 0.0
    """Entropy of the distribution after this stage, in bits."""
    shown: tuple[float, ...] = ()
    """The probability after this stage of each of :attr:`Distribution.candidates`, in their order."""


@dataclass(frozen=True)
class Distribution:
    """A next-token distribution with its processing history."""

    candidates: tuple[Candidate, ...]
    """The top tokens by raw probability (and any token the settings promote into the final top)."""
    greedy_id: int
    """The token greedy decoding picks: the argmax of the processed scores."""
    entropy_bits: float
    """Entropy of the raw distribution, in bits."""
    final_entropy_bits: float
    other_mass: float
    """Raw probability mass outside the candidates shown."""
    stages: tuple[Stage, ...]
    settings: DecodingSettings
    n_input_tokens: int
    final_probs: torch.Tensor = field(repr=False, compare=False)
    """The whole final distribution (vocabulary-sized), for drawing a token."""
    cut_mass: float = 0.0
    """The model's raw probability on the tokens the settings left no chance (final probability 0)."""

    @property
    def vocab_size(self) -> int:
        return int(self.final_probs.numel())

    @property
    def final_other_mass(self) -> float:
        """Final probability mass outside the candidates shown."""
        return _outside(self.final_probs, [c.id for c in self.candidates])

    @property
    def survivors(self) -> int:
        """Tokens that sampling (or greedy) could still pick: final probability above 0, as :attr:`Stage.survivors`."""
        return int((self.final_probs > 0).sum())

    def candidate(self, token_id: int) -> Candidate | None:
        return next((c for c in self.candidates if c.id == token_id), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (no tensors)."""
        return {
            "candidates": [
                {"id": c.id, "text": c.text, "logit": c.logit, "prob": c.prob, "logprob": c.logprob,
                 "rank": c.rank, "final_prob": c.final_prob, "removed": c.removed, "removed_by": c.removed_by}
                for c in self.candidates
            ],
            "greedy_id": self.greedy_id,
            "entropy": self.entropy_bits,
            "final_entropy": self.final_entropy_bits,
            "other_mass": self.other_mass,
            "final_other_mass": self.final_other_mass,
            "survivors": self.survivors,
            "vocab_size": self.vocab_size,
            "stages": [
                {"name": s.name, "processor": s.processor, "survivors": s.survivors,
                 "removed_mass": s.removed_mass, "moved_mass": s.moved_mass, "entropy": s.entropy_bits,
                 "top": [list(pair) for pair in s.top], "shown": list(s.shown)}
                for s in self.stages
            ],
            "settings": self.settings.to_dict(),
            "n_input_tokens": self.n_input_tokens,
        }


def _outside(probs: torch.Tensor, ids: list[int]) -> float:
    """The mass of ``probs`` outside ``ids`` (summed, not 1 - sum, so that a cut tail is exactly 0)."""
    index = torch.tensor(ids, dtype=torch.long, device=probs.device)
    return float(probs.index_fill(0, index, 0.0).sum())


def check_top_n(top_n: Any) -> int:
    """``top_n`` as an int from 1 to :data:`MAX_TOP_N`, or a ValueError saying so."""
    return whole_in_range("top_n", top_n, 1, MAX_TOP_N)


@torch.no_grad()
def last_logits(loaded: Any, ids: list[int]) -> torch.Tensor:
    """The model's logits for the token after ``ids``, shape (vocab,), from the shared KV store
    (:mod:`stepgen.kvcache`): only the tokens after the longest cached prefix go through the model."""
    check_context(loaded, len(ids))
    from stepgen.kvcache import get_store  # imported here: the store is an optional speed-up of this one call

    return get_store().logits(loaded, ids).logits


def _eos_ids(loaded: Any) -> int | list[int] | None:
    """The stop token id(s) ``generate()`` gives ``NoBadWordsLogitsProcessor``: the model's generation config's."""
    config = getattr(getattr(loaded, "model", None), "generation_config", None)
    return getattr(config, "eos_token_id", None)


def _overflowed(scores: torch.Tensor) -> bool:
    return bool(torch.isnan(scores).any() or torch.isposinf(scores).any())


def _check_finite(name: str, settings: DecodingSettings, before: torch.Tensor, after: torch.Tensor) -> None:
    """Refuse scores a setting pushed to NaN or +inf (softmax would give NaN): no number shown could be true."""
    if _overflowed(after) and not _overflowed(before):
        value = getattr(settings, name, None)
        raise ValueError(
            f"`{name}` = {value} pushes this model's scores beyond what a float can hold (inf or NaN), so there is "
            f"no distribution left to show; move `{name}` towards 1."
        )


@torch.no_grad()
def from_logits(
    loaded: Any,
    ids: list[int],
    logits: torch.Tensor,
    settings: DecodingSettings,
    *,
    top_n: int = 10,
    stage_top: int = 10,
) -> Distribution:
    """Build the distribution for the token after ``ids`` from the model's ``logits`` for it."""
    top_n = check_top_n(top_n)
    tokenizer = loaded.tokenizer
    raw_logits = logits.float().reshape(1, -1)
    input_ids = torch.tensor([ids], device=raw_logits.device)
    raw_probs = torch.softmax(raw_logits, dim=-1)

    scores = raw_logits
    previous = raw_probs
    stages: list[Stage] = []
    stage_probs: list[torch.Tensor] = []
    # the index of the stage that sent each token to -inf (-1: never cut); a token is cut once at most
    cut_at = torch.full(raw_logits.shape[-1:], -1, dtype=torch.long, device=raw_logits.device)
    processors = settings.processors(tokenizer, eos_token_id=_eos_ids(loaded), device=raw_logits.device)
    for name, processor in processors:
        before = scores
        scores = processor(input_ids, before.clone())  # some processors write in place; keep `before` intact
        _check_finite(name, settings, before, scores)
        probs = torch.softmax(scores, dim=-1)
        cut = torch.isneginf(scores) & ~torch.isneginf(before)
        cut_at[cut[0]] = len(stages)
        top_values, top_ids = probs[0].topk(min(stage_top, probs.shape[-1]))
        stages.append(
            Stage(
                name=name,
                processor=type(processor).__name__,
                survivors=int((probs > 0).sum()),
                removed_mass=float(previous[cut].sum()),
                top=tuple((int(i), float(v)) for i, v in zip(top_ids, top_values)),
                moved_mass=float((probs - previous).abs().sum() / 2),
                entropy_bits=entropy_bits(probs[0]),
            )
        )
        stage_probs.append(probs[0])
        previous = probs

    greedy_id = int(scores[0].argmax())
    if settings.greedy:
        final = torch.zeros_like(raw_probs)
        final[0, greedy_id] = 1.0
    else:
        final = torch.softmax(scores, dim=-1)

    raw = raw_probs[0]
    # top-k and one comparison per shown token instead of sorting the whole vocabulary: this runs on every step
    shown = [int(i) for i in raw.topk(min(top_n, raw.numel())).indices]
    for token_id in final[0].topk(min(top_n, raw.numel())).indices.tolist():
        if final[0, token_id] > 0 and token_id not in shown:
            shown.append(int(token_id))
    numbers = token_numbers(raw_logits, torch.tensor([shown], device=raw.device))
    candidates = tuple(
        Candidate(
            id=token_id,
            text=token_text(tokenizer, token_id),
            logit=float(raw_logits[0, token_id]),
            prob=prob,
            logprob=logprob,
            rank=rank,
            final_prob=float(final[0, token_id]),
            removed_by=_removed_by(stages, int(cut_at[token_id]), settings.greedy and token_id != greedy_id),
        )
        for token_id, prob, logprob, rank in zip(shown, numbers.prob[0].tolist(), numbers.logprob[0].tolist(),
                                                 numbers.rank[0].tolist())
    )
    stages = [
        replace(stage, shown=tuple(float(probs[token_id]) for token_id in shown))
        for stage, probs in zip(stages, stage_probs)
    ]
    return Distribution(
        candidates=candidates,
        greedy_id=greedy_id,
        entropy_bits=float(numbers.entropy[0]),
        final_entropy_bits=entropy_bits(final[0]),
        other_mass=_outside(raw, shown),
        stages=tuple(stages),
        settings=settings,
        n_input_tokens=len(ids),
        final_probs=final[0],
        cut_mass=float(raw[final[0] == 0].sum()),
    )


def _removed_by(stages: list[Stage], cut_at: int, greedy_loser: bool) -> str:
    """The name of the setting that cut a token, ``greedy`` for a token greedy passes over, or empty."""
    if cut_at >= 0:
        return stages[cut_at].name
    return "greedy" if greedy_loser else ""


def next_token(
    loaded: Any, ids: list[int], settings: DecodingSettings | None = None, *, top_n: int = 10
) -> Distribution:
    """The distribution of the token after ``ids`` (one forward pass)."""
    settings = settings or DecodingSettings()
    top_n = check_top_n(top_n)  # before the forward pass: a bad request costs nothing
    ids = check_ids(loaded, ids)
    return from_logits(loaded, ids, last_logits(loaded, ids), settings, top_n=top_n)
