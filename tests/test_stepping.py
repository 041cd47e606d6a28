"""Stepping by hand equals generate(): greedy ids, seeded sampling ids, recorded probabilities; sessions are plain data."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from types import SimpleNamespace

import pytest
import torch

from stepgen import stepping
from stepgen.distribution import next_token
from stepgen.kvcache import KVStore, Lookup
from stepgen.settings import DecodingSettings

PROMPT = "It was a dark and stormy night; the rain"

SAMPLING = [
    DecodingSettings(),
    DecodingSettings(temperature=0.7, top_k=20),
    DecodingSettings(temperature=1.3, top_p=0.8, repetition_penalty=1.3),
    DecodingSettings(min_p=0.05, no_repeat_ngram_size=2),
]


def _generate(loaded: object, ids: list[int], settings: DecodingSettings, new_tokens: int) -> list[int]:
    input_ids = torch.tensor([ids])
    out = loaded.model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens,
        pad_token_id=loaded.tokenizer.eos_token_id, **settings.generate_kwargs(loaded.tokenizer),
    )
    return out[0].tolist()


def _step_n(loaded: object, ids: list[int], settings: DecodingSettings, strategy: str, n: int, seed: int = 0,
            store: KVStore | None = None) -> list[int]:
    generator = stepping.new_generator(seed)
    current = tuple(ids)
    for _ in range(n):
        current = stepping.step(loaded, current, settings, strategy, generator=generator, store=store).ids
    return list(current)


@pytest.mark.parametrize("settings", [DecodingSettings(temperature=0), DecodingSettings(temperature=0, repetition_penalty=1.4)],
                         ids=["plain", "penalty"])
def test_greedy_steps_equal_generate(tiny: object, settings: DecodingSettings) -> None:
    ids = tiny.tokenizer(PROMPT)["input_ids"]
    expected = _generate(tiny, ids, settings, 50)
    assert len(expected) - len(ids) >= 10, f"generate() stopped early ({len(expected) - len(ids)} tokens); pick another prompt"
    stepped = _step_n(tiny, ids, settings, "greedy", len(expected) - len(ids), store=KVStore(2**26))
    assert stepped == expected, f"greedy stepping drifted from generate():\n{stepped}\n{expected}"


@pytest.mark.parametrize("seed", [0, 1234])
@pytest.mark.parametrize("settings", SAMPLING, ids=["raw", "temp-topk", "topp-penalty", "minp-ngram"])
def test_seeded_sample_steps_equal_seeded_generate(tiny: object, settings: DecodingSettings, seed: int) -> None:
    ids = tiny.tokenizer(PROMPT)["input_ids"]
    torch.manual_seed(seed)
    expected = _generate(tiny, ids, settings, 30)
    assert len(expected) - len(ids) >= 5, f"generate() stopped after {len(expected) - len(ids)} tokens"
    torch.manual_seed(seed + 1)  # the global RNG's state must not matter to stepping
    stepped = _step_n(tiny, ids, settings, "sample", len(expected) - len(ids), seed=seed, store=KVStore(2**26))
    assert stepped == expected, f"seeded sampling drifted from generate() with seed {seed}:\n{stepped}\n{expected}"


def test_sampling_never_touches_the_global_rng(tiny_gpt2: object) -> None:
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    before = torch.get_rng_state()
    _step_n(tiny_gpt2, ids, DecodingSettings(), "sample", 5, seed=3)
    _step_n(tiny_gpt2, ids, DecodingSettings(), "uniform", 5, seed=3)
    assert torch.equal(before, torch.get_rng_state()), "stepping advanced the global random generator"


def test_uniform_draws_ignore_the_model_and_repeat_with_the_seed(tiny_gpt2: object) -> None:
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    drawn = _step_n(tiny_gpt2, ids, DecodingSettings(top_k=1), "uniform", 8, seed=5)[len(ids):]
    generator = torch.Generator().manual_seed(5)
    expected = [int(torch.randint(len(tiny_gpt2.tokenizer), (1,), generator=generator)) for _ in range(8)]
    assert drawn == expected, f"uniform draws are not the seeded generator's uniform draws: {drawn} vs {expected}"
    greedy = _step_n(tiny_gpt2, ids, DecodingSettings(top_k=1), "greedy", 8)[len(ids):]
    assert drawn != greedy, "uniform draws followed the model (top_k=1 leaves only its favourite)"


def test_draws_count_every_token_and_repeat_with_the_seed(tiny_gpt2: object) -> None:
    dist = next_token(tiny_gpt2, tiny_gpt2.tokenizer(PROMPT)["input_ids"], DecodingSettings(top_k=5))
    draws = stepping.draw(dist, 2_000, seed=7)
    assert sum(count for _, count in draws.counts) == 2_000, f"every draw counted once: {draws.counts}"
    survivors = {int(i) for i in torch.nonzero(dist.final_probs).flatten()}
    assert {token_id for token_id, _ in draws.counts} <= survivors, (
        f"only tokens top_k=5 keeps can come out: {draws.counts} vs {survivors}")
    counts = [count for _, count in draws.counts]
    assert counts == sorted(counts, reverse=True), f"the most drawn first: {draws.counts}"
    assert stepping.draw(dist, 2_000, seed=7.0) == draws, "the same seed (a whole float as JSON sends it) draws the same"
    assert stepping.draw(dist, 2_000, seed=8).counts != draws.counts, "another seed draws another run"


def test_draw_shares_settle_on_the_final_probabilities(tiny_gpt2: object) -> None:
    settings = DecodingSettings(temperature=0.8, top_p=0.9)
    dist = next_token(tiny_gpt2, tiny_gpt2.tokenizer(PROMPT)["input_ids"], settings)
    draws = stepping.draw(dist, stepping.MAX_DRAWS, seed=0)
    # the standard error of a share is at most 0.5 / sqrt(100000) = 0.0016: 0.01 is six of them
    worst = max(abs(draws.share(c.id) - c.final_prob) for c in dist.candidates)
    assert worst < 0.01, f"shares of {draws.n} draws stray {worst:.4f} from the probabilities"


def test_greedy_draws_are_all_the_greedy_token(tiny_gpt2: object) -> None:
    dist = next_token(tiny_gpt2, tiny_gpt2.tokenizer(PROMPT)["input_ids"], DecodingSettings(temperature=0))
    assert stepping.draw(dist, 50, seed=3).counts == ((dist.greedy_id, 50),), "temperature 0 has nothing to draw"


@pytest.mark.parametrize("n", [0, -1, stepping.MAX_DRAWS + 1, 2.5, "10", True])
def test_a_bad_number_of_draws_is_refused_by_name(tiny_gpt2: object, n: object) -> None:
    dist = next_token(tiny_gpt2, tiny_gpt2.tokenizer(PROMPT)["input_ids"], DecodingSettings())
    with pytest.raises(ValueError, match="`samples` has to be a whole number from 1 to 100000"):
        stepping.draw(dist, n, seed=0)


def test_step_records_the_probabilities_plain_transformers_computes(tiny: object) -> None:
    ids = tuple(tiny.tokenizer(PROMPT)["input_ids"])
    settings = DecodingSettings(temperature=0.8, top_k=5)
    with torch.no_grad():
        logits = tiny.model(torch.tensor([list(ids)])).logits[0, -1]
    raw = torch.softmax(logits, dim=-1)
    with torch.no_grad():
        out = tiny.model.generate(
            torch.tensor([list(ids)]), attention_mask=torch.ones(1, len(ids), dtype=torch.long), max_new_tokens=1,
            output_scores=True, return_dict_in_generate=True, pad_token_id=tiny.tokenizer.eos_token_id,
            **settings.generate_kwargs(tiny.tokenizer),
        )
    final = torch.softmax(out.scores[0][0], dim=-1)
    for strategy, token_id in [("greedy", None), ("token", int(raw.argsort()[-3])), ("token", int(raw.argsort()[0]))]:
        result = stepping.step(tiny, ids, settings, strategy, token_id=token_id, store=KVStore(2**26))
        chosen = result.step
        assert abs(chosen.prob - float(raw[chosen.token_id])) < 1e-5, (chosen, float(raw[chosen.token_id]))
        assert abs(chosen.final_prob - float(final[chosen.token_id])) < 1e-5, (chosen, float(final[chosen.token_id]))
        assert chosen.rank == 1 + int((raw > raw[chosen.token_id]).sum()), chosen
        assert result.ids == ids + (chosen.token_id,), result.ids
        assert [c.id for c in chosen.alternatives[:5]] == raw.argsort(descending=True)[:5].tolist(), chosen.alternatives
        assert result.next.n_input_tokens == len(ids) + 1, (
            f"the next distribution reads {result.next.n_input_tokens} tokens, not the {len(ids) + 1} after the step")
    assert result.step.final_prob == 0.0, "the least likely token is cut by top_k=5 yet was recorded as drawable"


def test_a_step_reuses_the_cache_and_runs_one_token(tiny_llama: object) -> None:
    store = KVStore(2**26)
    ids = tuple(tiny_llama.tokenizer(PROMPT)["input_ids"])
    first = stepping.step(tiny_llama, ids, DecodingSettings(), "greedy", store=store)
    second = stepping.step(tiny_llama, first.ids, DecodingSettings(), "greedy", store=store)
    assert (second.reused, second.computed) == (len(ids) + 1, 1), (second.reused, second.computed)


class _Weights:
    """Stands for a model object: only its identity matters to the remembered distributions."""


class _FixedStore:
    """A store that answers every request with the same logits."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.answer = logits

    def logits(self, loaded: object, ids: list[int]) -> Lookup:
        return Lookup(self.answer.clone(), reused=0, computed=len(ids))


