"""One object for the decoding settings, and the two things built from it.

:class:`DecodingSettings` holds the knobs that shape a next-token distribution
(named exactly as transformers names them). From one settings object we build

* the ``LogitsProcessorList`` that ``generate()`` itself would build, in the
  same order, from transformers' own processor classes (:meth:`processors`);
* the keyword arguments that make ``generate()`` use the same settings
  (:meth:`generate_kwargs`), every one passed explicitly so that neither the
  model's generation defaults nor ``generate()``'s hidden ``top_k=50`` creep in.

Manual stepping and ``generate()`` therefore cannot drift apart. Each knob's
type, default and accepted range come from the table in :mod:`stepgen.knobs`
(temperature 0 means greedy; a temperature or repetition penalty closer to 0
than :data:`~stepgen.knobs.MIN_DIVISOR` is refused, because dividing logits by
it overflows float32 to inf). Bad words are tokenized as they appear inside a
text (:func:`continuation_ids`), not alone.

This module computes no distribution itself (see :mod:`stepgen.distribution`)
and knows nothing about length or beam knobs, which only make sense inside
``generate()`` (:mod:`stepgen.generation`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from transformers import (
    EpsilonLogitsWarper,
    EtaLogitsWarper,
    LogitsProcessor,
    MinPLogitsWarper,
    NoBadWordsLogitsProcessor,
    NoRepeatNGramLogitsProcessor,
    RepetitionPenaltyLogitsProcessor,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
    TypicalLogitsWarper,
)

from stepgen.knobs import DECODING, MIN_DIVISOR, knob
from stepgen.tokenize import CONTEXT_FREE, continuation_ids

__all__ = ["MIN_DIVISOR", "DecodingSettings"]

@dataclass(frozen=True)
class DecodingSettings:
    """The decoding settings of one next-token choice, by their transformers names.

    Neutral values switch a setting off: ``top_k=0``, ``top_p=1.0``,
    ``min_p=0.0``, ``typical_p=1.0``, ``epsilon_cutoff=0.0``, ``eta_cutoff=0.0``,
    ``repetition_penalty=1.0``, ``no_repeat_ngram_size=0``, no ``bad_words``.
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    typical_p: float = 1.0
    epsilon_cutoff: float = 0.0
    eta_cutoff: float = 0.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # each knob checked by its rule in the table (stepgen.knobs), then stored normalised (ints stay ints,
        # lists become tuples) so that equal settings compare equal
        for name in DECODING:
            object.__setattr__(self, name, knob(name).check(getattr(self, name)))

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> DecodingSettings:
        """Settings from a plain dict; unknown keys are refused by name, None means 'default'."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Unknown decoding setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**{key: value for key, value in values.items() if value is not None})

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["bad_words"] = list(self.bad_words)
        return data

    @property
    def greedy(self) -> bool:
        """Temperature 0 means: always take the most likely token."""
        return self.temperature == 0

    def bad_words_ids(self, tokenizer: Any) -> list[list[int]]:
        """The token sequences of each bad word, with and without a leading space.

        Each variant is tokenized after :data:`CONTEXT_FREE`, as inside a text: alone, a SentencePiece
        tokenizer would add its prefix space to the bare word too, and its bare piece would never be banned.
        """
        sequences: list[list[int]] = []
        for word in self.bad_words:
            for variant in (word, " " + word):
                ids = continuation_ids(tokenizer, CONTEXT_FREE, variant)
                if not ids:  # the word merges with the newline: its ids alone are the best we have
                    ids = tokenizer(variant, add_special_tokens=False)["input_ids"]
                if ids and list(ids) not in sequences:
                    sequences.append(list(ids))
        return sequences

    def processors(
        self,
        tokenizer: Any,
        *,
        eos_token_id: int | list[int] | None = None,
        device: torch.device | str = "cpu",
    ) -> list[tuple[str, LogitsProcessor]]:
        """(name, processor) pairs in the order ``generate()`` applies them.

        The penalties come first, then (when sampling) the warpers in
        ``GenerationMixin._get_logits_processor``'s order. With temperature 0
        there are no warpers: greedy takes the argmax of the penalised scores.
        ``eos_token_id`` is what ``generate()`` passes to ``NoBadWordsLogitsProcessor``
        (the model's ``generation_config.eos_token_id``, possibly a list): a bad
        word that is a stop token is not banned. None bans every bad word.
        """
        steps: list[tuple[str, LogitsProcessor]] = []
        if self.repetition_penalty != 1.0:
            steps.append(("repetition_penalty", RepetitionPenaltyLogitsProcessor(self.repetition_penalty)))
        if self.no_repeat_ngram_size > 0:
            steps.append(("no_repeat_ngram_size", NoRepeatNGramLogitsProcessor(self.no_repeat_ngram_size)))
        bad = self.bad_words_ids(tokenizer)
        if bad:
            steps.append(("bad_words", NoBadWordsLogitsProcessor(bad, eos_token_id=eos_token_id)))
        if self.greedy:
            return steps
        if self.temperature != 1.0:
            steps.append(("temperature", TemperatureLogitsWarper(self.temperature)))
        if self.top_k != 0:
            steps.append(("top_k", TopKLogitsWarper(top_k=self.top_k)))
        if self.top_p < 1.0:
            steps.append(("top_p", TopPLogitsWarper(top_p=self.top_p)))
        if self.min_p > 0:
            steps.append(("min_p", MinPLogitsWarper(min_p=self.min_p)))
        if self.typical_p < 1.0:
            steps.append(("typical_p", TypicalLogitsWarper(mass=self.typical_p)))
        if 0 < self.epsilon_cutoff < 1:
            steps.append(("epsilon_cutoff", EpsilonLogitsWarper(epsilon=self.epsilon_cutoff)))
        if 0 < self.eta_cutoff < 1:
            steps.append(("eta_cutoff", EtaLogitsWarper(epsilon=self.eta_cutoff, device=torch.device(device))))
        return steps

    def generate_kwargs(self, tokenizer: Any) -> dict[str, Any]:
        """Keyword arguments for ``generate()`` meaning exactly these settings."""
        kwargs: dict[str, Any] = {
            "do_sample": not self.greedy,
            "repetition_penalty": self.repetition_penalty,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "bad_words_ids": self.bad_words_ids(tokenizer) or None,
        }
        if self.greedy:
            # neutral warper values: generate() ignores them without sampling, and says nothing
            kwargs.update(temperature=1.0, top_k=None, top_p=1.0, min_p=None, typical_p=1.0,
                          epsilon_cutoff=0.0, eta_cutoff=0.0)
        else:
            kwargs.update(
                temperature=self.temperature,
                top_k=self.top_k,  # always explicit: generate() otherwise applies top_k=50
                top_p=self.top_p,
                min_p=self.min_p if self.min_p > 0 else None,
                typical_p=self.typical_p,
                epsilon_cutoff=self.epsilon_cutoff,
                eta_cutoff=self.eta_cutoff,
            )
        return kwargs
