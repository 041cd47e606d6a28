"""The tree a beam search grew, observed during one ``model.generate(num_beams=N)`` call.

A :class:`BeamObserver` rides along with one ``generate()`` call and changes
nothing in it. Its :attr:`~BeamObserver.processor` (a ``LogitsProcessor``
returning the scores untouched) is handed, at every step, the ids of the
running beams; their order is ``generate()``'s own beam order, the one
``beam_indices`` refers to. Its :attr:`~BeamObserver.criterion` (a
``StoppingCriteria``) is handed the continuations ``generate()`` picked at that
step, best first (the top ``2 * num_beams`` of all beams, or the ones beam
sampling drew), and asks transformers' own criteria which of them end there
(end-of-sequence, a stop string, the length limit, the Stop button); its verdict
is part of ``generate()``'s own, so stopping is seen exactly as it happened.

:func:`beam_tree` then reads the numbers off what ``generate()`` returned:
``scores`` (the log-probabilities after every processor, one row per running
beam, warpers included when beam sampling) give each candidate's log-probability
and score, summed in float32 exactly as ``generate()`` sums them; a finished
hypothesis's score is that sum divided by ``length ** length_penalty``, and the
returned sequences are matched to finished hypotheses by their tokens, with
``beam_indices`` and ``sequences_scores`` checked against the tree. A tree that
disagrees with ``generate()``'s outputs raises instead of showing wrong numbers.

As in ``generate()``, only continuations among the best ``num_beams`` of a step
may finish; when the length limit ends the search, every one of them finishes
at the last step. ``generate()`` may still leave a finished hypothesis out of
its final list (a better one came first, or ``early_stopping`` closed the list):
``returned`` says which finished hypotheses it returned.

This module only observes and reads one run: running it is
:mod:`stepgen.generation`, drawing the tree is ``ui/beamtree_view.py``.

A little over the ~300-line guide: the observer and the tree it builds are one
idea (what generate() did), and the dataclasses are only its plain output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch
from transformers import LogitsProcessor, StoppingCriteria

from stepgen.tokens import token_text

FINISH_REASONS = ("eos", "stop_string", "length", "stopped")
"""Why a hypothesis ended, in the order the reasons are checked (the first that applies is given)."""


def _number(value: float) -> float | None:
    """A number for JSON, which has no infinity: None for a continuation no processor allowed (-inf)."""
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class BeamNode:
    """A live hypothesis after a step: one of ``generate()``'s running beams."""

    beam: int
    """Its place among the running beams after this step (what ``beam_indices`` counts in)."""
    parent: int
    """The beam it grew from, among the running beams of the step before (0, the prompt, at the first step)."""
    token_id: int
    text: str
    logprob: float
    """The log-probability of the token after every processor: what beam search adds up."""
    score: float
    """The sum of those log-probabilities along the hypothesis: the beam's running score."""

    def to_dict(self) -> dict[str, Any]:
        return {"beam": self.beam, "parent": self.parent, "token_id": self.token_id, "text": self.text,
                "logprob": _number(self.logprob), "score": _number(self.score)}


@dataclass(frozen=True)
class Candidate:
    """One continuation a beam considered at a step: one of its likeliest tokens, or one ``generate()`` picked."""

    parent: int
    token_id: int
    text: str
    logprob: float
    score: float
    """The parent's running score plus ``logprob``: what beam search ranks continuations by."""
    status: str
    """``survived`` (a live beam after the step), ``finished`` or ``pruned``."""
    beam: int | None = None
    """The beam it became, when it survived."""

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "token_id": self.token_id, "text": self.text, "logprob": _number(self.logprob),
                "score": _number(self.score), "status": self.status, "beam": self.beam}


@dataclass(frozen=True)
class FinishedHypothesis:
    """A hypothesis that ended at a step, with beam search's length-penalised score."""

    parent: int
    token_id: int
    text: str
    logprob: float
    token_ids: tuple[int, ...]
    """Every generated token of it (the prompt excluded)."""
    sum_logprob: float
    """Its running score: the sum of its tokens' log-probabilities."""
    score: float
    """``sum_logprob / len(token_ids) ** length_penalty``: what ``generate()`` ranks finished hypotheses by."""
    reason: str
    """One of :data:`FINISH_REASONS`."""
    returned: int | None = None
    """Its place among the sequences ``generate()`` returned, or None when it was not returned."""

    def to_dict(self) -> dict[str, Any]:
        return {"parent": self.parent, "token_id": self.token_id, "text": self.text, "logprob": _number(self.logprob),
                "token_ids": list(self.token_ids), "sum_logprob": _number(self.sum_logprob),
                "score": _number(self.score), "reason": self.reason, "returned": self.returned}