def test_a_model_loaded_at_a_freed_models_address_gets_its_own_distributions(tiny_gpt2: object) -> None:
    """Remembered distributions must not outlive their model: a new one may reuse its id()."""
    vocab = tiny_gpt2.vocab_size
    ids = (5, 6, 7)

    def fake(weights: _Weights) -> SimpleNamespace:
        return SimpleNamespace(name="reloaded", model=weights, tokenizer=tiny_gpt2.tokenizer, vocab_size=vocab,
                               context_length=64, device=torch.device("cpu"))

    def favouring(token: int) -> _FixedStore:
        logits = torch.zeros(vocab)
        logits[token] = 10.0
        return _FixedStore(logits)

    first = _Weights()
    address = id(first)
    dist, _ = stepping.distribution(fake(first), ids, DecodingSettings(), store=favouring(3))
    assert dist.greedy_id == 3, dist.greedy_id
    del first
    kept, second = [], _Weights()
    while id(second) != address and len(kept) < 1000:
        kept.append(second)
        second = _Weights()
    if id(second) != address:
        pytest.skip("the allocator did not reuse the freed model's address")
    dist, lookup = stepping.distribution(fake(second), ids, DecodingSettings(), store=favouring(4))
    assert dist.greedy_id == 4 and lookup.computed == len(ids), "the old model's distribution was remembered"


