"""The generate() playground core: parity with plain generate(), true probabilities, stopping, seeds, validation."""

from __future__ import annotations

import json
import math
import threading
import time

import pytest
import torch

from stepgen.effective import effective_config
from stepgen.generation import generate, stream
from stepgen.presets import PRESETS, preset
from stepgen.readout import make_sequence, token_rows
from stepgen.request import GenerationRequest
from stepgen.results import TokenInfo

PROMPT = "It was a dark and stormy night; the rain"

PARITY = {
    "greedy": {"max_new_tokens": 24},
    "greedy-penalties": {"max_new_tokens": 24, "repetition_penalty": 1.4, "no_repeat_ngram_size": 2,
                         "bad_words": ["the"], "min_new_tokens": 5},
    "beam": {"max_new_tokens": 16, "num_beams": 4, "num_return_sequences": 3, "repetition_penalty": 1.3,
             "no_repeat_ngram_size": 2, "length_penalty": 0.6, "early_stopping": True},
    "sample": {"max_new_tokens": 24, "do_sample": True, "seed": 1234, "temperature": 0.8, "top_k": 30,
               "top_p": 0.9, "num_return_sequences": 3},
    "sample-cutoffs": {"max_new_tokens": 24, "do_sample": True, "seed": 7, "min_p": 0.01, "typical_p": 0.95,
                       "epsilon_cutoff": 1e-4, "eta_cutoff": 1e-4, "repetition_penalty": 1.2},
    "beam-sample": {"max_new_tokens": 12, "do_sample": True, "seed": 99, "num_beams": 3, "temperature": 1.5},
}


def plain_generate(loaded: object, prompt: str, request: GenerationRequest, **extra: object) -> object:
    """A plain model.generate() call with the same arguments (and torch.manual_seed when sampling); ``extra``
    goes to generate() too."""
    tokenizer = loaded.tokenizer
    ids = torch.tensor([tokenizer(prompt)["input_ids"]])
    kwargs = request.generate_kwargs(tokenizer)
    if loaded.model.generation_config.pad_token_id is None:
        kwargs["pad_token_id"] = tokenizer.eos_token_id
    if request.stop_strings:
        kwargs["tokenizer"] = tokenizer
    if request.do_sample:
        torch.manual_seed(request.seed)
    return loaded.model.generate(
        ids, attention_mask=torch.ones_like(ids), return_dict_in_generate=True, output_scores=True,
        output_logits=True, **kwargs, **extra,
    )


def assert_same_ids(loaded: object, result: object, out: object) -> None:
    prompt_len = len(result.prompt_ids)
    rows = out.sequences[:, prompt_len:]
    assert len(result.sequences) == rows.shape[0], f"{len(result.sequences)} sequences, generate() gave {rows.shape[0]}"
    pad = loaded.model.generation_config.pad_token_id
    pad = loaded.tokenizer.eos_token_id if pad is None else pad
    for index, (sequence, row) in enumerate(zip(result.sequences, rows.tolist())):
        n = len(sequence.token_ids)
        assert list(sequence.token_ids) == row[:n], f"sequence {index}: {sequence.token_ids} vs generate() {row}"
        assert all(token == pad for token in row[n:]), f"sequence {index} was cut at {n} but generate() went on: {row}"


@pytest.mark.parametrize("name", list(PARITY))
def test_token_ids_equal_plain_generate(tiny: object, name: str) -> None:
    request = GenerationRequest.from_dict(PARITY[name])
    result = generate(tiny, PROMPT, request)
    assert result.request.mode == request.mode
    assert_same_ids(tiny, result, plain_generate(tiny, PROMPT, request))


@pytest.mark.parametrize("name", ["greedy-penalties", "beam", "sample"])
def test_probabilities_equal_compute_transition_scores(tiny: object, name: str) -> None:
    request = GenerationRequest.from_dict(PARITY[name])
    result = generate(tiny, PROMPT, request)
    out = plain_generate(tiny, PROMPT, request)
    beams = out.get("beam_indices")
    model_lp = tiny.model.compute_transition_scores(out.sequences, out.logits, beams, normalize_logits=True)
    final_lp = tiny.model.compute_transition_scores(out.sequences, out.scores, beams, normalize_logits=True)
    for r, sequence in enumerate(result.sequences):
        for t, token in enumerate(sequence.tokens):
            assert abs(token.prob - math.exp(model_lp[r, t])) < 1e-5, f"prob of token {t} in sequence {r}"
            assert abs(token.final_prob - math.exp(final_lp[r, t])) < 1e-5, f"final prob of token {t} in sequence {r}"
            assert abs(token.logprob - float(model_lp[r, t])) < 1e-4, f"log-prob of token {t} in sequence {r}"
        assert abs(sequence.logprob - float(model_lp[r, : len(sequence.tokens)].sum())) < 1e-4, "sequence logprob"
        expected_ppl = math.exp(-float(model_lp[r, : len(sequence.tokens)].mean()))
        assert abs(sequence.perplexity - expected_ppl) < 1e-3 * expected_ppl, (sequence.perplexity, expected_ppl)


