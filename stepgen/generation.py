"""Run ``generate()`` with every knob that works offline, streamed, with the truth about each token.

:class:`GenerationRequest` holds the knobs by their transformers names: the
sampling and penalty knobs live in a :class:`~stepgen.settings.DecodingSettings`
(one settings object for the whole app), the length, beam and seed knobs here.
It is validated before any work starts, and builds the ``generate()`` keyword
arguments, passing every knob explicitly so the model's defaults cannot creep in.

:func:`stream` is the one primitive: it runs ``model.generate()`` in a worker
thread and yields a :class:`GenerationUpdate` as tokens arrive, then one with
the final :class:`GenerationResult`. :func:`generate` is the batch wrapper.

How the numbers stay true: every number comes from the tensors ``generate()``
itself computed. Model probability, rank and entropy: softmax of the raw
logits; final probability and entropy: softmax of the processed scores the
token was picked from. While greedy or sampled text streams, a stopping
criterion sees the processed scores step by step (``generate()`` hands them to
every criterion when ``output_scores=True``) and a forward hook, filtered to the
worker thread, sees the raw logits; neither changes anything. The numbers they
give are the final ones (tests hold them to ``compute_transition_scores``). Beam
search cannot stream: it runs with ``output_logits=True`` and its numbers come
from ``compute_transition_scores``, which follows the beam indices. The same
criterion checks a ``threading.Event``: setting it really stops the server
work, within one step.

Reproducibility: ``generate()`` samples with the process-wide torch RNG. Every
sampling run is seeded (a seed is drawn when none is given, and reported) and
runs under one lock inside ``torch.random.fork_rng``, so other sessions cannot
draw from the RNG in the middle of it. stepgen's manual stepping uses its own
``torch.Generator`` and never touches the global RNG.

This module neither renders anything (see ``ui/playground_tab.py``) nor writes
code (:mod:`stepgen.codegen`); contrastive search, DoLa and group beam search
are not offered (they need hub code that does not run offline).
"""

from __future__ import annotations

import copy
import math
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList, StopStringCriteria

from stepgen.distribution import row_entropy_bits
from stepgen.checks import number as _number, whole as _whole
from stepgen.settings import DecodingSettings
from stepgen.tokenize import check_unicode
from stepgen.tokens import token_text

MAX_NEW_TOKENS = 1024
"""The most tokens one run may generate (server work is shared)."""
MAX_BEAMS = 16
MAX_RETURN_SEQUENCES = 8
MAX_SEED = 2**32 - 1

