"""Contrastive search on stepgen's engine: greedy at penalty_alpha 0, the paper's formula recomputed from scratch
gives the same tokens, the k candidates go through the model as one batch on the cached text, and the run stops
where it should."""

from __future__ import annotations

import ast
import contextlib
import io
import math
import threading
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from transformers import LogitsProcessorList, MinNewTokensLengthLogitsProcessor

from stepgen.codegen import python_code
from stepgen.contrastive import contrastive_search, contrastive_steps
from stepgen.effective import eos_ids
from stepgen.generation import generate, stream
from stepgen.request import GenerationRequest
from stepgen.settings import DecodingSettings

PROMPT = "It was a dark and stormy night; the rain fell in torrents. It was a dark and"


def prompt_ids(loaded: object, prompt: str = PROMPT) -> list[int]:
    return loaded.tokenizer(prompt)["input_ids"]


@torch.no_grad()
def reference(loaded: object, ids: list[int], alpha: float, k: int, max_new: int,
              settings: DecodingSettings = DecodingSettings(), min_new: int = 0) -> list[int]:
    """Contrastive search as the paper writes it, recomputing everything at every step: no cache, one candidate at
    a time, its hidden state and every earlier token's from one full forward pass of the text plus the candidate."""
    model = loaded.model
    eos = model.generation_config.eos_token_id
    stop_ids = sorted(eos_ids(model.generation_config))
    steps = [processor for _, processor in settings.processors(loaded.tokenizer, eos_token_id=eos)]
    if min_new and stop_ids:
        steps.append(MinNewTokensLengthLogitsProcessor(len(ids), min_new, stop_ids))
    processors = LogitsProcessorList(steps)
    sequence, written = list(ids), []
    for _ in range(max_new):
        logits = model(torch.tensor([sequence])).logits[:, -1]
        probs = torch.softmax(processors(torch.tensor([sequence]), logits.clone()), dim=-1)[0]
        top = probs.topk(k)
        best, best_score = None, -math.inf
        for p, candidate in zip(top.values.tolist(), top.indices.tolist()):
            hidden = model(torch.tensor([sequence + [candidate]]), output_hidden_states=True).hidden_states[-1][0]
            penalty = F.cosine_similarity(hidden[-1:], hidden[:-1], dim=-1).max().item()
            score = (1 - alpha) * p - alpha * penalty
            if p > 0 and score > best_score:
                best, best_score = candidate, score
        written.append(best)
        sequence.append(best)
        if best in stop_ids:
            break
    return written


def greedy_ids(loaded: object, ids: list[int], max_new: int, settings: DecodingSettings = DecodingSettings(),
               min_new: int = 0) -> list[int]:
    tensor = torch.tensor([ids])
    output = loaded.model.generate(tensor, attention_mask=torch.ones_like(tensor), max_new_tokens=max_new,
                                   min_new_tokens=min_new, pad_token_id=0,
                                   **replace(settings, temperature=0).generate_kwargs(loaded.tokenizer))
    return output[0, len(ids):].tolist()


# --- penalty_alpha 0 is greedy ------------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [DecodingSettings(), DecodingSettings(repetition_penalty=1.4,
                                                                           no_repeat_ngram_size=2)])
def test_penalty_alpha_zero_is_greedy(tiny: object, settings: DecodingSettings) -> None:
    ids = prompt_ids(tiny)
    run = contrastive_search(tiny, ids, penalty_alpha=0.0, top_k=4, max_new_tokens=24, min_new_tokens=24,
                             settings=settings)
    want = greedy_ids(tiny, ids, 24, settings, min_new=24)
    assert list(run.token_ids) == want, f"penalty_alpha=0 wrote {run.token_ids}, greedy generate() wrote {want}"
    assert not any(step.overruled for step in run.steps), "with penalty_alpha=0 the penalty overruled a token"


# --- the cached engine agrees with the reference ------------------------------------------------------------------


@pytest.mark.parametrize(("alpha", "k"), [(0.3, 2), (0.6, 4), (0.9, 7), (1.0, 3)])
def test_cached_engine_agrees_with_the_reference(tiny: object, alpha: float, k: int) -> None:
    ids = prompt_ids(tiny)
    run = contrastive_search(tiny, ids, penalty_alpha=alpha, top_k=k, max_new_tokens=16)
    want = reference(tiny, ids, alpha, k, 16)
    assert list(run.token_ids) == want, f"alpha={alpha}, k={k}: the engine wrote {run.token_ids}, the reference {want}"