def test_entropy_and_rank_come_from_the_models_logits(tiny: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 10, "do_sample": True, "seed": 3, "top_k": 20})
    result = generate(tiny, PROMPT, request)
    out = plain_generate(tiny, PROMPT, request)
    for t, token in enumerate(result.sequences[0].tokens):
        logits = out.logits[t][0]
        probs = torch.softmax(logits, dim=-1)
        entropy = float(-(probs * probs.log()).sum()) / math.log(2)
        assert abs(token.entropy - entropy) < 1e-4, f"step {t}: entropy {token.entropy} vs {entropy}"
        rank = int((logits > logits[token.id]).sum()) + 1
        assert token.rank == rank, f"step {t}: rank {token.rank} vs {rank}"
        final = torch.softmax(out.scores[t][0], dim=-1)
        survivors = int((final > 0).sum())
        assert survivors <= 20, f"top_k=20 left {survivors} tokens"
        assert token.final_entropy <= math.log2(survivors) + 1e-4, (token.final_entropy, survivors)


def test_beam_entropy_and_rank_follow_the_beam_indices(tiny: object) -> None:
    request = GenerationRequest.from_dict(PARITY["beam"])
    result = generate(tiny, PROMPT, request)
    out = plain_generate(tiny, PROMPT, request)
    for r, sequence in enumerate(result.sequences):
        for t, token in enumerate(sequence.tokens):
            logits = out.logits[t][int(out.beam_indices[r, t])]
            probs = torch.softmax(logits, dim=-1)
            entropy = float(-(probs * probs.log()).sum()) / math.log(2)
            assert abs(token.entropy - entropy) < 1e-4, f"sequence {r} step {t}: entropy {token.entropy} vs {entropy}"
            assert token.rank == int((logits > logits[token.id]).sum()) + 1, f"sequence {r} step {t}: rank"


def test_streamed_numbers_equal_the_final_ones(tiny: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 30, "do_sample": True, "seed": 11, "temperature": 0.7,
                                           "num_return_sequences": 2})
    updates = list(stream(tiny, PROMPT, request))
    running = [u for u in updates if u.status == "running"]
    assert running, "no update arrived before the end"
    assert updates[-1].status == "done" and updates[-1].result is not None
    lengths = [sum(len(s.tokens) for s in u.sequences) for u in running]
    assert lengths == sorted(lengths), f"the streamed sequences shrank: {lengths}"
    for streamed, final in zip(running[-1].sequences, updates[-1].result.sequences):
        assert streamed.token_ids == final.token_ids[: len(streamed.token_ids)], "streamed ids differ from the result"
        for a, b in zip(streamed.tokens, final.tokens):
            assert abs(a.prob - b.prob) < 1e-5 and abs(a.final_prob - b.final_prob) < 1e-5, (a, b)
            assert a.rank == b.rank and abs(a.entropy - b.entropy) < 1e-4, (a, b)


def test_a_slow_reader_gets_fewer_larger_updates(tiny_gpt2: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 60, "min_new_tokens": 60})
    updates = []
    for update in stream(tiny_gpt2, PROMPT, request):
        updates.append(update)
        time.sleep(0.2)  # a reader busy elsewhere: the tokens written meanwhile come in one update, not a backlog
    running = [len(u.sequences[0].tokens) for u in updates if u.status == "running"]
    assert running and running[0] >= 1, running
    # a tiny model writes a token in milliseconds: one update per token would mean the stream kept a backlog
    assert len(running) <= 20, f"{len(running)} updates for 60 tokens: the stream did not coalesce them ({running})"
    assert len(updates[-1].result.sequences[0].tokens) == 60, "the result lost tokens"