def test_session_undo_fork_switch_keep_paths(tiny_gpt2: object) -> None:
    settings, store = DecodingSettings(), KVStore(2**26)
    session = stepping.start(tiny_gpt2.name, tiny_gpt2.tokenizer(PROMPT)["input_ids"], seed=7)
    for _ in range(4):
        session, _ = stepping.advance(tiny_gpt2, session, settings, "sample", store=store)
    original = session.ids
    assert len(session.steps) == 4 and all(s.strategy == "sample" for s in session.steps), session.steps
    undone = stepping.undo(session)
    assert undone.ids == original[:-1] and len(undone.steps) == 3, undone.ids
    position = len(session.prompt_ids) + 1
    other = next(c.id for c in session.steps[1].alternatives if c.id != original[position])
    forked, result = stepping.fork(tiny_gpt2, session, position, other, settings, store=store)
    assert forked.current == 1 and len(forked.branches) == 2, forked
    assert forked.ids == original[:position] + (other,), forked.ids
    assert forked.branches[0].ids == original, "forking changed the old path"
    assert forked.branch.fork_at == position and forked.branch.parent == 0, forked.branch
    assert stepping.divergence(forked.ids, original) == position, (
        f"the paths share {stepping.divergence(forked.ids, original)} tokens, not the {position} before the fork")
    back = stepping.switch(forked, 0)
    assert back.ids == original and back.steps == session.steps, "switching back lost the old path"
    again, _ = stepping.fork(tiny_gpt2, back, position, other, settings, store=store)
    assert len(again.branches) == 2 and again.current == 1, "forking to an existing path made a duplicate branch"
    assert result.step.token_id == other and result.step.strategy == "token", (
        f"the fork must record token {other} chosen as 'token': {result.step}")


