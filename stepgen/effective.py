"""What ``generate()`` will actually use for a request, and plain-language warnings about it.

:func:`effective_config` merges a request's keyword arguments with the model's
``generation_config`` by transformers' own rule (kwargs > the model's
generation_config > transformers' defaults) and tells, for each knob, the
value used and where it comes from; the warnings name settings that do nothing
or surprise. It reads the model's configuration only: it runs nothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch

from stepgen.request import GenerationRequest
from stepgen.settings import DecodingSettings

@dataclass(frozen=True)
class EffectiveConfig:
    """What ``generate()`` will actually use, given the model's own generation defaults."""

    rows: tuple[tuple[str, Any, Any, str], ...]
    """(knob, value used, the model's default, where the value comes from)."""
    warnings: tuple[str, ...]
    """Plain-language notes on settings that do nothing or surprise."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "settings": [{"name": n, "value": v, "model_default": d, "source": s} for n, v, d, s in self.rows],
            "warnings": list(self.warnings),
        }


def pad_id(loaded: Any) -> int | None:
    """The pad id to pass, when neither the model nor the tokenizer names one (silences a transformers warning)."""
    if loaded.model.generation_config.pad_token_id is not None:
        return None
    if loaded.tokenizer.pad_token_id is not None:
        return int(loaded.tokenizer.pad_token_id)
    eos = loaded.model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) and eos else eos
    return int(eos) if eos is not None else None


def eos_ids(config: Any) -> set[int]:
    """The end-of-sequence ids a generation config names."""
    eos = config.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


_SHOWN = ("do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
          "repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "max_new_tokens", "min_new_tokens",
          "num_beams", "length_penalty", "early_stopping", "num_return_sequences", "penalty_alpha", "stop_strings",
          "eos_token_id", "pad_token_id")


def effective_config(loaded: Any, request: GenerationRequest, kwargs: dict[str, Any] | None = None) -> EffectiveConfig:
    """The configuration ``generate()`` builds from these kwargs and the model's ``generation_config``."""
    model = loaded.model
    kwargs = kwargs if kwargs is not None else request.generate_kwargs(loaded.tokenizer, pad_token_id=pad_id(loaded))
    # transformers' own merge (kwargs > model generation_config > global defaults), so the table is exact
    config, _ = model._prepare_generation_config(None, **copy.deepcopy(kwargs))
    model_defaults = model.generation_config.to_dict()
    global_defaults = model.generation_config._get_default_generation_params()
    rows = []
    for name in _SHOWN:
        value = getattr(config, name, None)
        default = model_defaults.get(name)
        default = global_defaults.get(name) if default is None else default
        source = "your setting" if name in kwargs else (
            "the model's generation_config" if model_defaults.get(name) is not None else "transformers' default")
        rows.append((name, plain(value), plain(default), source))
    return EffectiveConfig(rows=tuple(rows), warnings=tuple(_warnings(loaded, request, config)))


def plain(value: Any) -> Any:
    """A value as JSON-ready data (tensors and tuples become lists)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, tuple):
        return list(value)
    return value


def _warnings(loaded: Any, request: GenerationRequest, config: Any) -> list[str]:
    notes: list[str] = []
    d = request.decoding
    neutral = DecodingSettings()
    warper_names = ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff")
    method = "beam search" if request.num_beams > 1 else "greedy decoding"
    if not request.do_sample:
        for name in warper_names:
            if name == "top_k" and request.contrastive:
                continue  # contrastive search's number of candidates
            if getattr(d, name) != getattr(neutral, name) and not (name == "temperature" and d.temperature == 0):
                notes.append(
                    f"`{name}` = {getattr(d, name)} does nothing: it only reshapes the distribution that sampling "
                    "draws from, and contrastive search does not sample." if request.contrastive else
                    f"`{name}` = {getattr(d, name)} does nothing: it only reshapes the distribution that sampling "
                    f"draws from, and `do_sample` is off, so {method} "
                    "always takes the most likely tokens. Turn on `do_sample` to use it."
                )
    if request.contrastive:
        notes.append("Contrastive search runs on stepgen's own engine, as transformers 4 ran it: transformers 5 "
                     "moved it to a hub repository that needs `trust_remote_code` and the network. Of the `top_k` "
                     "likeliest tokens it takes the one with the best (1 - `penalty_alpha`) * probability - "
                     "`penalty_alpha` * similarity to the text so far.")
    if request.num_beams == 1:
        if request.length_penalty != 1.0:
            notes.append(f"`length_penalty` = {request.length_penalty} does nothing: it only ranks finished beams, "
                         "and `num_beams` is 1.")
        if request.early_stopping is not False:
            notes.append("`early_stopping` does nothing: it only tells beam search when to stop, and `num_beams` is 1.")
    else:
        notes.append("Beam search cannot stream (transformers keeps several candidates until the end): the text "
                     "appears when it is done.")
        if request.length_penalty != 1.0 and request.early_stopping is True:
            notes.append("With `early_stopping=True` beam search stops as soon as enough beams have finished, so "
                         "`length_penalty` only ranks those and cannot wait for longer, better-scored ones.")
    if request.do_sample:
        if d.top_k == 1:
            notes.append("`top_k` = 1 keeps only the most likely token: sampling becomes greedy decoding.")
        if d.temperature < 0.1:
            notes.append(f"`temperature` = {d.temperature} is so low that sampling is nearly greedy.")
        if request.seed is None:
            notes.append("No `seed`: a random one is picked for this run and shown, so you can repeat it.")
    if d.repetition_penalty < 1.0:
        notes.append(f"`repetition_penalty` = {d.repetition_penalty} is below 1: it makes repeating tokens *more* "
                     "likely, not less.")
    if d.bad_words and not d.bad_words_ids(loaded.tokenizer):
        notes.append("The bad words give no tokens, so nothing is banned.")
    eos = eos_ids(config)
    if request.min_new_tokens > 0 and not eos:
        notes.append("`min_new_tokens` does nothing: this model has no end-of-sequence token to hold back.")
    if not eos:
        notes.append("This model names no end-of-sequence token: every run goes on to `max_new_tokens` "
                     "(or a stop string).")
    overridden = []
    model_config = loaded.model.generation_config.to_dict()
    for name in ("do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "repetition_penalty",
                 "num_beams", "max_new_tokens", "max_length"):
        mine = getattr(config, name, None)
        theirs = model_config.get(name)
        if theirs is not None and theirs != mine and name != "max_length":
            overridden.append(f"`{name}`={theirs!r}")
    if overridden:
        notes.append("The model's generation_config suggests " + ", ".join(overridden) +
                     "; this run passes its own values, which take precedence.")
    return notes
