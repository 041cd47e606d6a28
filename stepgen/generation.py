"""Run ``generate()`` for a :class:`~stepgen.request.GenerationRequest`, streamed, with a real stop.

:func:`stream` is the one primitive: it runs ``model.generate()`` in a worker
thread and yields a :class:`~stepgen.results.GenerationUpdate` as tokens
arrive, then one with the final :class:`~stepgen.results.GenerationResult`.
:func:`generate` is the batch wrapper.

How the numbers stay true: every number comes from the tensors ``generate()``
itself computed (read off them by :mod:`stepgen.readout`). While greedy or
sampled text streams, a stopping criterion sees the processed scores step by
step (``generate()`` hands them to every criterion when ``output_scores=True``)
and a forward hook, filtered to the worker thread, sees the raw logits; neither
changes anything. The numbers they give are the final ones (tests hold them to
``compute_transition_scores``). Beam search cannot stream: it runs with
``output_logits=True`` and its numbers come from ``compute_transition_scores``,
which follows the beam indices; a :class:`~stepgen.beamtree.BeamObserver`
watches it and reports each step done, and the result holds the tree it grew
(:func:`~stepgen.beamtree.beam_tree`). The same criterion checks a
``threading.Event``: setting it really stops the server work, within one step.
A model failing in the middle of a run (raising, running out of memory) ends
it with :class:`GenerationFailed`, a message; by then the worker has ended and
the sampling lock is free.

Reproducibility: ``generate()`` samples with the process-wide torch RNG. Every
sampling run is seeded (a seed is drawn when none is given, and reported) and
runs under one lock inside ``torch.random.fork_rng``, so other sessions cannot
draw from the RNG in the middle of it. stepgen's manual stepping uses its own
``torch.Generator`` and never touches the global RNG.

This module only runs: the request and its validation are
:mod:`stepgen.request`, the explainer :mod:`stepgen.effective`, the results
:mod:`stepgen.results`; it neither renders anything (see
``ui/playground_tab.py``) nor writes code (:mod:`stepgen.codegen`).
Contrastive search (``penalty_alpha`` > 0) runs on stepgen's own engine
(:mod:`stepgen.contrastive`; transformers 5 needs hub code for it), in the
caller's thread, with the same updates and result. DoLa and group beam search
are not offered (they need hub code that does not run offline).

Just over the ~300-line guide: the runner of generate() with its three paths
(streamed greedy or sampling, beam search, contrastive search) is one idea; the
request, the read-out of the tensors and the results are modules of their own.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import queue
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import torch
from transformers import (
    EosTokenCriteria,
    LogitsProcessorList,
    MaxLengthCriteria,
    StoppingCriteria,
    StoppingCriteriaList,
    StopStringCriteria,
)

from stepgen.contrastive import contrastive_steps
from stepgen.beamtree import BeamObserver, BeamStep, beam_tree
from stepgen.effective import effective_config, eos_ids, pad_id, plain
from stepgen.inputs import prompt_ids
from stepgen.readout import Step, Streamed, beam_sequences, make_sequence, streamed_sequences, token_rows
from stepgen.request import MAX_SEED, GenerationRequest
from stepgen.results import GeneratedSequence, GenerationResult, GenerationUpdate, TokenInfo

log = logging.getLogger(__name__)

_SAMPLING_LOCK = threading.Lock()
"""Held by every sampling run: the global torch RNG is shared by all sessions."""
UPDATE_EVERY = 0.1
"""Seconds between two looks of the reader at the streamed tokens: at most ten updates a second are enough for the
eye, and the model's thread is left alone in between (on a small CPU, a reader woken for every token takes time
from generate())."""


class GenerationFailed(ValueError):
    """The model failed in the middle of a run (it raised, drew an impossible token, ran out of memory).

    A ``ValueError`` so that it reaches the user as a message, like every error the app explains; the worker has
    ended and the sampling lock is free when it is raised."""


def _failed(error: BaseException, tokens: int) -> ValueError:
    """What a failure of the worker becomes for the caller: errors in the request's values stay as they are."""
    if isinstance(error, ValueError):
        return error
    log.error("generate() failed after %d tokens", tokens, exc_info=error)
    what = "it ran out of memory" if isinstance(error, MemoryError) else f"{type(error).__name__}: {error}"
    return GenerationFailed(f"The model failed while generating, after {tokens} tokens ({what}). The run was "
                            "stopped and the app keeps serving: try again, or with fewer tokens.")


