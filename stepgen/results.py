"""What a ``generate()`` run produced, as plain frozen data: tokens, sequences, the result, stream updates.

:class:`TokenInfo` is one generated token with the model's numbers for it,
:class:`GeneratedSequence` one returned continuation, :class:`GenerationResult`
everything a run produced and :class:`GenerationUpdate` what a stream yields.
Each turns into JSON-ready data with ``to_dict``. This module computes nothing
and runs nothing (see :mod:`stepgen.generation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stepgen.beamtree import BeamStep
from stepgen.effective import EffectiveConfig
from stepgen.request import GenerationRequest

if TYPE_CHECKING:  # the engine's module imports this one
    from stepgen.contrastive import ContrastiveCandidate

@dataclass(frozen=True)
class TokenInfo:
    """One generated token and what the model thought of it."""

    id: int
    text: str
    """Readable form (hex for partial UTF-8), see :func:`stepgen.tokens.token_text`."""
    prob: float
    """The model's probability for it: softmax of the raw logits."""
    final_prob: float
    """Its probability after every processor (what sampling drew it with)."""
    rank: int
    """1 when it was the model's most likely token."""
    entropy: float
    """Entropy of the model's distribution at this step, in bits."""
    final_entropy: float
    """Entropy of the processed distribution at this step, in bits."""
    logprob: float
    """The natural log of ``prob``, from the log-softmax itself (``prob`` may underflow to 0, this stays finite)."""
    candidates: tuple[ContrastiveCandidate, ...] = ()
    """Contrastive search only: the top_k tokens it weighed here, likeliest first (see :mod:`stepgen.contrastive`)."""

    @property
    def overruled(self) -> bool:
        """Contrastive search only: the degeneration penalty made it win over the likeliest candidate."""
        return bool(self.candidates) and self.candidates[0].id != self.id

    def to_dict(self) -> dict[str, Any]:
        data = {"id": self.id, "text": self.text, "prob": self.prob, "final_prob": self.final_prob,
                "rank": self.rank, "entropy": self.entropy, "final_entropy": self.final_entropy,
                "logprob": self.logprob}
        if self.candidates:
            data.update(candidates=[candidate.to_dict() for candidate in self.candidates], overruled=self.overruled)
        return data


@dataclass(frozen=True)
class GeneratedSequence:
    """One returned continuation (the prompt excluded)."""

    token_ids: tuple[int, ...]
    text: str
    tokens: tuple[TokenInfo, ...]
    logprob: float
    """Sum of the model's log-probabilities of the tokens (natural log)."""
    finish: str
    """Why it ended: ``eos``, ``stop_string``, ``length`` or ``stopped`` (``running`` while streaming)."""
    beam_score: float | None = None
    """Beam search's own score (length-penalised), when beams were used."""

    @property
    def perplexity(self) -> float:
        """exp of the mean negative log-probability per token (1 = the model was certain)."""
        return math.exp(-self.logprob / len(self.tokens)) if self.tokens else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text, "token_ids": list(self.token_ids), "tokens": [t.to_dict() for t in self.tokens],
            "logprob": self.logprob, "perplexity": self.perplexity if self.tokens else None,
            "finish": self.finish, "beam_score": self.beam_score,
        }


@dataclass(frozen=True)
class GenerationResult:
    """Everything one run produced."""

    model: str
    prompt: str
    prompt_ids: tuple[int, ...]
    request: GenerationRequest
    """The request as run (with the seed that was used when sampling)."""
    kwargs: dict[str, Any]
    """The ``generate()`` keyword arguments used (plain data)."""
    sequences: tuple[GeneratedSequence, ...]
    effective: EffectiveConfig
    stopped: bool
    """True when the stop button (or a closed stream) ended the run early."""
    seconds: float
    beam_tree: tuple[BeamStep, ...] | None = None
    """With beam search, what it did step by step (see :mod:`stepgen.beamtree`)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "prompt": self.prompt, "prompt_ids": list(self.prompt_ids),
            "mode": self.request.mode, "seed": self.request.seed, "request": self.request.to_dict(),
            "generate_kwargs": self.kwargs, "sequences": [s.to_dict() for s in self.sequences],
            "effective": self.effective.to_dict(), "stopped": self.stopped, "streamed": self.request.streams,
            "seconds": self.seconds,
            "beam_tree": None if self.beam_tree is None else [step.to_dict() for step in self.beam_tree],
        }


@dataclass(frozen=True)
class GenerationUpdate:
    """What a stream yields: the sequences so far, and at the end the result."""

    sequences: tuple[GeneratedSequence, ...]
    status: str
    """``waiting`` (another session is sampling), ``running`` or ``done``."""
    result: GenerationResult | None = None
    steps: int = 0
    """Steps done so far while beam search runs (its ``sequences`` stay empty until the end)."""

