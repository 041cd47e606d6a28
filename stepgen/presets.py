"""Named starting points for ``generate()``: the presets and the classic experiments, as plain data.

A preset names the knobs that make one decoding method (greedy, beam search,
two kinds of sampling); a classic experiment is a prompt, the knobs that show
one idea, and a note on what to look at. Every knob either does not name goes
back to its neutral value. This module holds the data and turns it into
requests and plain knob values (by transformers name, JSON-ready); it runs
nothing and shows nothing (the playground tab turns knob values into controls).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stepgen.request import GenerationRequest

PRESETS: dict[str, dict[str, Any]] = {
    "greedy": {"do_sample": False, "num_beams": 1},
    "beam search": {"do_sample": False, "num_beams": 4, "num_return_sequences": 3, "no_repeat_ngram_size": 2,
                    "early_stopping": True, "length_penalty": 1.0},
    "creative sampling": {"do_sample": True, "temperature": 1.2, "top_p": 0.95, "min_p": 0.05},
    "precise sampling": {"do_sample": True, "temperature": 0.3, "top_k": 40, "top_p": 0.9,
                         "repetition_penalty": 1.1},
}
"""Named starting points; every knob a preset does not name goes back to its neutral value."""


def preset(name: str, **keep: Any) -> GenerationRequest:
    """The request for preset ``name`` (``keep`` carries knobs such as ``max_new_tokens`` or ``seed`` over)."""
    if name not in PRESETS:
        raise ValueError(f"`preset` has to be one of {', '.join(PRESETS)}, but is {name!r}")
    return GenerationRequest.from_dict({**PRESETS[name], **keep})


KEPT_BY_PRESETS = ("max_new_tokens", "seed")
"""Knobs a preset leaves as they are: how long a text and which random draw are the reader's choice."""


def preset_knobs(name: str) -> dict[str, Any]:
    """Every knob preset ``name`` sets (all but :data:`KEPT_BY_PRESETS`), by transformers name, as plain values."""
    return {knob: value for knob, value in preset(name).to_dict().items() if knob not in KEPT_BY_PRESETS}


@dataclass(frozen=True)
class Experiment:
    """A classic experiment: a prompt, the knobs that show one idea, and what to look at."""

    prompt: str
    knobs: dict[str, Any]
    note: str

    @property
    def request(self) -> GenerationRequest:
        """The request the experiment runs (every knob it does not name neutral)."""
        return GenerationRequest.from_dict(self.knobs)


EXPERIMENTS: dict[str, Experiment] = {
    "Greedy repeats itself": Experiment(
        "The best thing about AI is", {"max_new_tokens": 100},
        "Greedy decoding always takes the likeliest token. Once a phrase is written, writing it again becomes "
        "likely, and the text goes round in circles: the tokens with a bar on top repeat an earlier run. The next "
        "two experiments are the usual fixes."),
    "Fix a loop with repetition_penalty": Experiment(
        "The best thing about AI is", {"max_new_tokens": 100, "repetition_penalty": 1.3},
        "Every token already in the text has its score divided by 1.3 (multiplied, if negative) before the "
        "choice. Loops fade; but so do words that should come back, such as names."),
    "Fix a loop with no_repeat_ngram_size": Experiment(
        "The best thing about AI is", {"max_new_tokens": 100, "no_repeat_ngram_size": 3},
        "Any 3 tokens that already appeared together are forbidden: no token can carry the repeat bar. A blunt "
        "rule: a three-token name can be written only once."),
    "Beam search looks further ahead": Experiment(
        "I skip across the", {"max_new_tokens": 20, "num_beams": 5, "num_return_sequences": 3},
        "Beam search keeps the 5 best partial texts at every step instead of one, and returns the best whole "
        "texts: compare their log-probabilities with greedy's (pick the greedy preset and run it again)."),
    "Low temperature: safe and samey": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "temperature": 0.3, "num_return_sequences": 3, "seed": 7},
        "Sampling at temperature 0.3 sharpens the distribution: three draws, and they hardly differ. The dashed "
        "entropy lines (after the settings) lie far below the model's own."),
    "High temperature: surprising, then nonsense": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "temperature": 1.6, "num_return_sequences": 3, "seed": 7},
        "Temperature 1.6 flattens the distribution: unlikely tokens (dark colours) get drawn, and each one "
        "leads the text further astray."),
    "generate()'s hidden top_k=50": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "top_k": 50, "num_return_sequences": 3, "seed": 7},
        "generate(do_sample=True) keeps only the 50 likeliest tokens unless told otherwise. stepgen always passes "
        "top_k itself (0 = off); this is what plain generate() does by default."),
    "Nucleus sampling: top_p=0.9": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "top_p": 0.9, "num_return_sequences": 3, "seed": 7},
        "top_p keeps the smallest set of likeliest tokens that together hold 90% of the probability: a few "
        "tokens when the model is sure, many when it is not. The long tail of odd tokens is never drawn."),
    "Forbid the obvious: bad_words": Experiment(
        "The capital of France is", {"max_new_tokens": 15, "bad_words": ["Paris"]},
        "The model's favourite is banned at every step, with and without a leading space. What does it write "
        "instead?"),
    "Stop at a sentence's end: stop_strings": Experiment(
        "Once upon a time", {"max_new_tokens": 100, "do_sample": True, "stop_strings": ["."], "seed": 3},
        "Generation stops as soon as the text ends with a stop string, here the first full stop."),
}
"""The classic experiments of a first lesson on decoding, each a click away; every knob not named is neutral."""


def experiment(name: str) -> Experiment:
    """The classic experiment ``name``, or a ValueError naming the ones there are."""
    if name not in EXPERIMENTS:
        raise ValueError(f"`experiment` has to be one of {', '.join(EXPERIMENTS)}, but is {name!r}")
    return EXPERIMENTS[name]


def experiment_knobs(name: str) -> dict[str, Any]:
    """Every knob of experiment ``name`` (those it does not name neutral), by transformers name, as plain values."""
    return experiment(name).request.to_dict()