def test_cached_engine_agrees_with_the_reference_under_the_penalties(tiny: object) -> None:
    ids = prompt_ids(tiny)
    settings = DecodingSettings(repetition_penalty=1.3, no_repeat_ngram_size=2, bad_words=("the", "dark"))
    run = contrastive_search(tiny, ids, penalty_alpha=0.5, top_k=5, max_new_tokens=16, settings=settings,
                             min_new_tokens=8)
    want = reference(tiny, ids, 0.5, 5, 16, settings, min_new=8)
    assert list(run.token_ids) == want, f"the engine wrote {run.token_ids}, the reference {want}"
    banned = {i for word in settings.bad_words_ids(tiny.tokenizer) if len(word) == 1 for i in word}
    assert not banned & set(run.token_ids), f"a bad word was written: {banned & set(run.token_ids)}"


@pytest.mark.slow
def test_cached_engine_agrees_with_the_reference_on_the_embedded_model(embedded: object) -> None:
    ids = prompt_ids(embedded)
    run = contrastive_search(embedded, ids, penalty_alpha=0.6, top_k=4, max_new_tokens=12)
    want = reference(embedded, ids, 0.6, 4, 12)
    assert any(step.overruled for step in run.steps), "on a real model the penalty should overrule at least once"
    assert list(run.token_ids) == want, f"the engine wrote {run.token_ids}, the reference {want}"


def test_each_candidates_score_is_the_formula(tiny_gpt2: object) -> None:
    alpha = 0.7
    for step in contrastive_steps(tiny_gpt2, prompt_ids(tiny_gpt2), penalty_alpha=alpha, top_k=5, max_new_tokens=8):
        probs = [c.prob for c in step.candidates]
        assert probs == sorted(probs, reverse=True), f"the candidates are not likeliest first: {probs}"
        for c in step.candidates:
            assert c.score == pytest.approx((1 - alpha) * c.prob - alpha * c.penalty, abs=1e-6), c
            assert -1.0 - 1e-5 <= c.penalty <= 1.0 + 1e-5, f"a cosine similarity outside [-1, 1]: {c}"
        chosen = next(c for c in step.candidates if c.id == step.id)
        assert chosen.score == max(c.score for c in step.candidates), f"step {step.id} did not take the best score"
        assert step.token.final_prob == pytest.approx(chosen.prob, rel=1e-5), "the token's numbers differ"


# --- the engine batches the candidates on the KV cache ------------------------------------------------------------


def test_the_k_candidates_run_as_one_batch_on_the_cache(tiny: object) -> None:
    shapes: list[tuple[int, ...]] = []

    def seen(module: object, args: tuple, kwargs: dict) -> None:
        shapes.append(tuple((args[0] if args else kwargs["input_ids"]).shape))

    ids = prompt_ids(tiny)
    handle = tiny.model.register_forward_pre_hook(seen, with_kwargs=True)
    try:
        run = contrastive_search(tiny, ids, penalty_alpha=0.6, top_k=4, max_new_tokens=6)
    finally:
        handle.remove()
    assert len(run.steps) == 6, f"wrote {len(run.steps)} tokens"
    assert shapes == [(1, len(ids))] + [(4, 1)] * 6, (
        f"forward passes {shapes}: want the prompt once, then per token one batch of 4 candidates, 1 token each")


# --- the penalty overrules the likeliest token --------------------------------------------------------------------


def test_the_penalty_overrules_the_likeliest_token(tiny_llama: object) -> None:
    """A repeated text with a strong penalty: the likeliest token looks like the text before, and loses."""
    ids = prompt_ids(tiny_llama, "Studying AI is fun, and studying AI is fun, and studying AI is")
    run = contrastive_search(tiny_llama, ids, penalty_alpha=0.9, top_k=6, max_new_tokens=10)
    overruled = [step for step in run.steps if step.overruled]
    assert overruled, "the penalty never overruled the likeliest token"
    for step in overruled:
        likeliest, chosen = step.candidates[0], next(c for c in step.candidates if c.id == step.id)
        assert chosen.prob < likeliest.prob and chosen.penalty < likeliest.penalty, (
            f"an overruled step should pick a less likely, less repetitive token: {step}")
        assert step.token.rank > 1 and step.token.overruled, f"the token's own numbers disagree: {step.token}"


# --- where it stops --------------------------------------------------------------------------------------------


def test_a_set_stop_flag_stops_within_one_step(tiny_gpt2: object) -> None:
    stop = threading.Event()
    steps = contrastive_steps(tiny_gpt2, prompt_ids(tiny_gpt2), penalty_alpha=0.6, top_k=4, max_new_tokens=50,
                              stop=stop)
    first = next(steps)
    stop.set()
    rest = list(steps)
    assert first.id >= 0 and rest == [], f"{len(rest)} more tokens after the stop flag was set"
    calls = iter([False, False, True])
    run = contrastive_search(tiny_gpt2, prompt_ids(tiny_gpt2), penalty_alpha=0.6, top_k=4, max_new_tokens=50,
                             stop=lambda: next(calls))
    assert (len(run.steps), run.finish) == (2, "stopped"), f"a callable stop gave {len(run.steps)} steps, {run.finish}"


