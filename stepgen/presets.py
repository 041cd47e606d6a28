"""Named starting points for ``generate()``: the presets and the classic experiments, as plain data.

A preset names the knobs that make one decoding method (greedy, beam search,
two kinds of sampling); a classic experiment is a prompt, the knobs that show
one idea, and a note on what to look at. Every knob either does not name goes
back to its neutral value. This module holds the data and turns it into
requests and plain knob values (by transformers name, JSON-ready); it runs
nothing and shows nothing (the playground tab turns knob values into controls).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stepgen.repetition import first_repeat
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


PRESET_NOTES: dict[str, str] = {
    "greedy": "Greedy decoding takes the likeliest token at every step, so a prompt always gives the same text. "
              "Its flaw shows in longer texts: after a fluent start the text goes round in circles. On the "
              "playground's example the embedded model starts repeating itself at about token 40, right where "
              "the default 40 tokens end: set max_new_tokens to 100 to see it, or pick the experiment "
              "'Greedy repeats itself'.",
    "beam search": "Beam search keeps the 4 likeliest partial texts at every step and returns the 3 best whole "
                   "ones; no_repeat_ngram_size=2 forbids any pair of tokens twice. Compare the returned texts' "
                   "log-probabilities with greedy's.",
    "creative sampling": "Each token is drawn at random from a flattened distribution (temperature 1.2), cut to "
                         "the likeliest 95% (top_p) and to tokens at least 5% as likely as the best (min_p): "
                         "a new seed gives a new text.",
    "precise sampling": "Each token is drawn from a sharpened distribution (temperature 0.3) cut to the 40 "
                        "likeliest tokens and 90% of the mass, with repeated tokens made less likely "
                        "(repetition_penalty 1.1): varied, but rarely surprising.",
}
"""What each preset does, shown when it is picked; a claim about the embedded model is checked by the tests."""


KEPT_BY_PRESETS = ("max_new_tokens", "seed")
"""Knobs a preset leaves as they are: how long a text and which random draw are the reader's choice."""


def preset_knobs(name: str) -> dict[str, Any]:
    """Every knob preset ``name`` sets (all but :data:`KEPT_BY_PRESETS`), by transformers name, as plain values."""
    return {knob: value for knob, value in preset(name).to_dict().items() if knob not in KEPT_BY_PRESETS}


CLAIMS = ("repeats", "never repeats", "share first", "differ within", "ranks within", "avoids", "stops at")
"""What an experiment's note can say the model does, each checkable on the texts it wrote."""


def _shared(first: Sequence[int], second: Sequence[int]) -> int:
    """How many tokens two texts share from their start."""
    return next((index for index, (a, b) in enumerate(zip(first, second)) if a != b), min(len(first), len(second)))


@dataclass(frozen=True)
class Claim:
    """What an experiment's note says will happen, in a form a test can check on what the model wrote.

    ``repeats``: the first text completes a three-token run seen before (:mod:`stepgen.repetition`) within its
    first ``n`` tokens; ``never repeats``: it never does; ``share first``: every text starts with the same ``n``
    tokens; ``differ within``: some two texts part within their first ``n`` tokens; ``ranks within``: every token
    written was among the model's ``n`` likeliest; ``avoids``: no text contains
    ``text``; ``stops at``: every text ends with ``text`` (or at the end-of-text token).
    """

    kind: str
    n: int = 0
    text: str = ""

    def __post_init__(self) -> None:
        if self.kind not in CLAIMS:
            raise ValueError(f"`kind` has to be one of {', '.join(CLAIMS)}, but is {self.kind!r}")

    def failure(self, prompt_ids: Sequence[int], texts: Sequence[Any]) -> str:
        """Empty when the claim holds of ``texts`` (generated sequences: ``token_ids``, ``text``, ``tokens``,
        ``finish``)
        written after ``prompt_ids``; else what the model did instead."""
        ids = [list(text.token_ids) for text in texts]
        if self.kind in ("repeats", "never repeats"):
            at = first_repeat([*prompt_ids, *ids[0]], start=len(prompt_ids))
            at = None if at is None else at - len(prompt_ids)
            if self.kind == "repeats":
                return "" if at is not None and at < self.n else f"the text repeats itself first at token {at}"
            return "" if at is None else f"the text repeats itself at token {at}"
        if self.kind in ("share first", "differ within"):
            shared = min((_shared(ids[0], other) for other in ids[1:]), default=len(ids[0]))
            if self.kind == "share first":
                return "" if shared >= self.n else f"the texts share only their first {shared} tokens"
            return "" if shared < self.n else f"the texts share their first {shared} tokens"
        if self.kind == "ranks within":
            worst = max((token.rank for text in texts for token in text.tokens), default=0)
            return "" if worst <= self.n else f"a token of rank {worst} was written"
        if self.kind == "avoids":
            found = [text.text for text in texts if self.text in text.text]
            return "" if not found else f"{self.text!r} was written: {found[0]!r}"
        ended = [text for text in texts if not (text.text.endswith(self.text) or text.finish == "eos")]
        return "" if not ended else f"a text does not end with {self.text!r}: {ended[0].text!r}"