def test_sampling_continues_the_session_generator(tiny_gpt2: object) -> None:
    """Step by step through sessions (state saved as bytes in between) draws what one generator would draw."""
    settings = DecodingSettings(temperature=1.5)
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    session = stepping.start(tiny_gpt2.name, ids, seed=42)
    for _ in range(10):
        session, _ = stepping.advance(tiny_gpt2, pickle.loads(pickle.dumps(session)), settings, "sample")
    expected = _step_n(tiny_gpt2, ids, settings, "sample", 10, seed=42)
    assert list(session.ids) == expected, f"sessions drew differently from one generator:\n{session.ids}\n{expected}"
    reseeded = stepping.reseed(session, 42)
    assert reseeded.rng_state == b"" and reseeded.ids == session.ids, "reseeding resets the generator, keeps the text"


def _tensors(value: object) -> list[object]:
    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value):
        return [t for f in dataclasses.fields(value) for t in _tensors(getattr(value, f.name))]
    if isinstance(value, (tuple, list)):
        return [t for item in value for t in _tensors(item)]
    return []


def test_session_holds_no_tensors(tiny_gpt2: object) -> None:
    session = stepping.start(tiny_gpt2.name, tiny_gpt2.tokenizer(PROMPT)["input_ids"])
    session, _ = stepping.advance(tiny_gpt2, session, DecodingSettings(), "sample")
    session, _ = stepping.force_text(tiny_gpt2, session, " the rain", DecodingSettings())
    assert _tensors(session) == [], "session state holds tensors"
    assert copy.deepcopy(session) == session, "a deep copy of the session must equal it (plain data only)"


def _assert_forced_as_in_the_whole_text(loaded: object, texts: list[str]) -> None:
    """Forcing each text in turn appends what the tokenizer gives it inside the whole text."""
    tokenizer = loaded.tokenizer
    session = stepping.start(loaded.name, tokenizer(PROMPT)["input_ids"])
    for text in texts:
        session, result = stepping.force_text(loaded, session, text, DecodingSettings(), store=KVStore(2**26))
        assert result.ids == session.ids, f"the result's ids are not the session's: {result.ids} vs {session.ids}"
    whole = tokenizer(PROMPT + "".join(texts))["input_ids"]
    pieces = tokenizer.convert_ids_to_tokens(list(session.ids))
    assert list(session.ids) == whole, (
        f"forced tokens differ from the whole text's:\n{pieces}\n{tokenizer.convert_ids_to_tokens(whole)}")
    forced = len(whole) - len(tokenizer(PROMPT)["input_ids"])
    assert [s.strategy for s in session.steps] == ["forced"] * forced, [s.strategy for s in session.steps]


def test_force_text_appends_the_tokens_of_the_text_in_context(tiny: object) -> None:
    """A SentencePiece tokenizer splits ' fell' alone as '▁', '▁fell' (its prefix space, then the space):
    after 'the rain' the same text is '▁fell', and that is what must be appended."""
    _assert_forced_as_in_the_whole_text(tiny, [" fell", " in", " torrents"])


