"""One object for the decoding settings, and the two things built from it.

:class:`DecodingSettings` holds the knobs that shape a next-token distribution
(named exactly as transformers names them). From one settings object we build

* the ``LogitsProcessorList`` that ``generate()`` itself would build, in the
  same order, from transformers' own processor classes (:meth:`processors`);
* the keyword arguments that make ``generate()`` use the same settings
  (:meth:`generate_kwargs`), every one passed explicitly so that neither the
  model's generation defaults nor ``generate()``'s hidden ``top_k=50`` creep in.

Manual stepping and ``generate()`` therefore cannot drift apart. Temperature 0
means greedy; a temperature or repetition penalty closer to 0 than
:data:`MIN_DIVISOR` is refused, because dividing logits by it overflows
float32 to inf and the distribution to NaN. Bad words are tokenized as they
appear inside a text (:func:`continuation_ids`), not alone.

This module computes no distribution itself (see :mod:`stepgen.distribution`)
and knows nothing about length or beam knobs, which only make sense inside
``generate()`` (:mod:`stepgen.generation`).
"""

from __future__ import annotations

import math
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

from stepgen.tokenize import CONTEXT_FREE, check_unicode, continuation_ids

MIN_DIVISOR = 0.01
"""The smallest non-zero ``temperature`` and ``repetition_penalty``: both divide logits, and 1e-40 would turn
them into inf (NaN probabilities). 0.01 already multiplies every logit gap by 100: sampling is nearly greedy."""


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` has to be a number, but is {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` has to be a finite number, but is {value}")
    return float(value)


def _whole(name: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` has to be a whole number, but is {value!r}")
    return value


def whole_in_range(name: str, value: Any, low: int, high: int, what: str = "an integer") -> int:
    """``value`` as an int from ``low`` to ``high`` (a whole float, as JSON sends it, counts), or a ValueError
    saying "`name` has to be <what> from <low> to <high>, but is <value>"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"`{name}` has to be {what} from {low} to {high}, but is {value!r}")
    return value


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
        temperature = _number("temperature", self.temperature)
        if temperature != 0 and temperature < MIN_DIVISOR:
            raise ValueError(f"`temperature` has to be 0 (greedy) or a float >= {MIN_DIVISOR}, but is {temperature}")
        top_k = _whole("top_k", self.top_k)
        if top_k < 0:
            raise ValueError(f"`top_k` has to be 0 (off) or a strictly positive integer, but is {top_k}")
        top_p = _number("top_p", self.top_p)
        if not 0 < top_p <= 1:
            raise ValueError(f"`top_p` has to be a float > 0 and <= 1, but is {top_p}")
        min_p = _number("min_p", self.min_p)
        if not 0 <= min_p <= 1:
            raise ValueError(f"`min_p` has to be a float >= 0 and <= 1, but is {min_p}")
        typical_p = _number("typical_p", self.typical_p)
        if not 0 < typical_p <= 1:
            raise ValueError(f"`typical_p` has to be a float > 0 and <= 1, but is {typical_p}")
        epsilon = _number("epsilon_cutoff", self.epsilon_cutoff)
        if not 0 <= epsilon < 1:
            raise ValueError(f"`epsilon_cutoff` has to be a float >= 0 and < 1, but is {epsilon}")
        eta = _number("eta_cutoff", self.eta_cutoff)
        if not 0 <= eta < 1:
            raise ValueError(f"`eta_cutoff` has to be a float >= 0 and < 1, but is {eta}")
        penalty = _number("repetition_penalty", self.repetition_penalty)
        if penalty < MIN_DIVISOR:
            raise ValueError(f"`repetition_penalty` has to be a float >= {MIN_DIVISOR}, but is {penalty}")
        ngram = _whole("no_repeat_ngram_size", self.no_repeat_ngram_size)
        if ngram < 0:
            raise ValueError(f"`no_repeat_ngram_size` has to be 0 (off) or a positive integer, but is {ngram}")
        words = self.bad_words if self.bad_words is not None else ()  # None means none, as in from_dict
        words = (words,) if isinstance(words, str) else words
        if not isinstance(words, (list, tuple)) or not all(isinstance(word, str) for word in words):
            raise ValueError(f"`bad_words` has to be a list of words, but is {self.bad_words!r}")
        for word in words:
            check_unicode("bad_words", word)
        # normalise the stored values (ints stay ints, lists become tuples) so equal settings compare equal
        for name, value in (
            ("temperature", temperature), ("top_k", top_k), ("top_p", top_p), ("min_p", min_p),
            ("typical_p", typical_p), ("epsilon_cutoff", epsilon), ("eta_cutoff", eta),
            ("repetition_penalty", penalty), ("no_repeat_ngram_size", ngram),
            ("bad_words", tuple(word.strip() for word in words if word.strip())),
        ):
            object.__setattr__(self, name, value)

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
