"""One ``generate()`` request: every knob the playground offers, validated together, as plain data.

:class:`GenerationRequest` holds the knobs by their transformers names: the
sampling and penalty knobs live in a :class:`~stepgen.settings.DecodingSettings`
(one settings object for the whole app), the length, beam and seed knobs here.
It is validated before any work starts, and builds the ``generate()`` keyword
arguments, passing every knob explicitly so the model's defaults cannot creep in.

It knows no model: checking a prompt against a context window is
:mod:`stepgen.inputs`, explaining what ``generate()`` will make of the knobs is
:mod:`stepgen.effective`, running it is :mod:`stepgen.generation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from stepgen.checks import MAX_SEED
from stepgen.knobs import GENERATE_ONLY, MAX_NEW_TOKENS, knob
from stepgen.settings import DecodingSettings

__all__ = ["MAX_BEAMS", "MAX_NEW_TOKENS", "MAX_RETURN_SEQUENCES", "MAX_SEED", "GenerationRequest",
           "check_contrastive"]

MAX_BEAMS = int(knob("num_beams").maximum)
MAX_RETURN_SEQUENCES = int(knob("num_return_sequences").maximum)


def check_contrastive(penalty_alpha: Any, top_k: Any) -> tuple[float, int]:
    """``penalty_alpha`` and ``top_k`` checked together: contrastive search (``penalty_alpha`` > 0) chooses among
    the ``top_k`` likeliest tokens, so it needs at least two of them."""
    alpha, k = knob("penalty_alpha").check(penalty_alpha), knob("top_k").check(top_k)
    if alpha > 0 and k < 2:
        raise ValueError(
            f"`top_k` has to be an integer from 2 to {int(knob('top_k').maximum)} when `penalty_alpha` > 0 "
            f"(contrastive search chooses among the top_k likeliest tokens), but is {k}"
        )
    return alpha, k


@dataclass(frozen=True)
class GenerationRequest:
    """Every ``generate()`` knob the playground offers, validated together.

    ``decoding`` holds the sampling and penalty knobs (``temperature``, ``top_k``,
    ``top_p``, ``min_p``, ``typical_p``, ``epsilon_cutoff``, ``eta_cutoff``,
    ``repetition_penalty``, ``no_repeat_ngram_size``, ``bad_words``); its
    ``temperature`` only matters when ``do_sample`` is true. ``penalty_alpha`` > 0
    asks for contrastive search among the ``top_k`` likeliest tokens (without
    sampling or beams), which stepgen runs itself (:mod:`stepgen.contrastive`).
    """

    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    do_sample: bool = False
    max_new_tokens: int = 40
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool = False
    num_return_sequences: int = 1
    penalty_alpha: float = 0.0
    stop_strings: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.decoding, DecodingSettings):
            raise ValueError(f"`decoding` has to be DecodingSettings, but is {type(self.decoding).__name__}")
        # each knob by its rule in the table (stepgen.knobs); then the rules that tie knobs together
        checked: dict[str, Any] = {}
        for name in GENERATE_ONLY:
            value = getattr(self, name)
            if name == "seed" and value is None:
                checked[name] = None  # a seed is picked when the run starts, and reported
            elif name == "early_stopping" and value == "never":
                checked[name] = value  # generate()'s third choice: never stop before the length limit
            elif name == "early_stopping" and not isinstance(value, bool):
                raise ValueError(f"`early_stopping` has to be true, false or 'never', but is {value!r}")
            else:
                checked[name] = knob(name).check(value)
        max_new, min_new = checked["max_new_tokens"], checked["min_new_tokens"]
        beams, returned, do_sample = checked["num_beams"], checked["num_return_sequences"], checked["do_sample"]
        if min_new > max_new:
            raise ValueError(
                f"`min_new_tokens` has to be an integer from 0 to `max_new_tokens` ({max_new}), but is {min_new}"
            )
        if returned > beams and beams > 1:
            raise ValueError(
                f"`num_return_sequences` has to be <= `num_beams` ({beams}): beam search returns its best beams, "
                f"but `num_return_sequences` is {returned}"
            )
        if returned > 1 and beams == 1 and not do_sample:
            raise ValueError(
                f"Greedy decoding returns one sequence: `num_return_sequences` is {returned}; "
                "set `do_sample=True` or `num_beams` >= it"
            )
        if do_sample and self.decoding.temperature == 0:
            raise ValueError(
                "`temperature` has to be a strictly positive float when `do_sample=True`, but is 0; "
                "for greedy decoding set `do_sample=False`"
            )
        if checked["penalty_alpha"] > 0:
            check_contrastive(checked["penalty_alpha"], self.decoding.top_k)
            if beams > 1:
                raise ValueError(f"`num_beams` has to be 1 when `penalty_alpha` > 0 (contrastive search writes one "
                                 f"text), but is {beams}")
            if do_sample:
                raise ValueError("`do_sample` has to be false when `penalty_alpha` > 0 (contrastive search takes "
                                 "the best-scored candidate, it draws none), but is true")
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    # --- plain data in and out ------------------------------------------------

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> GenerationRequest:
        """A request from flat transformers-named knobs; None means 'default', unknown names are refused."""
        values = {key: value for key, value in dict(values or {}).items() if value is not None or key == "seed"}
        decoding_names = {f.name for f in fields(DecodingSettings)}
        own_names = {f.name for f in fields(cls)} - {"decoding"}
        unknown = sorted(set(values) - decoding_names - own_names)
        if unknown:
            known = ", ".join(sorted(decoding_names | own_names))
            names = ", ".join(name if name.isidentifier() else repr(name) for name in unknown)  # '' shows as ''
            raise ValueError(f"Unknown generate() knob(s): {names}; known: {known}")
        decoding = DecodingSettings.from_dict({k: v for k, v in values.items() if k in decoding_names})
        return cls(decoding=decoding, **{k: v for k, v in values.items() if k in own_names})

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready knobs by their transformers names."""
        data = self.decoding.to_dict()
        for name in ("do_sample", "max_new_tokens", "min_new_tokens", "num_beams", "length_penalty",
                     "early_stopping", "num_return_sequences", "penalty_alpha", "seed"):
            data[name] = getattr(self, name)
        data["stop_strings"] = list(self.stop_strings)
        return data

    # --- what it means --------------------------------------------------------

    @property
    def contrastive(self) -> bool:
        """True for contrastive search (``penalty_alpha`` > 0), which stepgen runs on its own engine."""
        return self.penalty_alpha > 0

    @property
    def mode(self) -> str:
        """transformers' name for the decoding method: greedy_search, sample, beam_search, beam_sample or
        contrastive_search."""
        if self.contrastive:
            return "contrastive_search"
        if self.num_beams > 1:
            return "beam_sample" if self.do_sample else "beam_search"
        return "sample" if self.do_sample else "greedy_search"

    @property
    def streams(self) -> bool:
        """Beam search keeps several candidates until the end, so transformers cannot stream it."""
        return self.num_beams == 1

    def effective_decoding(self) -> DecodingSettings:
        """The decoding settings generate() really uses: without sampling the warpers do nothing."""
        return self.decoding if self.do_sample else replace(self.decoding, temperature=0)

    def generate_kwargs(self, tokenizer: Any, *, pad_token_id: int | None = None) -> dict[str, Any]:
        """The ``generate()`` keyword arguments for this request (without the inputs and the tokenizer).

        Knobs that cannot act (warpers without sampling, beam knobs without beams)
        are passed at their neutral values, so transformers neither warns nor
        falls back on the model's defaults; :func:`stepgen.effective.effective_config` says so.
        """
        kwargs = self.effective_decoding().generate_kwargs(tokenizer)
        beams = self.num_beams > 1
        kwargs.update(
            max_new_tokens=self.max_new_tokens,
            min_new_tokens=self.min_new_tokens,
            num_beams=self.num_beams,
            length_penalty=self.length_penalty if beams else 1.0,
            early_stopping=self.early_stopping if beams else False,
            num_return_sequences=self.num_return_sequences,
            stop_strings=list(self.stop_strings) or None,
        )
        if self.contrastive:
            # transformers' names for contrastive search; stepgen runs it itself (transformers 5 needs hub code)
            kwargs.update(penalty_alpha=self.penalty_alpha, top_k=self.decoding.top_k)
        if pad_token_id is not None:
            kwargs["pad_token_id"] = pad_token_id
        return kwargs