def test_force_text_that_merges_into_the_last_token_is_split_as_after_a_line_break(tiny_llama: object) -> None:
    tokenizer = tiny_llama.tokenizer
    session = stepping.start(tiny_llama.name, tokenizer("It was a dark and stormy night; the ra")["input_ids"])
    session, _ = stepping.force_text(tiny_llama, session, "in", DecodingSettings())
    pieces = tokenizer.convert_ids_to_tokens([s.token_id for s in session.steps])
    assert "".join(pieces) == "in", f"'in' glued to 'ra' must be appended as bare pieces, without a space: {pieces}"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, s: stepping.step(m, s.ids, DecodingSettings(), "beam"), "`strategy` has to be one of"),
        (lambda m, s: stepping.step(m, s.ids, DecodingSettings(), "token", token_id=10**6), "`token_id` has to be an integer"),
        (lambda m, s: stepping.undo(s), "nothing to undo"),
        (lambda m, s: stepping.start(m.name, s.ids, seed=-1), "`seed` has to be an integer"),
        (lambda m, s: stepping.fork(m, s, 0, 1, DecodingSettings()), "`position` has to be the index of a generated token"),
        (lambda m, s: stepping.force_text(m, s, "", DecodingSettings()), "`text` has to hold at least one token"),
        (lambda m, s: stepping.switch(s, 3), "`branch` has to be from 0 to 0"),
        # ids, strategies, token ids and seeds of the wrong type are refused by name, never truncated
        (lambda m, s: stepping.step(m, [5, 6.9], DecodingSettings(), "greedy"),
         "`token_ids` has to be a list of integers, but holds 6.9"),
        (lambda m, s: stepping.step(m, [5, "x"], DecodingSettings(), "greedy"),
         "`token_ids` has to be a list of integers, but holds 'x'"),
        (lambda m, s: stepping.step(m, s.ids, DecodingSettings(), 5), "`strategy` has to be one of .* but is 5"),
        (lambda m, s: stepping.step(m, s.ids, DecodingSettings(), "token", token_id="5"),
         "`token_id` has to be an integer .* but is '5'"),
        (lambda m, s: stepping.step(m, s.ids, DecodingSettings(), "token", token_id=5.5),
         "`token_id` has to be an integer .* but is 5.5"),
        (lambda m, s: stepping.advance(m, s, DecodingSettings(), "forced", token_id=None),
         "`token_id` has to be an integer .* but is None"),
        (lambda m, s: stepping.start(m.name, [5, 6.9]), "`prompt_ids` has to be a list of integers, but holds 6.9"),
        (lambda m, s: stepping.start(m.name, s.ids, seed=2**32), "`seed` has to be an integer from 0 to 4294967295"),
        (lambda m, s: stepping.reseed(s, 1.5), "`seed` has to be an integer from 0 to 4294967295, but is 1.5"),
        (lambda m, s: stepping.reseed(s, "3"), "`seed` has to be an integer from 0 to 4294967295, but is '3'"),
        (lambda m, s: stepping.distribution(m, s.ids, DecodingSettings(), top_n="10"), "`top_n` has to be an integer"),
        (lambda m, s: stepping.force_text(m, s, 5, DecodingSettings()), "`text` has to be a string, but is 5"),
        (lambda m, s: stepping.force_text(m, s, "a\ud800", DecodingSettings()),
         r"`text` has to be valid Unicode, but holds a lone surrogate \(\\ud800\) at position 1"),
    ],
)
def test_bad_requests_are_refused_by_name(tiny_gpt2: object, call: object, message: str) -> None:
    session = stepping.start(tiny_gpt2.name, tiny_gpt2.tokenizer(PROMPT)["input_ids"])
    with pytest.raises(ValueError, match=message):
        call(tiny_gpt2, session)


def test_a_whole_float_is_an_id() -> None:
    assert stepping.start("m", [5.0, 6]).prompt_ids == (5, 6), "whole floats (as JSON sends them) are ids"


def test_stepping_stops_at_the_context_window(tiny_gpt2: object) -> None:
    ids = (5,) * tiny_gpt2.context_length
    with pytest.raises(ValueError, match="context window"):
        stepping.step(tiny_gpt2, ids, DecodingSettings(), "greedy")


@pytest.mark.slow
def test_embedded_force_text_appends_the_tokens_of_the_text_in_context(embedded: object) -> None:
    _assert_forced_as_in_the_whole_text(embedded, [" fell", " in", " torrents"])


