"""The one table of knobs: every setting a user can turn, declared once.

Each :class:`Knob` names a setting as transformers names it and says its type,
default, the range the core accepts, the step its control moves by, and what it
means in one line. Everything else is built from this table: the checks of
:class:`~stepgen.settings.DecodingSettings` and of a generation request, every
tab's controls, every endpoint's parameters and their documentation, the
deep-link keys, and copy-as-code. A knob added here appears everywhere.

The range a control offers is the range the core accepts: its lowest value is
:attr:`Knob.lowest`, its highest :attr:`Knob.maximum`, and one step beyond
either is refused, with a message naming the knob ("`top_k` has to be ..., but
is ..."). Cross-knob rules (``min_new_tokens`` <= ``max_new_tokens``, beams and
returned sequences) belong to the objects that hold several knobs.

This module checks single values and knows nothing about models, tensors or
user interfaces; the checks of single values it builds on are :mod:`stepgen.checks`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from stepgen.checks import MAX_SEED, check_seed, flag, number, strings, whole
from stepgen.tokenize import check_unicode

MIN_DIVISOR = 0.01
"""The smallest non-zero ``temperature`` and ``repetition_penalty``: both divide logits, and 1e-40 would turn
them into inf (NaN probabilities). 0.01 already multiplies every logit gap by 100: sampling is nearly greedy."""


def _g(value: float) -> str:
    return format(value, "g")


@dataclass(frozen=True)
class Knob:
    """One setting: its transformers name, kind, default, accepted range, control step and meaning.

    ``kind`` is ``float``, ``int``, ``bool``, ``words`` (a list of words), ``strings`` (a list of strings) or
    ``seed``. ``open_low`` means the minimum itself is refused (``top_p`` > 0): the control then starts one
    step above it. ``zero`` means 0 is accepted below the minimum (``temperature`` 0 is greedy). ``group`` says
    who holds it: ``decoding`` (a next-token choice, :class:`~stepgen.settings.DecodingSettings`), ``generate``
    (length, beam and seed knobs that only ``generate()`` has) or ``view`` (what a view shows).
    """

    name: str
    kind: str
    default: Any
    meaning: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None
    open_low: bool = False
    zero: bool = False
    off: Any = None
    group: str = "decoding"
    at_most: int | None = None

    # --- what it accepts ----------------------------------------------------------

    @property
    def lowest(self) -> float | None:
        """The lowest value a control of this knob offers (accepted by :meth:`check`)."""
        if self.minimum is None:
            return None
        if self.zero:
            return 0
        return self.minimum + self.step if self.open_low and self.step else self.minimum

    def rule(self) -> str:
        """What a value has to be, as the middle of "`name` has to be ..., but is ..."."""
        if self.kind == "float":
            low = f"> {_g(self.minimum)}" if self.open_low else f">= {_g(self.minimum)}"
            text = f"a float {low} and <= {_g(self.maximum)}"
            return f"0 (greedy) or {text}" if self.zero else text
        if self.kind == "int":
            if self.off is not None and self.off == self.minimum:
                return (f"{_g(self.minimum)} (off) or an integer from {_g(self.minimum + 1)} to "
                        f"{_g(self.maximum)}")
            return f"an integer from {_g(self.minimum)} to {_g(self.maximum)}"
        if self.kind == "seed":
            return f"an integer from 0 to {MAX_SEED} (or -1 or empty for a random one)"
        if self.kind == "bool":
            return "true or false"
        return "a list of words" if self.kind == "words" else "a list of strings"

    def check(self, value: Any) -> Any:
        """The value in its normal form (ints stay ints, lists become tuples), or a ValueError naming the knob."""
        name = self.name
        if self.kind == "bool":
            return flag(name, value)
        if self.kind == "words":
            words = () if value is None else (value,) if isinstance(value, str) else value
            if not isinstance(words, (list, tuple)) or not all(isinstance(word, str) for word in words):
                raise ValueError(f"`{name}` has to be a list of words, but is {value!r}")
            for word in words:
                check_unicode(name, word)
            return tuple(word.strip() for word in words if word.strip())
        if self.kind == "strings":
            return strings(name, value, at_most=self.at_most)
        if self.kind == "seed":
            return check_seed(value)
        if self.kind == "int":
            checked: float = whole(name, value)
        else:
            checked = number(name, value)
        low_ok = checked > self.minimum if self.open_low else checked >= self.minimum
        if (self.zero and checked == 0) or (low_ok and checked <= self.maximum):
            return checked
        raise ValueError(f"`{name}` has to be {self.rule()}, but is {checked}")

    # --- how a reader sees it -------------------------------------------------------

    @property
    def json_type(self) -> str:
        return {"float": "float", "int": "int", "bool": "bool", "seed": "int"}.get(self.kind, "list[str]")

    def doc(self) -> str:
        """One line for an endpoint's documentation: the meaning, then the range and the default."""
        if self.kind in ("float", "int"):
            return f"{self.meaning} ({self.rule()}; default {_g(self.default)})"
        if self.kind == "seed":
            return f"{self.meaning} ({self.rule()})"
        if self.kind == "bool":
            return f"{self.meaning} (true or false; default {str(self.default).lower()})"
        return f"{self.meaning} (a list; a single string is one item; default none)"


