"""Reading a ``generate()`` run's sequences and per-token numbers off the tensors ``generate()`` itself computed.

Model probability, rank and entropy come from the raw logits; final
probability and entropy from the processed scores the token was picked from.
A greedy or sampled run is read step by step while it streams
(:class:`Streamed`, fed by :mod:`stepgen.generation`'s stopping criterion) and
cut where each row really ended (:func:`streamed_sequences`); beam search is
read at the end, following the beam indices (:func:`beam_sequences`). This
module neither runs ``generate()`` nor keeps anything between runs.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from transformers import StopStringCriteria

from stepgen.numbers import token_numbers
from stepgen.request import GenerationRequest
from stepgen.results import GeneratedSequence, TokenInfo
from stepgen.tokens import token_text

def token_rows(raw: torch.Tensor, processed: torch.Tensor, tokens: torch.Tensor) -> list[tuple[float, ...]]:
    """(prob, final_prob, rank, entropy, final_entropy, logprob) per row, from raw logits and processed scores."""
    raw, processed = raw.float(), processed.float()
    model = token_numbers(raw, tokens)
    # no processor changed anything (plain greedy): same numbers, half the work
    final = model if torch.equal(raw, processed) else token_numbers(processed, tokens)
    return list(zip(model.prob.view(-1).tolist(), final.prob.view(-1).tolist(), model.rank.view(-1).tolist(),
                    model.entropy.tolist(), final.entropy.tolist(), model.logprob.view(-1).tolist()))


def finish_points(
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


def make_sequence(
    tokenizer: Any, tokens: list[TokenInfo] | tuple[TokenInfo, ...], finish: str, beam_score: float | None = None,
) -> GeneratedSequence:
    ids = tuple(token.id for token in tokens)
    logprob = math.fsum(token.logprob for token in tokens)
    return GeneratedSequence(token_ids=ids, text=tokenizer.decode(ids, skip_special_tokens=True), tokens=tuple(tokens),
                             logprob=logprob, finish=finish, beam_score=beam_score)


def streamed_sequences(
    loaded: Any, request: GenerationRequest, output: Any, prompt_len: int, eos: set[int],
    stop_criterion: StopStringCriteria | None, streamed: list[list[TokenInfo]],
) -> tuple[GeneratedSequence, ...]:
    """The returned sequences of a greedy or sampled run, cut where each one really ended.

    Their tokens are the ones the stream already read off ``generate()``'s own
    tensors step by step (:class:`Streamed`), kept as they are: the numbers
    shown while streaming are the final ones.
    """
    result = []
    for r, (length, reason) in enumerate(
        finish_points(loaded, request, output.sequences, prompt_len, eos, stop_criterion)
    ):
        tokens = streamed[r][:length]
        ids = output.sequences[r, prompt_len : prompt_len + length].tolist()
        if [token.id for token in tokens] != ids:
            raise RuntimeError(f"sequence {r}: the streamed tokens {tokens} differ from generate()'s output {ids}")
        result.append(make_sequence(loaded.tokenizer, tokens, reason))
    return tuple(result)


@torch.no_grad()
def beam_sequences(
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
        per_row = token_rows(output.logits[t][rows], output.scores[t][rows], sequences[:, prompt_len + t])
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
        result.append(make_sequence(tokenizer, tokens, reason, float(beam_scores[r])))
    return tuple(result)


Step = tuple[list[int], list[tuple[float, ...]], list[bool]]
"""One step of a streaming run, per row: the token, its numbers, whether a stop string ended the row there."""


class Streamed:
    """The sequences of a streaming run so far, built from the steps the worker reports.

    A step is, per row, the token, its numbers (see :func:`token_rows`) and
    whether a stop string ended the row there; :meth:`absorb` adds the steps
    that arrived since the last update to the rows that are still going.
    """

    def __init__(self, loaded: Any, n_rows: int, eos: set[int]) -> None:
        self.tokenizer = loaded.tokenizer
        self.eos = eos
        self.rows: list[list[TokenInfo]] = [[] for _ in range(n_rows)]
        self.done = [False] * n_rows

    def absorb(self, steps: list[Step]) -> None:
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
        return tuple(make_sequence(self.tokenizer, tokens, "running") for tokens in self.rows)