def run_ids(loaded: Any, prompt: str, request: GenerationRequest) -> list[int]:
    """The prompt's token ids (:func:`stepgen.inputs.prompt_ids`), with room for ``max_new_tokens`` after them."""
    if not prompt:  # a run continues a text: the ids of an empty one (a lone BOS) are not enough
        raise ValueError("There is no token to continue from: type a prompt.")
    ids = prompt_ids(loaded, prompt, room=1, what="prompt")
    room = loaded.context_length - len(ids)
    if request.max_new_tokens > room:
        raise ValueError(
            f"`max_new_tokens` has to be at most {max(room, 0)} here: the prompt has {len(ids)} tokens and "
            f"{loaded.name} reads at most {loaded.context_length}, but `max_new_tokens` is {request.max_new_tokens}"
        )
    return ids


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
            self.report(token_rows(self.raw, scores[-1], input_ids[:, -1]), input_ids)
        return torch.full((input_ids.shape[0],), self.stop.is_set(), dtype=torch.bool, device=input_ids.device)


def stream(
    loaded: Any, prompt: str, request: GenerationRequest, *, stop: threading.Event | None = None,
) -> Iterator[GenerationUpdate]:
    """Run ``generate()`` for ``prompt`` and yield the sequences as they grow, then the final result.

    Setting ``stop`` (or closing this generator) ends the work on the next step;
    the result then says ``stopped``. The first token is yielded as soon as it
    exists, later ones at most every :data:`UPDATE_EVERY` seconds: a slow reader
    gets fewer, larger updates, never a backlog. Beam search cannot show its text before the end: it yields
    the number of steps done (as often), then the result, with the tree the search grew.
    """
    ids = run_ids(loaded, prompt, request)
    if request.contrastive:
        yield from _contrastive_stream(loaded, prompt, request, ids, stop or threading.Event())
        return
    if request.do_sample and request.seed is None:
        request = replace(request, seed=secrets.randbelow(MAX_SEED + 1))
    tokenizer, model = loaded.tokenizer, loaded.model
    kwargs = request.generate_kwargs(tokenizer, pad_token_id=pad_id(loaded))
    effective = effective_config(loaded, request, kwargs)
    config, _ = model._prepare_generation_config(None, **copy.deepcopy(kwargs))
    eos = eos_ids(config)
    stop = stop or threading.Event()
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    live_stop = (StopStringCriteria(tokenizer, list(request.stop_strings))
                 if request.stop_strings else None)

    n_rows = request.num_return_sequences
    steps: list[Step] = []
    """Every step so far, appended by the worker; the reader looks at it when an update is due."""
    beam_steps = [0]
    """How many steps beam search has done, set by the worker."""

    def report(numbers: list[tuple[float, ...]], input_ids: torch.Tensor) -> None:
        # one row may end on its stop string while the others go on
        hits = (live_stop(input_ids, None).tolist() if live_stop is not None and n_rows > 1 else [False] * n_rows)
        steps.append((input_ids[:, -1].tolist(), numbers, hits))
        if len(steps) == 1:  # the first token is shown at once; later ones wait for the reader's next look
            events.put(("step", None))

    def advanced(done: int) -> None:
        beam_steps[0] = done
        if done == 1:
            events.put(("step", None))

    observer: BeamObserver | None = None

    def work() -> None:
        nonlocal observer
        try:
            watch = _Watch(stop, report if request.streams else None)
            input_ids = torch.tensor([ids], device=loaded.device)
            handle = model.register_forward_hook(watch.hook) if request.streams else None
            try:
                call = dict(kwargs, input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                            return_dict_in_generate=True, output_scores=True, output_logits=not request.streams,
                            stopping_criteria=StoppingCriteriaList([watch]))
                if not request.streams:  # beam search: watched, step by step, by the observer of its tree
                    observer = _beam_observer(len(ids), request, eos, live_stop, watch, advanced)
                    call.update(logits_processor=LogitsProcessorList([observer.processor]),
                                stopping_criteria=StoppingCriteriaList([observer.criterion]))
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

    def result(sequences: tuple[GeneratedSequence, ...], stopped: bool,
               tree: tuple[BeamStep, ...] | None = None) -> GenerationUpdate:
        done = GenerationResult(
            model=loaded.name, prompt=prompt, prompt_ids=tuple(ids), request=request, kwargs=_plain_kwargs(kwargs),
            sequences=sequences, effective=effective, stopped=stopped, seconds=time.perf_counter() - started,
            beam_tree=tree)
        return GenerationUpdate(sequences=sequences, status="done", result=done)

    started = time.perf_counter()
    worker = threading.Thread(target=work, name="stepgen-generate", daemon=True)
    worker.start()
    streamed = Streamed(loaded, n_rows, eos)
    read = shown = 0
    try:
        while True:
            # once tokens flow, look at them every UPDATE_EVERY seconds: the reader is not woken for each token,
            # so it takes no time from generate() in between; the end is handled the moment it comes
            try:
                kind, payload = events.get(timeout=UPDATE_EVERY if read or shown else None)
            except queue.Empty:
                kind, payload = "due", None
            if kind == "waiting":
                yield GenerationUpdate(sequences=(), status="waiting")
                continue
            if kind == "error":
                failure = _failed(payload, len(steps))
                if failure is payload:
                    raise payload
                raise failure from payload
            if kind == "output":
                if payload is None:  # stopped while waiting for the sampling lock
                    yield result((), stopped=True)
                    return
                tree = None
                if request.streams:
                    streamed.absorb(steps[read:])
                    sequences = streamed_sequences(loaded, request, payload, len(ids), eos, live_stop, streamed.rows)
                else:
                    sequences = beam_sequences(loaded, request, payload, len(ids), eos, live_stop, stop.is_set())
                    tree = beam_tree(observer, payload, tokenizer, num_beams=request.num_beams,
                                     length_penalty=config.length_penalty)
                yield result(sequences, stopped=stop.is_set() and any(s.finish == "stopped" for s in sequences),
                             tree=tree)
                return
            if not request.streams:
                if beam_steps[0] != shown:
                    shown = beam_steps[0]
                    yield GenerationUpdate(sequences=(), status="running", steps=shown)
                continue
            new = steps[read:]
            read += len(new)
            if new:
                streamed.absorb(new)
                yield GenerationUpdate(sequences=streamed.sequences(), status="running")
    finally:
        if worker.is_alive():  # the reader left early (closed stream, error): stop the work too
            stop.set()
            worker.join()