@pytest.mark.slow
def test_embedded_greedy_and_sampled_steps_equal_generate(embedded: object) -> None:
    ids = embedded.tokenizer("The capital of France is")["input_ids"]
    greedy = DecodingSettings(temperature=0)
    expected = _generate(embedded, ids, greedy, 50)
    stepped = _step_n(embedded, ids, greedy, "greedy", len(expected) - len(ids), store=KVStore(2**28))
    assert stepped == expected, f"greedy:\n{embedded.tokenizer.decode(stepped)}\n{embedded.tokenizer.decode(expected)}"
    settings = DecodingSettings(temperature=0.9, top_p=0.95)
    torch.manual_seed(11)
    expected = _generate(embedded, ids, settings, 20)
    stepped = _step_n(embedded, ids, settings, "sample", len(expected) - len(ids), seed=11, store=KVStore(2**28))
    assert stepped == expected, f"sampled:\n{embedded.tokenizer.decode(stepped)}\n{embedded.tokenizer.decode(expected)}"


# --- the /step endpoint ----------------------------------------------------------------


def test_step_endpoint_takes_one_greedy_step(client: object, tiny_gpt2_dir: object) -> None:
    from stepgen.registry import get_model

    loaded = get_model(str(tiny_gpt2_dir))
    ids = loaded.tokenizer(PROMPT)["input_ids"]
    out = client.predict(token_ids=ids, strategy="greedy", temperature=0, api_name="/step")
    expected = _generate(loaded, ids, DecodingSettings(temperature=0), 1)
    assert out["token_ids"] == expected, (out["token_ids"], expected)
    assert out["chosen"]["id"] == expected[-1] and out["chosen"]["rank"] >= 1, out["chosen"]
    assert out["next"]["n_input_tokens"] == len(ids) + 1 and out["next"]["candidates"], out["next"]
    again = client.predict(token_ids=out["token_ids"], strategy="greedy", temperature=0, api_name="/step")
    assert (again["reused_tokens"], again["computed_tokens"]) == (len(ids) + 1, 1), "an API step reran the prefix"
    by_prompt = client.predict(prompt=PROMPT, strategy="greedy", temperature=0, api_name="/step")
    assert by_prompt["token_ids"] == expected, f"by prompt {by_prompt['token_ids']} vs generate()'s {expected}"


def test_step_endpoint_sampling_follows_the_documented_seed_rule(client: object, tiny_gpt2_dir: object) -> None:
    """A stateless call draws with a fresh generator seeded seed * 2**32 + len(token_ids)."""
    from stepgen.registry import get_model

    loaded = get_model(str(tiny_gpt2_dir))
    ids = loaded.tokenizer(PROMPT)["input_ids"]
    settings = DecodingSettings(temperature=1.5, top_k=50)
    dist, _ = stepping.distribution(loaded, ids, settings)
    for seed in (0, 1, 99):
        out = client.predict(token_ids=ids, strategy="sample", seed=seed, temperature=1.5, top_k=50, api_name="/step")
        generator = torch.Generator().manual_seed(seed * 2**32 + len(ids))
        expected = int(torch.multinomial(dist.final_probs, 1, generator=generator))
        assert out["chosen"]["id"] == expected and out["seed"] == seed, (seed, out["chosen"]["id"], expected)
        assert abs(out["chosen"]["final_prob"] - float(dist.final_probs[expected])) < 1e-6, (
            f"recorded final prob {out['chosen']['final_prob']} vs the distribution's "
            f"{float(dist.final_probs[expected])}")
    chosen = client.predict(token_ids=ids, strategy="5", api_name="/step")
    assert chosen["token_ids"][-1] == 5 and chosen["chosen"]["strategy"] == "token", chosen["chosen"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prompt": PROMPT, "strategy": "beam"}, "`strategy` has to be one of"),
        ({"token_ids": [1, 2, 10**6]}, "`token_ids` has to hold ids from 0 to"),
        ({"prompt": PROMPT, "seed": -5, "strategy": "sample"}, "`seed` has to be an integer"),
        ({"prompt": PROMPT, "top_p": 1.5}, "`top_p` has to be a float > 0 and <= 1"),
        ({"prompt": ""}, "no token to continue from"),
    ],
)
def test_step_endpoint_refuses_bad_input_by_name(client: object, kwargs: dict, message: str) -> None:
    with pytest.raises(Exception, match=message):
        client.predict(**kwargs, api_name="/step")