def test_a_token_too_unlikely_for_a_float_keeps_a_finite_log_probability(tiny_gpt2: object) -> None:
    logits = torch.tensor([[0.0, -200.0, -1.0]])
    prob, final_prob, rank, _, _, logprob = token_rows(logits, logits, torch.tensor([1]))[0]
    assert prob == 0.0 and rank == 3, "exp(-200) is below the smallest float32: the probability shows as 0"
    assert abs(logprob - float(torch.log_softmax(logits, dim=-1)[0, 1])) < 1e-4, logprob
    token = TokenInfo(5, "x", prob, final_prob, rank, 0.0, 0.0, logprob)
    sequence = make_sequence(tiny_gpt2.tokenizer, [token, token], "length")
    assert math.isfinite(sequence.logprob) and abs(sequence.logprob - 2 * logprob) < 1e-6, sequence.logprob
    assert math.isfinite(sequence.perplexity), "the perplexity of such a text is huge, not infinite"
    json.dumps(sequence.to_dict(), allow_nan=False)  # JSON has no Infinity: a client must be able to read it


def test_beam_search_yields_its_steps_then_the_result(tiny: object) -> None:
    request = GenerationRequest.from_dict(PARITY["beam"])
    updates = list(stream(tiny, PROMPT, request))
    assert [u.status for u in updates][-1:] == ["done"] and {u.status for u in updates} <= {"running", "done"}, (
        [u.status for u in updates])
    running = [u for u in updates if u.status == "running"]
    assert running, "beam search reported no step while it ran"
    assert all(not u.sequences for u in running), "beam search showed text before its end"
    counts = [u.steps for u in running]
    assert counts == sorted(set(counts)) and 1 <= counts[0] and counts[-1] <= request.max_new_tokens, counts
    assert any("cannot stream" in w for w in updates[-1].result.effective.warnings)


def test_stop_event_ends_the_work_after_one_step(tiny: object) -> None:
    stop = threading.Event()
    stop.set()
    request = GenerationRequest.from_dict({"max_new_tokens": 60, "min_new_tokens": 60})
    result = generate(tiny, PROMPT, request, stop=stop)
    assert result.stopped, "the result does not say it was stopped"
    assert [len(s.token_ids) for s in result.sequences] == [1], [s.token_ids for s in result.sequences]
    assert result.sequences[0].finish == "stopped"


def test_stop_event_stops_beam_search_too(tiny: object) -> None:
    stop = threading.Event()
    stop.set()
    request = GenerationRequest.from_dict({"max_new_tokens": 60, "min_new_tokens": 60, "num_beams": 3})
    result = generate(tiny, PROMPT, request, stop=stop)
    assert result.stopped and len(result.sequences[0].token_ids) < 60, result.sequences[0].token_ids


def test_closing_the_stream_stops_the_worker(tiny: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 100, "min_new_tokens": 100})
    updates = stream(tiny, PROMPT, request)
    next(updates)
    updates.close()
    workers = [t for t in threading.enumerate() if t.name == "stepgen-generate"]
    assert not workers, f"generate() threads still running after the stream was closed: {workers}"


def test_same_seed_same_text_while_others_sample(tiny: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 30, "do_sample": True, "seed": 42, "temperature": 1.3})
    alone = generate(tiny, PROMPT, request).sequences[0].token_ids
    results: dict[str, tuple[int, ...]] = {}
    errors: list[BaseException] = []

    def run(key: str, seed: int) -> None:
        try:
            req = GenerationRequest.from_dict({"max_new_tokens": 30, "do_sample": True, "seed": seed,
                                               "temperature": 1.3})
            results[key] = generate(tiny, PROMPT, req).sequences[0].token_ids
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(f"{i}", 42 if i % 2 == 0 else 1000 + i)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for i in range(0, 6, 2):
        assert results[str(i)] == alone, f"seed 42 gave different text in concurrent run {i}"
    assert len({results[str(i)] for i in range(1, 6, 2)}) > 1, "different seeds all gave the same text"


def test_a_missing_seed_is_picked_and_reported(tiny: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 15, "do_sample": True})
    first = generate(tiny, PROMPT, request)
    assert first.request.seed is not None, "no seed was reported for a sampling run"
    again = generate(tiny, PROMPT, GenerationRequest.from_dict({**request.to_dict(), "seed": first.request.seed}))
    assert again.sequences[0].token_ids == first.sequences[0].token_ids, "the reported seed does not repeat the run"


def test_stop_strings_end_each_sequence(tiny_gpt2: object) -> None:
    greedy = generate(tiny_gpt2, PROMPT, GenerationRequest(max_new_tokens=12)).sequences[0]
    stop_at = greedy.tokens[3].text.strip() or greedy.tokens[3].text
    request = GenerationRequest(max_new_tokens=12, stop_strings=(stop_at,))
    result = generate(tiny_gpt2, PROMPT, request)
    sequence = result.sequences[0]
    assert sequence.finish == "stop_string", (sequence.finish, stop_at, sequence.text)
    assert len(sequence.token_ids) <= 4 and sequence.text.endswith(stop_at), (sequence.text, stop_at)
    assert_same_ids(tiny_gpt2, result, plain_generate(tiny_gpt2, PROMPT, request))