def _contrastive_stream(
    loaded: Any, prompt: str, request: GenerationRequest, ids: list[int], stop: threading.Event,
) -> Iterator[GenerationUpdate]:
    """:func:`stream` for contrastive search: stepgen's engine, in the caller's thread (closing the stream stops
    it), yielding the first token at once and later ones at most every :data:`UPDATE_EVERY` seconds."""
    started = time.perf_counter()
    tokenizer = loaded.tokenizer
    kwargs = request.generate_kwargs(tokenizer, pad_token_id=pad_id(loaded))
    effective = effective_config(loaded, request, kwargs)
    live_stop = StopStringCriteria(tokenizer, list(request.stop_strings)) if request.stop_strings else None
    tokens: list[TokenInfo] = []
    finish, shown = "", 0.0
    steps = contrastive_steps(loaded, ids, penalty_alpha=request.penalty_alpha, top_k=request.decoding.top_k,
                              max_new_tokens=request.max_new_tokens, settings=request.decoding,
                              min_new_tokens=request.min_new_tokens, stop=stop)
    with contextlib.closing(steps):
        try:
            for step in steps:
                tokens.append(step.token)
                if step.id in eos_ids(loaded.model.generation_config):
                    finish = "eos"
                elif live_stop is not None and bool(live_stop(
                        torch.tensor([ids + [t.id for t in tokens]], device=loaded.device), None)[0]):
                    finish = "stop_string"
                    break
                if len(tokens) == 1 or time.perf_counter() - shown >= UPDATE_EVERY:
                    shown = time.perf_counter()
                    yield GenerationUpdate(sequences=(make_sequence(tokenizer, tokens, "running"),),
                                           status="running")
        except Exception as error:  # the model failed: a message, as for the other paths
            failure = _failed(error, len(tokens))
            if failure is error:
                raise
            raise failure from error
    # run_ids left room for max_new_tokens: short of them, without an end token or a stop string, Stop ended it
    finish = finish or ("length" if len(tokens) >= request.max_new_tokens else "stopped")
    sequences = (make_sequence(tokenizer, tokens, finish),)
    done = GenerationResult(
        model=loaded.name, prompt=prompt, prompt_ids=tuple(ids), request=request, kwargs=_plain_kwargs(kwargs),
        sequences=sequences, effective=effective, stopped=finish == "stopped",
        seconds=time.perf_counter() - started)
    yield GenerationUpdate(sequences=sequences, status="done", result=done)


def _beam_observer(
    prompt_len: int, request: GenerationRequest, eos: set[int], live_stop: StopStringCriteria | None,
    watch: _Watch, progress: Any,
) -> BeamObserver:
    """The observer of a beam search, asking the criteria ``generate()`` builds for the same knobs (and ``watch``)."""
    criteria: list[tuple[str, StoppingCriteria]] = []
    if eos:
        criteria.append(("eos", EosTokenCriteria(sorted(eos))))
    if live_stop is not None:
        criteria.append(("stop_string", live_stop))
    criteria += [("length", MaxLengthCriteria(prompt_len + request.max_new_tokens)), ("stopped", watch)]
    return BeamObserver(prompt_len, criteria, progress)


def _plain_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {key: plain(value) for key, value in kwargs.items()}


def generate(
    loaded: Any, prompt: str, request: GenerationRequest, *, stop: threading.Event | None = None,
) -> GenerationResult:
    """The batch form of :func:`stream`: run to the end (or until ``stop``) and return the result."""
    result = None
    for update in stream(loaded, prompt, request, stop=stop):
        result = update.result or result
    assert result is not None, "the stream ended without a result"
    return result