def test_the_end_token_ends_it_and_min_new_tokens_holds_it_back(tiny_gpt2: object,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ids = prompt_ids(tiny_gpt2)
    free = contrastive_search(tiny_gpt2, ids, penalty_alpha=0.6, top_k=4, max_new_tokens=12)
    end = free.token_ids[2]
    monkeypatch.setattr(tiny_gpt2.model.generation_config, "eos_token_id", end)
    run = contrastive_search(tiny_gpt2, ids, penalty_alpha=0.6, top_k=4, max_new_tokens=12)
    assert run.finish == "eos" and run.token_ids == free.token_ids[:3], (
        f"with {end} as the end token the run should stop after it: {run.token_ids}, {run.finish}")
    held = contrastive_search(tiny_gpt2, ids, penalty_alpha=0.6, top_k=4, max_new_tokens=12, min_new_tokens=6)
    assert end not in held.token_ids[:5], f"min_new_tokens=6 let the end token through early: {held.token_ids}"
    assert held.steps[2].candidates[0].id != end or held.steps[2].candidates[0].prob == 0, "the ban did not act"


def test_the_context_window_ends_it(tiny_gpt2: object) -> None:
    ids = prompt_ids(tiny_gpt2)
    short = replace(tiny_gpt2, context_length=len(ids) + 3)
    run = contrastive_search(short, ids, penalty_alpha=0.6, top_k=4, max_new_tokens=20)
    assert (len(run.steps), run.finish) == (3, "context"), f"{len(run.steps)} tokens, finish {run.finish}"
    assert contrastive_search(tiny_gpt2, ids, penalty_alpha=0.6, top_k=4, max_new_tokens=5).finish == "length"


# --- bad arguments ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("knobs", "message"), [
    ({"penalty_alpha": 1.5, "top_k": 4}, "`penalty_alpha` has to be a float >= 0 and <= 1, but is 1.5"),
    ({"penalty_alpha": -0.1, "top_k": 4}, "`penalty_alpha` has to be a float >= 0 and <= 1, but is -0.1"),
    ({"penalty_alpha": 0.6}, "`top_k` has to be an integer from 2 to 1000 when `penalty_alpha` > 0 "
                             "(contrastive search chooses among the top_k likeliest tokens), but is 0"),
    ({"penalty_alpha": 0.6, "top_k": 1}, "`top_k` has to be an integer from 2 to 1000 when `penalty_alpha` > 0"),
    ({"penalty_alpha": 0.6, "top_k": 4, "num_beams": 3}, "`num_beams` has to be 1 when `penalty_alpha` > 0"),
    ({"penalty_alpha": 0.6, "top_k": 4, "do_sample": True}, "`do_sample` has to be false when `penalty_alpha` > 0"),
])
def test_bad_knobs_are_refused_by_name(tiny_gpt2: object, knobs: dict, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        GenerationRequest.from_dict(knobs)
    assert str(refused.value).startswith(message), f"the request says {refused.value!r}, want {message!r}"
    if "num_beams" in knobs or "do_sample" in knobs:
        return
    with pytest.raises(ValueError) as refused:
        list(contrastive_steps(tiny_gpt2, [1, 2], penalty_alpha=knobs["penalty_alpha"], top_k=knobs.get("top_k", 0),
                               max_new_tokens=4))
    assert str(refused.value).startswith(message), f"the engine says {refused.value!r}, want {message!r}"


# --- the run: stream(), /generate's shape, copy as code ------------------------------------------------------------


def test_a_run_streams_the_engines_tokens_with_their_numbers_and_candidates(tiny: object) -> None:
    request = GenerationRequest.from_dict({"penalty_alpha": 0.6, "top_k": 4, "max_new_tokens": 12,
                                           "repetition_penalty": 1.2})
    updates = list(stream(tiny, PROMPT, request))
    assert updates[0].status == "running" and len(updates[0].sequences[0].tokens) == 1, "the first token came late"
    result = updates[-1].result
    sequence = result.sequences[0]
    run = contrastive_search(tiny, list(result.prompt_ids), penalty_alpha=0.6, top_k=4, max_new_tokens=12,
                             settings=request.decoding)
    assert sequence.token_ids == run.token_ids and sequence.finish == "length", (sequence.token_ids, run.token_ids)
    data = result.to_dict()
    assert data["mode"] == "contrastive_search" and data["generate_kwargs"]["penalty_alpha"] == 0.6, data["mode"]
    # each token's model probability is the softmax of the raw logits at its place, recomputed from scratch
    full = torch.tensor([list(result.prompt_ids) + list(sequence.token_ids)])
    with torch.no_grad():
        logp = torch.log_softmax(tiny.model(full).logits[0].float(), dim=-1)
    for index, token in enumerate(data["sequences"][0]["tokens"]):
        place = len(result.prompt_ids) + index
        assert token["prob"] == pytest.approx(logp[place - 1, full[0, place]].exp().item(), abs=1e-5), index
        assert len(token["candidates"]) == 4 and {"id", "text", "prob", "penalty", "score"} <= set(
            token["candidates"][0]), f"token {index} lacks its candidates: {token}"
        assert token["overruled"] == (token["candidates"][0]["id"] != token["id"]), token


def test_stop_ends_a_streamed_run(tiny_gpt2: object) -> None:
    stop = threading.Event()
    request = GenerationRequest.from_dict({"penalty_alpha": 0.6, "top_k": 4, "max_new_tokens": 60})
    updates = stream(tiny_gpt2, PROMPT, request, stop=stop)
    first = next(updates)
    stop.set()
    result = [update for update in updates][-1].result
    assert result.stopped and result.sequences[0].finish == "stopped", result.sequences[0].finish
    assert len(result.sequences[0].tokens) <= len(first.sequences[0].tokens) + 1, "it went on after Stop"


def test_copied_code_reproduces_a_contrastive_run(tiny: object) -> None:
    request = GenerationRequest.from_dict({"penalty_alpha": 0.6, "top_k": 4, "max_new_tokens": 12,
                                           "no_repeat_ngram_size": 2, "min_new_tokens": 3, "stop_strings": ["zzz"]})
    result = generate(tiny, PROMPT, request)
    code = python_code(result)
    ast.parse(code)
    assert "trust_remote_code" not in code.replace("needs `trust_remote_code`", ""), "the script needs hub code"
    namespace: dict = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<copied code>", "exec"), namespace)  # noqa: S102 - executing the code is the test
    assert namespace["generated"] == list(result.sequences[0].token_ids), (
        f"the script wrote {namespace['generated']}, the run {result.sequences[0].token_ids}")
    assert repr(result.sequences[0].text) in printed.getvalue(), "the script does not print the text"


@pytest.mark.slow
def test_penalty_alpha_zero_is_greedy_on_the_embedded_model(embedded: object) -> None:
    ids = prompt_ids(embedded)
    run = contrastive_search(embedded, ids, penalty_alpha=0.0, top_k=4, max_new_tokens=16, min_new_tokens=16)
    want = greedy_ids(embedded, ids, 16, min_new=16)
    assert list(run.token_ids) == want, f"penalty_alpha=0 wrote {run.token_ids}, greedy generate() wrote {want}"


def test_the_generate_endpoint_runs_it_and_refuses_bad_knobs_by_name(client: object) -> None:
    from gradio_client.exceptions import AppError

    run = client.predict(prompt=PROMPT, max_new_tokens=5, penalty_alpha=0.6, top_k=4, api_name="/generate")
    assert run["status"] == "done" and run["mode"] == "contrastive_search", (run["status"], run["mode"])
    tokens = run["sequences"][0]["tokens"]
    assert len(tokens) == 5 and all(len(token["candidates"]) == 4 for token in tokens), tokens
    assert {"prob", "penalty", "score"} <= set(tokens[0]["candidates"][0]), tokens[0]["candidates"][0]
    assert "generated = []" in run["code"], "the copied code is not the contrastive loop"
    for knobs, message in [({"penalty_alpha": 1.5, "top_k": 4}, "`penalty_alpha` has to be a float >= 0 and <= 1"),
                           ({"penalty_alpha": -0.1, "top_k": 4}, "`penalty_alpha` has to be a float >= 0 and <= 1"),
                           ({"penalty_alpha": 0.6}, "`top_k` has to be an integer from 2 to 1000 when"),
                           ({"penalty_alpha": 0.6, "top_k": 1}, "`top_k` has to be an integer from 2 to 1000 when")]:
        with pytest.raises(AppError) as caught:
            client.predict(prompt=PROMPT, max_new_tokens=5, api_name="/generate", **knobs)
        assert message in str(caught.value), f"{knobs}: {caught.value!s} does not say {message!r}"
    assert client.predict(text="still serving", api_name="/tokenize")["count"] > 0, "the app stopped serving"