def test_stop_strings_with_several_sampled_sequences(tiny_gpt2: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 40, "do_sample": True, "seed": 5, "temperature": 1.0,
                                           "num_return_sequences": 4, "stop_strings": ["e"]})
    result = generate(tiny_gpt2, PROMPT, request)
    out = plain_generate(tiny_gpt2, PROMPT, request)
    assert_same_ids(tiny_gpt2, result, out)
    # rows that stopped early keep the numbers of their own steps, not those of the rows still going
    model_lp = tiny_gpt2.model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
    for r, sequence in enumerate(result.sequences):
        got = [token.prob for token in sequence.tokens]
        want = [math.exp(float(lp)) for lp in model_lp[r, : len(got)]]
        assert all(abs(a - b) < 1e-5 for a, b in zip(got, want)), f"sequence {r}: {got} vs {want}"
    finishes = [s.finish for s in result.sequences]
    assert "stop_string" in finishes, finishes
    assert len({len(s.token_ids) for s in result.sequences}) > 1, "all sequences stopped at the same length"
    for sequence in result.sequences:
        if sequence.finish == "stop_string":
            assert "e" in sequence.text and "e" not in tiny_gpt2.tokenizer.decode(list(sequence.token_ids[:-1])), sequence


@pytest.mark.parametrize(
    "knobs, message",
    [
        ({"num_beams": 2, "num_return_sequences": 3}, "`num_return_sequences` has to be <= `num_beams` (2)"),
        ({"do_sample": True, "temperature": 0}, "`temperature` has to be a strictly positive float when `do_sample=True`"),
        ({"num_return_sequences": 2}, "Greedy decoding returns one sequence"),
        ({"max_new_tokens": 5, "min_new_tokens": 6}, "`min_new_tokens` has to be an integer from 0 to `max_new_tokens` (5)"),
        ({"max_new_tokens": 0}, "`max_new_tokens` has to be an integer from 1 to"),
        ({"top_p": 1.5}, "`top_p` has to be a float > 0 and <= 1, but is 1.5"),
        ({"seed": -1}, "`seed` has to be an integer from 0"),
        ({"early_stopping": "soon"}, "`early_stopping` has to be true, false or 'never'"),
        ({"beams": 3}, "Unknown generate() knob(s): beams"),
    ],
)
def test_invalid_combinations_are_refused_before_any_work(knobs: dict, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        GenerationRequest.from_dict(knobs)
    assert message in str(caught.value), f"{caught.value!s} does not say {message!r}"


def test_prompt_and_context_are_checked(tiny_gpt2: object) -> None:
    with pytest.raises(ValueError, match="type a prompt"):
        generate(tiny_gpt2, "", GenerationRequest())
    with pytest.raises(ValueError, match="`max_new_tokens` has to be at most"):
        generate(tiny_gpt2, PROMPT, GenerationRequest(max_new_tokens=tiny_gpt2.context_length))
    too_long = "rain " * tiny_gpt2.context_length  # at least one token per word: fills the whole window
    with pytest.raises(ValueError, match="The prompt is [0-9]+ tokens long, but .* reads at most") as caught:
        generate(tiny_gpt2, too_long, GenerationRequest(max_new_tokens=1))
    assert "`max_new_tokens`" not in str(caught.value), f"a too long prompt blamed max_new_tokens: {caught.value}"


def test_effective_config_names_what_does_nothing(tiny_gpt2: object) -> None:
    request = GenerationRequest.from_dict({"temperature": 0.7, "top_k": 5, "length_penalty": 2.0})
    effective = effective_config(tiny_gpt2, request)
    joined = " ".join(effective.warnings)
    for knob in ("`temperature` = 0.7 does nothing", "`top_k` = 5 does nothing", "`length_penalty` = 2.0 does nothing"):
        assert knob in joined, f"no warning {knob!r} in {effective.warnings}"
    values = {name: value for name, value, _, _ in effective.rows}
    assert values["do_sample"] is False and values["temperature"] == 1.0, values


def test_effective_config_reports_the_models_defaults(tiny_gpt2: object) -> None:
    config = tiny_gpt2.model.generation_config
    saved = (config.do_sample, config.temperature, config.top_k)
    config.do_sample, config.temperature, config.top_k = True, 0.6, 20
    try:
        effective = effective_config(tiny_gpt2, GenerationRequest())
        rows = {name: (value, default) for name, value, default, _ in effective.rows}
        assert rows["temperature"] == (1.0, 0.6) and rows["do_sample"] == (False, True), rows
        assert any("`temperature`=0.6" in w and "take precedence" in w for w in effective.warnings), effective.warnings
        # and the run really ignores the model's sampling defaults: greedy equals argmax decoding
        result = generate(tiny_gpt2, PROMPT, GenerationRequest(max_new_tokens=8))
        assert all(t.rank == 1 for t in result.sequences[0].tokens), [t.rank for t in result.sequences[0].tokens]
    finally:
        config.do_sample, config.temperature, config.top_k = saved


def test_presets_are_valid_and_reset_other_knobs() -> None:
    for name in PRESETS:
        request = preset(name, max_new_tokens=20, seed=1)
        assert request.max_new_tokens == 20 and request.seed == 1
    assert preset("beam search").num_beams > 1 and preset("greedy").mode == "greedy_search"
    assert preset("creative sampling").decoding.temperature > preset("precise sampling").decoding.temperature
    assert preset("greedy").decoding.repetition_penalty == 1.0, "a preset kept a knob it does not name"


def test_result_is_plain_json(tiny_gpt2: object) -> None:
    import json

    data = generate(tiny_gpt2, PROMPT, GenerationRequest(max_new_tokens=5)).to_dict()
    text = json.dumps(data)
    assert {"text", "token_ids", "tokens", "logprob"} <= set(data["sequences"][0]), data["sequences"][0].keys()
    assert {"id", "text", "prob", "final_prob"} <= set(data["sequences"][0]["tokens"][0])
    assert json.loads(text)["sequences"][0]["token_ids"] == data["sequences"][0]["token_ids"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["greedy-penalties", "beam", "sample"])
def test_embedded_token_ids_and_probabilities_equal_plain_generate(embedded: object, name: str) -> None:
    """Ids equal plain generate(); each probability is the softmax of the step's row, as generate() samples it.

    Streamed runs take a token's probability from the softmax of its own row of logits (what generate() itself
    computes to sample). compute_transition_scores normalises along a strided dimension instead, and on a
    49,152-token vocabulary its float32 sums drift by about 1e-4; so the row softmax is the reference here, and
    a float64 softmax checks that the streamed numbers are at least as close to exact as compute_transition_scores.
    """
    knobs = dict(PARITY[name], max_new_tokens=12)
    request = GenerationRequest.from_dict(knobs)
    result = generate(embedded, "The capital of France is", request)
    out = plain_generate(embedded, "The capital of France is", request)
    assert_same_ids(embedded, result, out)
    beams = out.get("beam_indices")
    model_lp = embedded.model.compute_transition_scores(out.sequences, out.logits, beams, normalize_logits=True)
    final_lp = embedded.model.compute_transition_scores(out.sequences, out.scores, beams, normalize_logits=True)
    for r, sequence in enumerate(result.sequences):
        for t, token in enumerate(sequence.tokens):
            if beams is not None:  # beam search: the numbers are compute_transition_scores' own
                assert abs(token.prob - math.exp(model_lp[r, t])) < 1e-5, f"prob of token {t} in beam {r}"
                assert abs(token.final_prob - math.exp(final_lp[r, t])) < 1e-5, f"final prob of {t} in beam {r}"
                continue
            logits, scores = out.logits[t][r], out.scores[t][r]
            row = float(torch.softmax(logits, dim=-1)[token.id])
            final_row = float(torch.softmax(scores, dim=-1)[token.id])
            # two runs agree to ~1e-6 (float32 sums split by the threads free), not bit for bit
            assert abs(token.prob - row) < 1e-5, f"sequence {r} token {t}: prob {token.prob} vs softmax {row}"
            assert abs(token.final_prob - final_row) < 1e-5, f"sequence {r} token {t}: final prob vs softmax"
            exact = float(torch.softmax(logits.double(), dim=-1)[token.id])
            cts = math.exp(float(model_lp[r, t]))
            assert abs(token.prob - exact) <= abs(cts - exact) + 1e-5, (token.prob, cts, exact)


@pytest.mark.slow
def test_embedded_greedy_knows_paris(embedded: object) -> None:
    result = generate(embedded, "The capital of France is", GenerationRequest(max_new_tokens=5))
    assert "paris" in result.sequences[0].text.lower(), result.sequences[0].text
    assert result.sequences[0].tokens[0].rank == 1