@dataclass(frozen=True)
class BeamStep:
    """One step of the search: the beams it left alive, the candidates it weighed, the hypotheses that ended."""

    step: int
    """The position of the token chosen at this step among the generated tokens (0 for the first)."""
    beams: tuple[BeamNode, ...]
    """The running beams after the step (none after the last step: the search ended there)."""
    candidates: tuple[Candidate, ...]
    """Per beam of the step before (in beam order), its candidates, likeliest first."""
    finished: tuple[FinishedHypothesis, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "beams": [b.to_dict() for b in self.beams],
                "candidates": [c.to_dict() for c in self.candidates],
                "finished": [f.to_dict() for f in self.finished]}


def _parents(rows: torch.Tensor, running: torch.Tensor) -> list[int]:
    """For each continuation in ``rows``, the running beam it grew from: the one whose ids are its prefix.

    Running beams are alike only when ``generate()`` had to continue its spare copies of the prompt (fewer
    possible continuations than beams); it ranks them after the real ones, so the k-th of several equal
    continuations grew from the k-th of the equal beams.
    """
    same = (rows[:, None, :-1] == running[None, :, :]).all(dim=-1)
    if not bool(same.any(dim=-1).all()):
        raise RuntimeError("a continuation of generate() grew from no running beam it handed its processors")
    if bool((same.sum(dim=-1) == 1).all()):
        return same.int().argmax(dim=-1).tolist()
    seen: dict[tuple[int, ...], int] = {}
    parents = []
    for row, key in enumerate(map(tuple, rows.tolist())):
        matches = torch.nonzero(same[row]).view(-1).tolist()
        parents.append(matches[min(seen.get(key, 0), len(matches) - 1)])
        seen[key] = seen.get(key, 0) + 1
    return parents


class _Running(LogitsProcessor):
    def __init__(self, observer: BeamObserver) -> None:
        self.observer = observer

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.observer._running(input_ids)
        return scores


class _Ends(StoppingCriteria):
    def __init__(self, observer: BeamObserver) -> None:
        self.observer = observer

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        return self.observer._ends(input_ids, scores, **kwargs)