_SAMPLING_LOCK = threading.Lock()
"""Held by every sampling run: the global torch RNG is shared by all sessions."""
UPDATE_EVERY = 0.1
"""Seconds between two looks of the reader at the streamed tokens: at most ten updates a second are enough for the
eye, and the model's thread is left alone in between (on a small CPU, a reader woken for every token takes time
from generate())."""


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` has to be true or false, but is {value!r}")
    return value


def _strings(name: str, value: Any) -> tuple[str, ...]:
    items = (value,) if isinstance(value, str) else tuple(value or ())
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"`{name}` has to be a list of strings, but is {value!r}")
    return tuple(check_unicode(name, item) for item in items if item)


@dataclass(frozen=True)
class GenerationRequest:
    """Every ``generate()`` knob the playground offers, validated together.

    ``decoding`` holds the sampling and penalty knobs (``temperature``, ``top_k``,
    ``top_p``, ``min_p``, ``typical_p``, ``epsilon_cutoff``, ``eta_cutoff``,
    ``repetition_penalty``, ``no_repeat_ngram_size``, ``bad_words``); its
    ``temperature`` only matters when ``do_sample`` is true.
    """

    decoding: DecodingSettings = field(default_factory=DecodingSettings)
    do_sample: bool = False
    max_new_tokens: int = 40
    min_new_tokens: int = 0
    num_beams: int = 1
    length_penalty: float = 1.0
    early_stopping: bool = False
    num_return_sequences: int = 1
    stop_strings: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.decoding, DecodingSettings):
            raise ValueError(f"`decoding` has to be DecodingSettings, but is {type(self.decoding).__name__}")
        do_sample = _flag("do_sample", self.do_sample)
        max_new = _whole("max_new_tokens", self.max_new_tokens)
        if not 1 <= max_new <= MAX_NEW_TOKENS:
            raise ValueError(f"`max_new_tokens` has to be an integer from 1 to {MAX_NEW_TOKENS}, but is {max_new}")
        min_new = _whole("min_new_tokens", self.min_new_tokens)
        if not 0 <= min_new <= max_new:
            raise ValueError(
                f"`min_new_tokens` has to be an integer from 0 to `max_new_tokens` ({max_new}), but is {min_new}"
            )
        beams = _whole("num_beams", self.num_beams)
        if not 1 <= beams <= MAX_BEAMS:
            raise ValueError(f"`num_beams` has to be an integer from 1 to {MAX_BEAMS}, but is {beams}")
        length_penalty = _number("length_penalty", self.length_penalty)
        early = self.early_stopping
        if early not in (True, False, "never") or isinstance(early, (int, float)) and not isinstance(early, bool):
            raise ValueError(f"`early_stopping` has to be true, false or 'never', but is {early!r}")
        returned = _whole("num_return_sequences", self.num_return_sequences)
        if not 1 <= returned <= MAX_RETURN_SEQUENCES:
            raise ValueError(
                f"`num_return_sequences` has to be an integer from 1 to {MAX_RETURN_SEQUENCES}, but is {returned}"
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
        stops = _strings("stop_strings", self.stop_strings)
        if len(stops) > 8:
            raise ValueError(f"`stop_strings` takes at most 8 strings, but has {len(stops)}")
        seed = self.seed
        if seed is not None:
            seed = _whole("seed", seed)
            if not 0 <= seed <= MAX_SEED:
                raise ValueError(f"`seed` has to be an integer from 0 to {MAX_SEED} (or empty), but is {seed}")
        for name, value in (
            ("do_sample", do_sample), ("max_new_tokens", max_new), ("min_new_tokens", min_new), ("num_beams", beams),
            ("length_penalty", length_penalty), ("num_return_sequences", returned), ("stop_strings", stops),
            ("seed", seed),
        ):
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
            raise ValueError(f"Unknown generate() knob(s): {', '.join(unknown)}; known: {known}")
        decoding = DecodingSettings.from_dict({k: v for k, v in values.items() if k in decoding_names})
        return cls(decoding=decoding, **{k: v for k, v in values.items() if k in own_names})

    def to_dict(self) -> dict[str, Any]:
        """Flat, JSON-ready knobs by their transformers names."""
        data = self.decoding.to_dict()
        for name in ("do_sample", "max_new_tokens", "min_new_tokens", "num_beams", "length_penalty",
                     "early_stopping", "num_return_sequences", "seed"):
            data[name] = getattr(self, name)
        data["stop_strings"] = list(self.stop_strings)
        return data

    # --- what it means --------------------------------------------------------

    @property
    def mode(self) -> str:
        """transformers' name for the decoding method: greedy_search, sample, beam_search or beam_sample."""
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
        falls back on the model's defaults; :func:`effective_config` says so.
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
        if pad_token_id is not None:
            kwargs["pad_token_id"] = pad_token_id
        return kwargs


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


# --- results -------------------------------------------------------------------


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

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "prob": self.prob, "final_prob": self.final_prob,
                "rank": self.rank, "entropy": self.entropy, "final_entropy": self.final_entropy,
                "logprob": self.logprob}


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model, "prompt": self.prompt, "prompt_ids": list(self.prompt_ids),
            "mode": self.request.mode, "seed": self.request.seed, "request": self.request.to_dict(),
            "generate_kwargs": self.kwargs, "sequences": [s.to_dict() for s in self.sequences],
            "effective": self.effective.to_dict(), "stopped": self.stopped, "streamed": self.request.streams,
            "seconds": self.seconds,
        }


@dataclass(frozen=True)
class GenerationUpdate:
    """What a stream yields: the sequences so far, and at the end the result."""

    sequences: tuple[GeneratedSequence, ...]
    status: str
    """``waiting`` (another session is sampling), ``running`` or ``done``."""
    result: GenerationResult | None = None


# --- validation against a model ------------------------------------------------


def prompt_ids(loaded: Any, prompt: str, request: GenerationRequest) -> list[int]:
    """The prompt's token ids (as ``tokenizer(prompt)`` gives them), checked against the context window."""
    ids = list(loaded.tokenizer(check_unicode("prompt", prompt))["input_ids"])
    if not prompt or not ids:
        raise ValueError("There is no token to continue from: type a prompt.")
    room = loaded.context_length - len(ids)
    if room < 1:
        raise ValueError(
            f"The prompt is {len(ids)} tokens long, but {loaded.name} reads at most {loaded.context_length} tokens "
            "(its context window) and needs room for at least one more; shorten it."
        )
    if request.max_new_tokens > room:
        raise ValueError(
            f"`max_new_tokens` has to be at most {max(room, 0)} here: the prompt has {len(ids)} tokens and "
            f"{loaded.name} reads at most {loaded.context_length}, but `max_new_tokens` is {request.max_new_tokens}"
        )
    return ids


def _pad_token_id(loaded: Any) -> int | None:
    """The pad id to pass, when neither the model nor the tokenizer names one (silences a transformers warning)."""
    if loaded.model.generation_config.pad_token_id is not None:
        return None
    if loaded.tokenizer.pad_token_id is not None:
        return int(loaded.tokenizer.pad_token_id)
    eos = loaded.model.generation_config.eos_token_id
    eos = eos[0] if isinstance(eos, list) and eos else eos
    return int(eos) if eos is not None else None


def _eos_ids(config: Any) -> set[int]:
    eos = config.eos_token_id
    if eos is None:
        return set()
    return {int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])}


_SHOWN = ("do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff",
          "repetition_penalty", "no_repeat_ngram_size", "bad_words_ids", "max_new_tokens", "min_new_tokens",
          "num_beams", "length_penalty", "early_stopping", "num_return_sequences", "stop_strings",
          "eos_token_id", "pad_token_id")


def effective_config(loaded: Any, request: GenerationRequest, kwargs: dict[str, Any] | None = None) -> EffectiveConfig:
    """The configuration ``generate()`` builds from these kwargs and the model's ``generation_config``."""
    model = loaded.model
    kwargs = kwargs if kwargs is not None else request.generate_kwargs(loaded.tokenizer, pad_token_id=_pad_token_id(loaded))
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
        rows.append((name, _plain(value), _plain(default), source))
    return EffectiveConfig(rows=tuple(rows), warnings=tuple(_warnings(loaded, request, config)))


def _plain(value: Any) -> Any:
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
    if not request.do_sample:
        for name in warper_names:
            if getattr(d, name) != getattr(neutral, name) and not (name == "temperature" and d.temperature == 0):
                notes.append(
                    f"`{name}` = {getattr(d, name)} does nothing: it only reshapes the distribution that sampling "
                    f"draws from, and `do_sample` is off, so {'beam search' if request.num_beams > 1 else 'greedy decoding'} "
                    "always takes the most likely tokens. Turn on `do_sample` to use it."
                )
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
    eos = _eos_ids(config)
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


# --- the run ---------------------------------------------------------------------


def _token_rows(raw: torch.Tensor, processed: torch.Tensor, tokens: torch.Tensor) -> list[tuple[float, ...]]:
    """(prob, final_prob, rank, entropy, final_entropy, logprob) per row, from raw logits and processed scores."""
    raw = raw.float()
    processed = processed.float()
    index = tokens.view(-1, 1)
    logp = torch.log_softmax(raw, dim=-1)
    entropy = row_entropy_bits(logp)
    if torch.equal(raw, processed):  # no processor changed anything (plain greedy): same numbers, half the work
        final_logp, final_entropy = logp, entropy
    else:
        final_logp = torch.log_softmax(processed, dim=-1)
        final_entropy = row_entropy_bits(final_logp)
    token_logp = logp.gather(1, index).view(-1)
    final = final_logp.gather(1, index).exp().view(-1)
    rank = (raw > raw.gather(1, index)).sum(dim=-1) + 1
    return list(zip(token_logp.exp().tolist(), final.tolist(), rank.tolist(), entropy.tolist(),
                    final_entropy.tolist(), token_logp.tolist()))


class _Watch(StoppingCriteria):
    """Sees every step of ``generate()`` (never changes it) and stops it when ``stop`` is set.

    ``generate()`` passes every stopping criterion the new ``input_ids`` and the
    processed scores so far; the raw logits of the same step come from a forward
    hook that only listens to the worker thread. Each step's numbers are worked
    out here, on the model's own thread between two forward passes (a reader on
    another thread would compete with the model for a small CPU's cores), and
    handed to ``report`` with the ``input_ids`` they belong to.
    """

    def __init__(self, stop: threading.Event, report: Any | None) -> None:
        self.stop = stop
        self.report = report
        self.raw: torch.Tensor | None = None
        self.thread = threading.get_ident()

    def hook(self, module: Any, args: Any, output: Any) -> None:
        if threading.get_ident() == self.thread:
            self.raw = output.logits[:, -1]

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        if self.report is not None and scores and self.raw is not None:
            self.report(_token_rows(self.raw, scores[-1], input_ids[:, -1]), input_ids)
        return torch.full((input_ids.shape[0],), self.stop.is_set(), dtype=torch.bool, device=input_ids.device)


def _finish_points(
    loaded: Any, request: GenerationRequest, sequences: torch.Tensor, prompt_len: int, eos: set[int],
    stop_criterion: StopStringCriteria | None,
) -> list[tuple[int, str]]:
    """(generated length, reason) per row of a sampled/greedy batch (rows are padded after they finish)."""
    out = []
    steps = sequences.shape[1] - prompt_len
    for row in sequences:
        end, reason = steps, "length" if steps >= request.max_new_tokens else "stopped"
        for t in range(steps):
            token = int(row[prompt_len + t])
            if token in eos:
                end, reason = t + 1, "eos"
                break
            if stop_criterion is not None and bool(stop_criterion(row[None, : prompt_len + t + 1], None)[0]):
                end, reason = t + 1, "stop_string"
                break
        out.append((end, reason))
    return out


def _sequence(
    tokenizer: Any, tokens: list[TokenInfo] | tuple[TokenInfo, ...], finish: str, beam_score: float | None = None,
) -> GeneratedSequence:
    ids = tuple(token.id for token in tokens)
    logprob = math.fsum(token.logprob for token in tokens)
    return GeneratedSequence(token_ids=ids, text=tokenizer.decode(ids, skip_special_tokens=True), tokens=tuple(tokens),
                             logprob=logprob, finish=finish, beam_score=beam_score)


def _streamed_sequences(
    loaded: Any, request: GenerationRequest, output: Any, prompt_len: int, eos: set[int],
    stop_criterion: StopStringCriteria | None, streamed: list[list[TokenInfo]],
) -> tuple[GeneratedSequence, ...]:
    """The returned sequences of a greedy or sampled run, cut where each one really ended.

    Their tokens are the ones the stream already read off ``generate()``'s own
    tensors step by step (:class:`_Streamed`), kept as they are: the numbers
    shown while streaming are the final ones.
    """
    result = []
    for r, (length, reason) in enumerate(
        _finish_points(loaded, request, output.sequences, prompt_len, eos, stop_criterion)
    ):
        tokens = streamed[r][:length]
        ids = output.sequences[r, prompt_len : prompt_len + length].tolist()
        if [token.id for token in tokens] != ids:
            raise RuntimeError(f"sequence {r}: the streamed tokens {tokens} differ from generate()'s output {ids}")
        result.append(_sequence(loaded.tokenizer, tokens, reason))
    return tuple(result)


@torch.no_grad()
def _beam_sequences(
    loaded: Any, request: GenerationRequest, output: Any, prompt_len: int, eos: set[int],
    stop_criterion: StopStringCriteria | None, stopped: bool,
) -> tuple[GeneratedSequence, ...]:
    """The returned beams, with every number taken from ``generate()``'s own outputs.

    The probabilities come from ``compute_transition_scores``, which follows the
    beam indices; rank and entropy from the same rows of the same tensors.
    """
    model, tokenizer = loaded.model, loaded.tokenizer
    sequences, beam_indices = output.sequences, output.beam_indices
    model_lp = model.compute_transition_scores(sequences, output.logits, beam_indices, normalize_logits=True)
    final_lp = model.compute_transition_scores(sequences, output.scores, beam_indices, normalize_logits=True)
    n_rows, n_steps = model_lp.shape
    lengths = (beam_indices[:, :n_steps] >= 0).sum(dim=-1).tolist()
    finishes = []
    for row, length in enumerate(lengths):
        last = int(sequences[row, prompt_len + length - 1]) if length else None
        hit = stop_criterion is not None and length and bool(
            stop_criterion(sequences[row : row + 1, : prompt_len + length], None)[0])
        reason = ("eos" if last in eos else "stop_string" if hit else
                  "length" if length >= request.max_new_tokens else "stopped" if stopped else "length")
        finishes.append((length, reason))
    rows_at = beam_indices[:, :n_steps].clamp(min=0)
    stats: list[list[tuple[float, ...]]] = [[] for _ in range(n_rows)]
    for t in range(n_steps):
        rows = rows_at[:, t]
        per_row = _token_rows(output.logits[t][rows], output.scores[t][rows], sequences[:, prompt_len + t])
        for r in range(n_rows):
            stats[r].append(per_row[r])
    beam_scores = output.sequences_scores
    result = []
    for r, (length, reason) in enumerate(finishes):
        ids = sequences[r, prompt_len : prompt_len + length].tolist()
        tokens = [
            TokenInfo(id=ids[t], text=token_text(tokenizer, ids[t]), prob=math.exp(float(model_lp[r, t])),
                      final_prob=math.exp(float(final_lp[r, t])), rank=int(stats[r][t][2]),
                      entropy=float(stats[r][t][3]), final_entropy=float(stats[r][t][4]),
                      logprob=float(model_lp[r, t]))
            for t in range(length)
        ]
        result.append(_sequence(tokenizer, tokens, reason, float(beam_scores[r])))
    return tuple(result)


_Step = tuple[list[int], list[tuple[float, ...]], list[bool]]
"""One step of a streaming run, per row: the token, its numbers, whether a stop string ended the row there."""


class _Streamed:
    """The sequences of a streaming run so far, built from the steps the worker reports.

    A step is, per row, the token, its numbers (see :func:`_token_rows`) and
    whether a stop string ended the row there; :meth:`absorb` adds the steps
    that arrived since the last update to the rows that are still going.
    """

    def __init__(self, loaded: Any, n_rows: int, eos: set[int]) -> None:
        self.tokenizer = loaded.tokenizer
        self.eos = eos
        self.rows: list[list[TokenInfo]] = [[] for _ in range(n_rows)]
        self.done = [False] * n_rows

    def absorb(self, steps: list[_Step]) -> None:
        for tokens, numbers, hits in steps:
            for r, (token, (prob, final_prob, rank, entropy, final_entropy, logprob), hit) in enumerate(
                zip(tokens, numbers, hits)
            ):
                if self.done[r]:  # generate() pads a finished row from then on
                    continue
                self.rows[r].append(TokenInfo(token, token_text(self.tokenizer, token), prob, final_prob, int(rank),
                                              entropy, final_entropy, logprob))
                self.done[r] = token in self.eos or hit

    def sequences(self) -> tuple[GeneratedSequence, ...]:
        return tuple(_sequence(self.tokenizer, tokens, "running") for tokens in self.rows)


def stream(
    loaded: Any, prompt: str, request: GenerationRequest, *, stop: threading.Event | None = None,
) -> Iterator[GenerationUpdate]:
    """Run ``generate()`` for ``prompt`` and yield the sequences as they grow, then the final result.

    Setting ``stop`` (or closing this generator) ends the work on the next step;
    the result then says ``stopped``. The first token is yielded as soon as it
    exists, later ones at most every :data:`UPDATE_EVERY` seconds: a slow reader
    gets fewer, larger updates, never a backlog. Beam search yields only the result.
    """
    ids = prompt_ids(loaded, prompt, request)
    if request.do_sample and request.seed is None:
        request = replace(request, seed=secrets.randbelow(MAX_SEED + 1))
    tokenizer, model = loaded.tokenizer, loaded.model
    kwargs = request.generate_kwargs(tokenizer, pad_token_id=_pad_token_id(loaded))
    effective = effective_config(loaded, request, kwargs)
    config, _ = model._prepare_generation_config(None, **copy.deepcopy(kwargs))
    eos = _eos_ids(config)
    stop = stop or threading.Event()
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    live_stop = (StopStringCriteria(tokenizer, list(request.stop_strings))
                 if request.stop_strings else None)

    n_rows = request.num_return_sequences
    steps: list[_Step] = []
    """Every step so far, appended by the worker; the reader looks at it when an update is due."""

    def report(numbers: list[tuple[float, ...]], input_ids: torch.Tensor) -> None:
        # one row may end on its stop string while the others go on
        hits = (live_stop(input_ids, None).tolist() if live_stop is not None and n_rows > 1 else [False] * n_rows)
        steps.append((input_ids[:, -1].tolist(), numbers, hits))
        if len(steps) == 1:  # the first token is shown at once; later ones wait for the reader's next look
            events.put(("step", None))

    def work() -> None:
        try:
            watch = _Watch(stop, report if request.streams else None)
            input_ids = torch.tensor([ids], device=loaded.device)
            handle = model.register_forward_hook(watch.hook) if request.streams else None
            try:
                call = dict(kwargs, input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                            return_dict_in_generate=True, output_scores=True, output_logits=not request.streams,
                            stopping_criteria=StoppingCriteriaList([watch]))
                if request.stop_strings:
                    call["tokenizer"] = tokenizer
                if request.do_sample:
                    if not _SAMPLING_LOCK.acquire(blocking=False):
                        events.put(("waiting", None))
                        while not _SAMPLING_LOCK.acquire(timeout=0.1):
                            if stop.is_set():
                                events.put(("output", None))
                                return
                    try:
                        devices = [loaded.device.index or 0] if loaded.device.type == "cuda" else []
                        with torch.random.fork_rng(devices=devices):
                            torch.manual_seed(request.seed)
                            output = model.generate(**call)
                    finally:
                        _SAMPLING_LOCK.release()
                else:
                    output = model.generate(**call)
            finally:
                if handle is not None:
                    handle.remove()
            events.put(("output", output))
        except BaseException as error:  # handed to the reader, who raises it in the caller's thread
            events.put(("error", error))

    def result(sequences: tuple[GeneratedSequence, ...], stopped: bool) -> GenerationUpdate:
        done = GenerationResult(
            model=loaded.name, prompt=prompt, prompt_ids=tuple(ids), request=request, kwargs=_plain_kwargs(kwargs),
            sequences=sequences, effective=effective, stopped=stopped, seconds=time.perf_counter() - started)
        return GenerationUpdate(sequences=sequences, status="done", result=done)

    started = time.perf_counter()
    worker = threading.Thread(target=work, name="stepgen-generate", daemon=True)
    worker.start()
    streamed = _Streamed(loaded, n_rows, eos)
    read = 0
    try:
        while True:
            # once tokens flow, look at them every UPDATE_EVERY seconds: the reader is not woken for each token,
            # so it takes no time from generate() in between; the end is handled the moment it comes
            try:
                kind, payload = events.get(timeout=UPDATE_EVERY if read else None)
            except queue.Empty:
                kind, payload = "due", None
            if kind == "waiting":
                yield GenerationUpdate(sequences=(), status="waiting")
                continue
            if kind == "error":
                raise payload
            if kind == "output":
                if payload is None:  # stopped while waiting for the sampling lock
                    yield result((), stopped=True)
                    return
                if request.streams:
                    streamed.absorb(steps[read:])
                    sequences = _streamed_sequences(loaded, request, payload, len(ids), eos, live_stop, streamed.rows)
                else:
                    sequences = _beam_sequences(loaded, request, payload, len(ids), eos, live_stop, stop.is_set())
                yield result(sequences, stopped=stop.is_set() and any(s.finish == "stopped" for s in sequences))
                return
            new = steps[read:]
            read += len(new)
            if new:
                streamed.absorb(new)
                yield GenerationUpdate(sequences=streamed.sequences(), status="running")
    finally:
        if worker.is_alive():  # the reader left early (closed stream, error): stop the work too
            stop.set()
            worker.join()


def _plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: _plain(value) for key, value in kwargs.items()}


def generate(
    loaded: Any, prompt: str, request: GenerationRequest, *, stop: threading.Event | None = None,
) -> GenerationResult:
    """The batch form of :func:`stream`: run to the end (or until ``stop``) and return the result."""
    result = None
    for update in stream(loaded, prompt, request, stop=stop):
        result = update.result or result
    assert result is not None, "the stream ended without a result"
    return result
