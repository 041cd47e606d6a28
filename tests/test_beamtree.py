"""The beam-search tree: what generate() itself did, step by step, and scores equal to its own."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import torch
from transformers import EosTokenCriteria, LogitsProcessor, LogitsProcessorList, MaxLengthCriteria, StoppingCriteriaList

from stepgen.beamtree import BeamObserver, BeamStep, beam_tree, path_beams
from stepgen.generation import generate
from stepgen.request import GenerationRequest
from test_generation import PROMPT, assert_same_ids, plain_generate

BEAM = {"max_new_tokens": 12, "num_beams": 4, "num_return_sequences": 4}


class Record(LogitsProcessor):
    """Keeps the input_ids generate() hands its processors at every step."""

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.seen.append(input_ids.clone())
        return scores


class BoostEos(LogitsProcessor):
    """Makes the end-of-sequence token the likeliest of every beam at one step, so that hypotheses end there."""

    def __init__(self, eos: int, prompt_len: int, step: int) -> None:
        self.eos, self.at = eos, prompt_len + step

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if input_ids.shape[1] != self.at:
            return scores
        scores = scores.clone()
        scores[:, self.eos] = scores.max(dim=-1).values + 1.0
        return scores


def paths(tree: tuple[BeamStep, ...]) -> list[list[tuple[int, ...]]]:
    """The tokens of every live beam after each step, following the parent links from the prompt."""
    out: list[list[tuple[int, ...]]] = []
    previous: list[tuple[int, ...]] = [()]
    for step in tree:
        current = [previous[beam.parent] + (beam.token_id,) for beam in step.beams]
        out.append(current)
        previous = current
    return out


def finished_returned(tree: tuple[BeamStep, ...]) -> dict[int, Any]:
    return {f.returned: f for step in tree for f in step.finished if f.returned is not None}


def assert_sequences_on_tree(result: Any) -> None:
    """Each returned sequence is a chain of parent links ending at a finished hypothesis, at its last step."""
    tree, live = result.beam_tree, paths(result.beam_tree)
    ended = finished_returned(tree)
    assert sorted(ended) == list(range(len(result.sequences))), f"returned hypotheses marked: {sorted(ended)}"
    for r, sequence in enumerate(result.sequences):
        hypothesis = ended[r]
        n = len(sequence.token_ids)
        assert hypothesis.token_ids == sequence.token_ids, f"sequence {r}: {sequence.token_ids} vs {hypothesis}"
        assert hypothesis in tree[n - 1].finished, f"sequence {r} of {n} tokens is not finished at step {n - 1}"
        prefix = () if n == 1 else live[n - 2][hypothesis.parent]
        assert prefix + (hypothesis.token_id,) == sequence.token_ids, f"sequence {r}: parent links give {prefix}"
        assert abs(hypothesis.score - sequence.beam_score) < 1e-5, f"sequence {r}: {hypothesis.score} vs beam score"


@pytest.mark.parametrize("knobs", [
    BEAM,
    {**BEAM, "length_penalty": 0.5, "early_stopping": True, "repetition_penalty": 1.3, "no_repeat_ngram_size": 2},
    {"max_new_tokens": 10, "do_sample": True, "seed": 5, "num_beams": 3, "temperature": 1.5, "top_k": 4},
    # top_k=2 leaves fewer continuations than beams: generate() has to continue its spare copies of the prompt
    {"max_new_tokens": 8, "do_sample": True, "seed": 3, "num_beams": 3, "top_k": 2, "num_return_sequences": 3},
], ids=["plain", "penalties", "beam-sample", "too-few-continuations"])
def test_returned_sequences_follow_the_tree_and_equal_plain_generate(tiny: object, knobs: dict) -> None:
    request = GenerationRequest.from_dict(knobs)
    result = generate(tiny, PROMPT, request)
    assert result.beam_tree is not None, "a beam search returned no tree"
    assert_same_ids(tiny, result, plain_generate(tiny, PROMPT, request))
    assert_sequences_on_tree(result)


def test_live_beams_are_the_running_beams_generate_hands_its_processors(tiny: object) -> None:
    request = GenerationRequest.from_dict({**BEAM, "repetition_penalty": 1.2})
    result = generate(tiny, PROMPT, request)
    record = Record()
    plain_generate(tiny, PROMPT, request, logits_processor=LogitsProcessorList([record]))
    prompt_len = len(result.prompt_ids)
    live = paths(result.beam_tree)
    assert len(record.seen) == len(result.beam_tree), f"{len(record.seen)} steps, tree has {len(result.beam_tree)}"
    for t, seen in enumerate(record.seen[1:]):
        running = [tuple(row) for row in seen[:, prompt_len:].tolist()]
        assert live[t] == running, f"after step {t} the tree has beams {live[t]}, generate() ran {running}"
    assert result.beam_tree[-1].beams == (), "the length limit ended the search, yet beams live after it"


@pytest.mark.parametrize("early_stopping", [True, False])
@pytest.mark.parametrize("length_penalty", [0.5, 2.0])
def test_finished_scores_equal_sequences_scores(tiny: object, length_penalty: float, early_stopping: bool) -> None:
    request = GenerationRequest.from_dict({**BEAM, "length_penalty": length_penalty,
                                           "early_stopping": early_stopping})
    result = generate(tiny, PROMPT, request)
    scores = plain_generate(tiny, PROMPT, request).sequences_scores.tolist()
    ended = finished_returned(result.beam_tree)
    for r, score in enumerate(scores):
        assert abs(ended[r].score - score) < 1e-5, f"sequence {r}: tree {ended[r].score}, generate() {score}"
        penalised = ended[r].sum_logprob / len(ended[r].token_ids) ** length_penalty
        assert abs(ended[r].score - penalised) < 1e-5, f"sequence {r}: {ended[r]} is not length-penalised"


def observed(loaded: Any, *, length_penalty: float, early_stopping: bool, eos_step: int, num_beams: int = 4,
             new_tokens: int = 10, top: int | None = None) -> tuple[tuple[BeamStep, ...], Any, int]:
    """A plain beam-search generate() watched by a BeamObserver, with the end-of-sequence token pushed at one step."""
    tokenizer, model = loaded.tokenizer, loaded.model
    ids = torch.tensor([tokenizer(PROMPT)["input_ids"]])
    prompt_len, eos = ids.shape[1], tokenizer.eos_token_id
    observer = BeamObserver(prompt_len, [("eos", EosTokenCriteria(eos)),
                                         ("length", MaxLengthCriteria(prompt_len + new_tokens))])
    out = model.generate(
        ids, attention_mask=torch.ones_like(ids), num_beams=num_beams, num_return_sequences=num_beams,
        max_new_tokens=new_tokens, do_sample=False, length_penalty=length_penalty, early_stopping=early_stopping,
        pad_token_id=eos, eos_token_id=eos, return_dict_in_generate=True, output_scores=True,
        logits_processor=LogitsProcessorList([BoostEos(eos, prompt_len, eos_step), observer.processor]),
        stopping_criteria=StoppingCriteriaList([observer.criterion]),
    )
    return beam_tree(observer, out, tokenizer, num_beams=num_beams, length_penalty=length_penalty, top=top), out, eos


@pytest.mark.parametrize("early_stopping", [True, False])
@pytest.mark.parametrize("length_penalty", [0.5, 1.0, 2.0])
def test_eos_finished_hypotheses_appear_at_the_step_they_finished(
    tiny_gpt2: object, length_penalty: float, early_stopping: bool,
) -> None:
    tree, out, eos = observed(tiny_gpt2, length_penalty=length_penalty, early_stopping=early_stopping, eos_step=3)
    at_eos = tree[3].finished
    assert at_eos and all(f.reason == "eos" and f.token_id == eos for f in at_eos), f"step 3 finished {at_eos}"
    for step in tree:
        for f in step.finished:
            assert len(f.token_ids) == step.step + 1, f"{f} finished at step {step.step}"
            assert (f.reason == "eos") == (f.token_ids[-1] == eos), f"{f}: reason and last token disagree"
            assert f.reason in {"eos", "length"}, f
    ended = finished_returned(tree)
    for r, score in enumerate(out.sequences_scores.tolist()):
        assert abs(ended[r].score - score) < 1e-5, f"sequence {r}: tree {ended[r].score}, generate() {score}"
    for step in tree:
        for c in step.candidates:
            if c.status == "survived":
                beam = step.beams[c.beam]
                assert (beam.parent, beam.token_id) == (c.parent, c.token_id), f"{c} did not become {beam}"
        survivors = sorted(c.beam for c in step.candidates if c.status == "survived")
        assert survivors == list(range(len(step.beams))), f"step {step.step}: survivors {survivors}"
        ends = {(c.parent, c.token_id) for c in step.candidates if c.status == "finished"}
        assert ends == {(f.parent, f.token_id) for f in step.finished}, f"step {step.step}: finished candidates"


def test_parent_links_equal_beam_indices_and_top_bounds_the_candidates(tiny_llama: object) -> None:
    tree, out, _ = observed(tiny_llama, length_penalty=1.0, early_stopping=False, eos_step=99, top=3)
    ended = finished_returned(tree)
    for r in range(out.sequences.shape[0]):
        length = int((out.beam_indices[r] >= 0).sum())
        chain = path_beams(tree, length - 1, ended[r].parent)
        assert chain == out.beam_indices[r, :length].tolist(), f"sequence {r}: {chain} vs {out.beam_indices[r]}"
    for step in tree:
        for parent in {c.parent for c in step.candidates}:
            mine = [c for c in step.candidates if c.parent == parent]
            assert [c.logprob for c in mine] == sorted((c.logprob for c in mine), reverse=True), "not likeliest first"
            top3 = out.scores[step.step][parent].topk(3).indices.tolist()
            assert [c.token_id for c in mine[:3]] == top3, f"step {step.step}, beam {parent}: {mine[:3]} vs {top3}"
            picked = [c for c in mine[3:] if c.status == "pruned"]
            assert len(mine) - 3 <= 2 * 4, f"step {step.step}, beam {parent}: more candidates than generate() picked"
            assert all(c.score <= mine[0].score for c in picked), picked


def test_stop_strings_and_stop_finish_hypotheses(tiny: object) -> None:
    request = GenerationRequest.from_dict({**BEAM, "max_new_tokens": 16, "stop_strings": ["e"]})
    result = generate(tiny, PROMPT, request)
    assert_same_ids(tiny, result, plain_generate(tiny, PROMPT, request))
    assert_sequences_on_tree(result)
    for step in result.beam_tree:
        for f in step.finished:
            text, before = tiny.tokenizer.decode(f.token_ids), tiny.tokenizer.decode(f.token_ids[:-1])
            assert "e" not in before, f"{f}: a hypothesis went on after its stop string: {text!r}"
            assert (f.reason == "stop_string") == ("e" in text) or f.reason == "eos", f"{f}: {text!r}"
    stop = threading.Event()
    stop.set()
    stopped = generate(tiny, PROMPT, GenerationRequest.from_dict(BEAM), stop=stop)
    assert stopped.stopped and len(stopped.beam_tree) == 1, f"{len(stopped.beam_tree)} steps after Stop"
    assert {f.reason for f in stopped.beam_tree[0].finished} == {"stopped"}, stopped.beam_tree[0].finished
    assert_sequences_on_tree(stopped)


def test_the_tree_is_json_in_the_result(tiny_gpt2: object) -> None:
    result = generate(tiny_gpt2, PROMPT, GenerationRequest.from_dict(
        {"max_new_tokens": 8, "num_beams": 3, "do_sample": True, "seed": 3, "top_k": 2}))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    tree = data["beam_tree"]
    assert isinstance(tree, list) and len(tree) == 8, f"beam_tree has {len(tree)} steps"
    assert set(tree[0]) >= {"beams", "candidates", "finished"}, tree[0].keys()
    assert set(tree[0]["beams"][0]) >= {"beam", "parent", "token_id", "text", "logprob", "score"}, tree[0]["beams"]
    assert set(tree[-1]["finished"][0]) >= {"token_ids", "score"}, tree[-1]["finished"]
    greedy = generate(tiny_gpt2, PROMPT, GenerationRequest.from_dict({"max_new_tokens": 4}))
    assert greedy.beam_tree is None and greedy.to_dict()["beam_tree"] is None, "greedy decoding has no beam tree"


@pytest.mark.slow
def test_eight_beams_forty_steps_on_the_embedded_model(embedded: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 40, "num_beams": 8, "num_return_sequences": 8,
                                           "length_penalty": 2.0})
    prompt = "The best thing about learning to cook is"
    result = generate(embedded, prompt, request)
    out = plain_generate(embedded, prompt, request)
    assert_same_ids(embedded, result, out)
    assert_sequences_on_tree(result)
    ended = finished_returned(result.beam_tree)
    for r, score in enumerate(out.sequences_scores.tolist()):
        assert abs(ended[r].score - score) < 1e-5, f"sequence {r}: tree {ended[r].score}, generate() {score}"
    assert all(len(step.beams) == 8 for step in result.beam_tree[:-1]), "a step before the last lost beams"
    json.dumps(result.to_dict(), allow_nan=False)