MAX_NEW_TOKENS = 1024
"""The most tokens one run may generate (server work is shared)."""

KNOBS: tuple[Knob, ...] = (
    # --- a next-token choice: penalties, then the warpers, in generate()'s order --------------
    Knob("temperature", "float", 1.0, "Divides the logits: below 1 sharpens the distribution, above 1 flattens "
         "it; 0 means greedy (always the most likely token).", MIN_DIVISOR, 5.0, 0.05, zero=True),
    Knob("top_k", "int", 0, "Keep only the k most likely tokens (0 = off; generate() would use 50).",
         0, 1000, 1, off=0),
    Knob("top_p", "float", 1.0, "Nucleus: keep the smallest set of likeliest tokens whose mass reaches top_p "
         "(1 = off).", 0.0, 1.0, 0.01, open_low=True, off=1.0),
    Knob("min_p", "float", 0.0, "Drop tokens less likely than min_p times the top token's probability (0 = off).",
         0.0, 1.0, 0.01, off=0.0),
    Knob("typical_p", "float", 1.0, "Locally typical sampling: keep the tokens whose surprise is closest to the "
         "entropy, up to this mass (1 = off).", 0.0, 1.0, 0.01, open_low=True, off=1.0),
    Knob("epsilon_cutoff", "float", 0.0, "Drop every token whose probability is below this (0 = off).",
         0.0, 0.05, 0.0005, off=0.0),
    Knob("eta_cutoff", "float", 0.0, "Like epsilon_cutoff, but the threshold shrinks when the model is unsure "
         "(0 = off).", 0.0, 0.05, 0.0005, off=0.0),
    Knob("repetition_penalty", "float", 1.0, "Divides the score of every token already in the text (multiplies "
         "it, if negative); above 1 discourages repeats (1 = off).", MIN_DIVISOR, 3.0, 0.01, off=1.0),
    Knob("no_repeat_ngram_size", "int", 0, "Forbid any n tokens that already appeared together from appearing "
         "again (0 = off).", 0, 10, 1, off=0),
    Knob("bad_words", "words", (), "Words that may never be written, with and without a leading space.",
         off=()),
    # --- what only generate() has: length, beams, stop strings, seed ------------------------
    Knob("max_new_tokens", "int", 40, "The most tokens to write (the prompt does not count).",
         1, MAX_NEW_TOKENS, 1, group="generate"),
    Knob("min_new_tokens", "int", 0, "Hold back the end-of-sequence token until this many tokens are written.",
         0, MAX_NEW_TOKENS, 1, group="generate"),
    Knob("do_sample", "bool", False, "Draw each token at random from the distribution; off = always take the "
         "most likely.", group="generate"),
    Knob("num_beams", "int", 1, "Keep this many candidate texts at every step and return the best (1 = no beam "
         "search).", 1, 16, 1, group="generate"),
    Knob("length_penalty", "float", 1.0, "Beam search only: the exponent of the length when finished beams are "
         "ranked; above 0 favours longer texts, below 0 shorter ones.", -3.0, 3.0, 0.1, group="generate"),
    Knob("early_stopping", "bool", False, "Beam search only: stop as soon as num_beams candidates have ended.",
         group="generate"),
    Knob("num_return_sequences", "int", 1, "How many texts to return (sampling: independent draws; beams: the "
         "best beams).", 1, 8, 1, group="generate"),
    Knob("penalty_alpha", "float", 0.0, "Contrastive search: of the top_k likeliest tokens, take the best "
         "(1 - penalty_alpha) * probability - penalty_alpha * similarity to the text so far (0 = off).",
         0.0, 1.0, 0.05, off=0.0, group="generate"),
    Knob("stop_strings", "strings", (), "Stop when the text ends with one of these.", off=(), group="generate",
         at_most=8),
    Knob("seed", "seed", None, "Seeds the random draws: the same seed gives the same text.", 0, MAX_SEED, 1,
         group="generate"),
    # --- what a view shows ------------------------------------------------------------------
    Knob("top_n", "int", 10, "How many of the most likely tokens to show.", 1, 200, 1, group="view"),
)
"""Every knob, in the order controls and endpoints list them (the decoding knobs in generate()'s order)."""

BY_NAME: dict[str, Knob] = {knob.name: knob for knob in KNOBS}
DECODING: tuple[str, ...] = tuple(knob.name for knob in KNOBS if knob.group == "decoding")
"""The knobs of one next-token choice, by name, in generate()'s order."""
GENERATE_ONLY: tuple[str, ...] = tuple(knob.name for knob in KNOBS if knob.group == "generate")


def knob(name: str) -> Knob:
    return BY_NAME[name]


def check(name: str, value: Any) -> Any:
    """``value`` checked against knob ``name``'s rule."""
    return BY_NAME[name].check(value)


def defaults(names: Iterable[str]) -> dict[str, Any]:
    return {name: BY_NAME[name].default for name in names}