class BeamObserver:
    """Watches one beam-search ``generate()`` call: pass :attr:`processor` and :attr:`criterion` to it.

    ``criteria`` are (reason, criterion) pairs, reasons from :data:`FINISH_REASONS`:
    transformers' criteria built for the same knobs as ``generate()``'s own
    (``EosTokenCriteria``, ``StopStringCriteria``, ``MaxLengthCriteria``) and the
    run's stop criterion. ``progress`` is called with the number of steps done
    after each step, on ``generate()``'s thread.
    """

    def __init__(self, prompt_len: int, criteria: Sequence[tuple[str, StoppingCriteria]],
                 progress: Callable[[int], None] | None = None) -> None:
        unknown = [reason for reason, _ in criteria if reason not in FINISH_REASONS]
        if unknown:
            raise ValueError(f"`criteria` has to name reasons from {FINISH_REASONS}, but names {unknown}")
        self.prompt_len = prompt_len
        self.criteria = list(criteria)
        self.progress = progress
        self.processor: LogitsProcessor = _Running(self)
        self.criterion: StoppingCriteria = _Ends(self)
        self.running: list[tuple[list[int], list[int]]] = []
        """Per step from the second on: (parent, token) of each running beam handed to the processors."""
        self.picked: list[tuple[list[int], list[int], list[str | None]]] = []
        """Per step: (parent, token, reason it ended or None) of each continuation generate() picked, best first."""
        self._last: torch.Tensor | None = None

    def _running(self, input_ids: torch.Tensor) -> None:
        ids = input_ids[:, self.prompt_len:]
        if self._last is not None:
            self.running.append((_parents(ids, self._last), ids[:, -1].tolist()))
        self._last = ids.clone()

    def _ends(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        hits = {reason: criterion(input_ids, scores, **kwargs) for reason, criterion in self.criteria}
        reasons: list[str | None] = [None] * input_ids.shape[0]
        for reason in reversed(FINISH_REASONS):  # the first reason in FINISH_REASONS wins
            if reason in hits:
                for row in torch.nonzero(hits[reason]).view(-1).tolist():
                    reasons[row] = reason
        if self._last is None:
            raise RuntimeError("generate() asked its stopping criteria before its logits processors")
        ids = input_ids[:, self.prompt_len:]
        self.picked.append((_parents(ids, self._last), ids[:, -1].tolist(), reasons))
        if self.progress is not None:
            self.progress(len(self.picked))
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for hit in hits.values():
            done = done | hit
        return done


@torch.no_grad()
def beam_tree(observer: BeamObserver, output: Any, tokenizer: Any, *, num_beams: int, length_penalty: float,
              top: int | None = None) -> tuple[BeamStep, ...]:
    """The search ``observer`` watched, step by step, with the numbers read off ``generate()``'s ``output``.

    ``output`` is what ``generate(return_dict_in_generate=True, output_scores=True)``
    returned for the watched call; ``top`` is how many of each beam's likeliest
    tokens are listed as its candidates (default ``2 * num_beams``, which holds
    every continuation ``generate()`` ranks when it does not sample); the
    continuations it picked are always listed.
    """
    top = 2 * num_beams if top is None else top
    n_steps = len(output.scores)
    if len(observer.picked) != n_steps or len(observer.running) != n_steps - 1:
        raise RuntimeError(f"the observer saw {len(observer.picked)} steps, generate() returned {n_steps}")
    texts: dict[int, str] = {}

    def text(token: int) -> str:
        if token not in texts:
            texts[token] = token_text(tokenizer, token)
        return texts[token]

    # generate() starts from num_beams copies of the prompt, only the first with score 0: the others (-1e9) are
    # there so that the first step continues one beam only, and show up only when fewer continuations than beams
    # are possible at all
    score = torch.full((num_beams,), -1.0e9)
    score[0] = 0.0
    paths: list[tuple[int, ...]] = [()] * num_beams
    steps: list[BeamStep] = []
    finished_at: dict[tuple[int, tuple[int, ...]], FinishedHypothesis] = {}
    for t in range(n_steps):
        logprobs = output.scores[t].float()
        totals = logprobs + score[:, None]  # float32, as generate() adds them
        picked_parent, picked_token, reasons = observer.picked[t]
        picked = list(zip(picked_parent, picked_token, reasons))
        survivors = list(zip(*observer.running[t])) if t + 1 < n_steps else []
        # at the first step, the prompt (and any spare copy of it generate() had to continue)
        parents = sorted({0} | {p for p, _, _ in picked} | {p for p, _ in survivors}) if t == 0 else range(num_beams)
        best = torch.topk(logprobs[list(parents)], k=min(top, logprobs.shape[-1]), dim=-1).indices.tolist()
        numbers: dict[tuple[int, int], tuple[float, float]] = {}
        """(log-probability, score) of each listed candidate."""
        listed: list[tuple[int, list[int]]] = []
        for parent, likeliest in zip(parents, best):
            tokens = likeliest + [token for p, token, _ in picked if p == parent and token not in likeliest]
            tokens += [token for p, token in survivors if p == parent and token not in tokens]
            index = torch.tensor(tokens, dtype=torch.long)
            for token, logprob, total in zip(tokens, *torch.stack([logprobs[parent, index],
                                                                   totals[parent, index]]).tolist()):
                numbers[(parent, token)] = (logprob, total)
            listed.append((parent, tokens))
        finished = []
        ends = [(parent, token, reason) for parent, token, reason in picked[:num_beams] if reason is not None]
        if ends:  # only the best num_beams continuations may finish, as in generate()
            rows, cols = torch.tensor([e[0] for e in ends]), torch.tensor([e[1] for e in ends])
            penalised = (totals[rows, cols] / ((t + 1) ** length_penalty)).tolist()
            for (parent, token, reason), value in zip(ends, penalised):
                logprob, total = numbers[(parent, token)]
                finished.append(FinishedHypothesis(
                    parent=parent, token_id=token, text=text(token), logprob=logprob,
                    token_ids=paths[parent] + (token,), sum_logprob=total, score=value, reason=reason))
        beams = []
        if survivors:
            # a continuation that ended cannot go on: generate() keeps one only when it lacks others, at -1e9
            ended = {(parent, token): reason is not None for parent, token, reason in picked}
            hits = torch.tensor([float(ended.get(pair, False)) for pair in survivors])
            rows, cols = torch.tensor([p for p, _ in survivors]), torch.tensor([c for _, c in survivors])
            score = totals[rows, cols] + hits * -1.0e9
            for beam, ((parent, token), running) in enumerate(zip(survivors, score.tolist())):
                beams.append(BeamNode(beam=beam, parent=parent, token_id=token, text=text(token),
                                      logprob=numbers[(parent, token)][0], score=running))
        became = {(b.parent, b.token_id): b.beam for b in beams}
        finishing = {(f.parent, f.token_id) for f in finished}
        candidates = []
        for parent, tokens in listed:
            for token in sorted(tokens, key=lambda token: -numbers[(parent, token)][0]):
                logprob, total = numbers[(parent, token)]
                status = ("finished" if (parent, token) in finishing else
                          "survived" if (parent, token) in became else "pruned")
                if not math.isfinite(logprob) and status == "pruned":
                    continue  # a token a processor ruled out is no candidate (unless generate() had to take it)
                candidates.append(Candidate(parent=parent, token_id=token, text=text(token), logprob=logprob,
                                            score=total, status=status, beam=became.get((parent, token))))
        steps.append(BeamStep(step=t, beams=tuple(beams), candidates=tuple(candidates), finished=tuple(finished)))
        for hypothesis in finished:
            finished_at.setdefault((t, hypothesis.token_ids), hypothesis)
        if beams:
            paths = [paths[b.parent] + (b.token_id,) for b in beams]
    return _mark_returned(steps, finished_at, output, observer.prompt_len)


def path_beams(steps: Sequence[BeamStep], step: int, parent: int) -> list[int]:
    """The parent beam at every step of the hypothesis that grew from beam ``parent`` at ``step``
    (what ``beam_indices`` holds for it): follow the parent links back to the prompt."""
    chain = [parent]
    for t in range(step - 1, -1, -1):
        parent = steps[t].beams[parent].parent
        chain.append(parent)
    return chain[::-1]


def _mark_returned(steps: list[BeamStep], finished_at: dict[tuple[int, tuple[int, ...]], FinishedHypothesis],
                   output: Any, prompt_len: int) -> tuple[BeamStep, ...]:
    """Mark the finished hypotheses ``generate()`` returned, checking the tree against its outputs."""
    beam_indices, scores = output.beam_indices, output.sequences_scores
    returned: dict[int, dict[tuple[int, ...], int]] = {}
    for row in range(output.sequences.shape[0]):
        length = int((beam_indices[row] >= 0).sum())
        ids = tuple(output.sequences[row, prompt_len: prompt_len + length].tolist())
        hypothesis = finished_at.get((length - 1, ids))
        if hypothesis is None:
            raise RuntimeError(f"returned sequence {row} {list(ids)} is no finished hypothesis of the observed search")
        if scores is not None and abs(hypothesis.score - float(scores[row])) > 1e-4 * max(1.0, abs(hypothesis.score)):
            raise RuntimeError(f"returned sequence {row}: the tree scores it {hypothesis.score}, "
                               f"generate() {float(scores[row])}")
        chain = path_beams(steps, length - 1, hypothesis.parent)
        if chain != beam_indices[row, :length].tolist():
            raise RuntimeError(f"returned sequence {row}: the tree's beams {chain} differ from generate()'s "
                               f"beam_indices {beam_indices[row, :length].tolist()}")
        returned.setdefault(length - 1, {})[ids] = row
    marked = []
    for step in steps:
        rows = returned.get(step.step, {})
        finished = tuple(replace(f, returned=rows.get(f.token_ids)) for f in step.finished)
        marked.append(replace(step, finished=finished))
    return tuple(marked)