@dataclass(frozen=True)
class Experiment:
    """A classic experiment: a prompt, the knobs that show one idea, what to look at, and what the note claims
    the model will do (checked on the embedded model by the test suite)."""

    prompt: str
    knobs: dict[str, Any]
    note: str
    claim: Claim | None = None

    @property
    def request(self) -> GenerationRequest:
        """The request the experiment runs (every knob it does not name neutral)."""
        return GenerationRequest.from_dict(self.knobs)


EXPERIMENTS: dict[str, Experiment] = {
    "Greedy repeats itself": Experiment(
        "The best thing about AI is", {"max_new_tokens": 100},
        "Greedy decoding always takes the likeliest token. Once a phrase is written, writing it again becomes "
        "likely, and after a fluent start (about 45 tokens here) the text goes round in circles: the tokens with a "
        "bar on top repeat an earlier run. The next two experiments are the usual fixes.",
        Claim("repeats", 60)),
    "Fix a loop with repetition_penalty": Experiment(
        "The best thing about AI is", {"max_new_tokens": 100, "repetition_penalty": 1.3},
        "Every token already in the text has its score divided by 1.3 (multiplied, if negative) before the "
        "choice. Loops fade (no token carries the repeat bar); but so do words that should come back, such as "
        "names.", Claim("never repeats")),
    "Fix a loop with no_repeat_ngram_size": Experiment(
        "The best thing about AI is", {"max_new_tokens": 100, "no_repeat_ngram_size": 3},
        "Any 3 tokens that already appeared together are forbidden: no token can carry the repeat bar. A blunt "
        "rule: a three-token name can be written only once.", Claim("never repeats")),
    "Beam search looks further ahead": Experiment(
        "I skip across the", {"max_new_tokens": 20, "num_beams": 5, "num_return_sequences": 3},
        "Beam search keeps the 5 best partial texts at every step instead of one, and returns the best whole "
        "texts: compare their log-probabilities with greedy's (pick the greedy preset and run it again). The three "
        "texts share their first words and part only near the end: beams are variations of one text.",
        Claim("share first", 8)),
    "Low temperature: safe and samey": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "temperature": 0.3, "num_return_sequences": 3, "seed": 7},
        "Sampling at temperature 0.3 sharpens the distribution: the dashed entropy lines (after the settings) lie "
        "far below the model's own, and the three draws are fluent, made of likely tokens (bright colours). Yet "
        "where the model hesitates ('wind' or 'moon'?) a real choice is left, and one different word sends each "
        "draw its own way: a low temperature makes text safe, not identical.", Claim("differ within", 5)),
    "High temperature: surprising, then nonsense": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "temperature": 1.6, "num_return_sequences": 3, "seed": 7},
        "Temperature 1.6 flattens the distribution: unlikely tokens (dark colours) get drawn, and each one "
        "leads the text further astray: the three draws part at once.", Claim("differ within", 3)),
    "generate()'s hidden top_k=50": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "top_k": 50, "num_return_sequences": 3, "seed": 7},
        "generate(do_sample=True) keeps only the 50 likeliest tokens unless told otherwise. stepgen always passes "
        "top_k itself (0 = off); this is what plain generate() does by default: no token drawn ranks below 50th.",
        Claim("ranks within", 50)),
    "Nucleus sampling: top_p=0.9": Experiment(
        "It was a dark and stormy night; the",
        {"max_new_tokens": 30, "do_sample": True, "top_p": 0.9, "num_return_sequences": 3, "seed": 7},
        "top_p keeps the smallest set of likeliest tokens that together hold 90% of the probability: a few "
        "tokens when the model is sure, many when it is not. The long tail of odd tokens is never drawn, yet the "
        "three draws part within a few tokens.", Claim("differ within", 5)),
    "Forbid the obvious: bad_words": Experiment(
        "The capital of France is", {"max_new_tokens": 15, "bad_words": ["Paris"]},
        "The model's favourite is banned at every step, with and without a leading space. What does it write "
        "instead?", Claim("avoids", text="Paris")),
    "Stop at a sentence's end: stop_strings": Experiment(
        "Once upon a time", {"max_new_tokens": 100, "do_sample": True, "stop_strings": ["."], "seed": 3},
        "Generation stops as soon as the text ends with a stop string, here the first full stop.",
        Claim("stops at", text=".")),
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
