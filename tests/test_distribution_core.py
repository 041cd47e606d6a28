"""The distribution core: raw softmax of a plain forward pass, generate()'s processed scores."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from stepgen.distribution import from_logits, next_token
from stepgen.settings import DecodingSettings

SETTINGS = [
    DecodingSettings(),
    DecodingSettings(temperature=0.7, top_k=20),
    DecodingSettings(temperature=1.3, top_p=0.8, repetition_penalty=1.3),
    DecodingSettings(min_p=0.05, typical_p=0.9, no_repeat_ngram_size=2),
    DecodingSettings(epsilon_cutoff=3e-3, eta_cutoff=3e-3, bad_words=("the",)),
]


def _generate_scores(loaded: object, ids: list[int], settings: DecodingSettings) -> torch.Tensor:
    tokenizer = loaded.tokenizer
    input_ids = torch.tensor([ids])
    out = loaded.model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=1, output_scores=True,
        return_dict_in_generate=True, pad_token_id=tokenizer.eos_token_id, **settings.generate_kwargs(tokenizer),
    )
    return out.scores[0][0]


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.to_dict().items() if v != DecodingSettings().to_dict()[k]) or "raw")
def test_probabilities_equal_plain_transformers(tiny: object, settings: DecodingSettings) -> None:
    ids = tiny.tokenizer("It was a dark and stormy night; the rain the rain")["input_ids"]
    dist = next_token(tiny, ids, settings, top_n=15)
    with torch.no_grad():
        raw = torch.softmax(tiny.model(torch.tensor([ids])).logits[0, -1], dim=-1)
    final = torch.softmax(_generate_scores(tiny, ids, settings), dim=-1)
    for c in dist.candidates:
        assert abs(c.prob - float(raw[c.id])) < 1e-5, f"raw prob of {c.id}: {c.prob} vs {float(raw[c.id])}"
        assert abs(c.final_prob - float(final[c.id])) < 1e-5, f"final prob of {c.id}: {c.final_prob} vs {float(final[c.id])}"
    assert torch.allclose(dist.final_probs, final, atol=1e-6), "the whole final distribution equals generate()'s"
    assert [c.rank for c in dist.candidates[:15]] == list(range(1, 16)), [c.rank for c in dist.candidates]


def test_bad_words_spare_the_models_stop_tokens_as_generate_does(tiny_gpt2: object,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """generate() gives NoBadWordsLogitsProcessor the model's generation_config EOS ids (a list for many chat
    models) and never bans one of them; the tokenizer's single eos_token_id is not what it uses."""
    tokenizer = tiny_gpt2.tokenizer
    (the,) = tokenizer(" the", add_special_tokens=False)["input_ids"]
    monkeypatch.setattr(tiny_gpt2.model.generation_config, "eos_token_id", [tokenizer.eos_token_id, the])
    ids = tokenizer("It was a dark and stormy")["input_ids"]
    settings = DecodingSettings(bad_words=("the",))
    dist = next_token(tiny_gpt2, ids, settings)
    final = torch.softmax(_generate_scores(tiny_gpt2, ids, settings), dim=-1)
    assert float(final[the]) > 0, "generate() keeps ' the' (a stop token) although it is a bad word"
    assert abs(float(dist.final_probs[the]) - float(final[the])) < 1e-6, (
        f"final prob of ' the': {float(dist.final_probs[the])} vs generate()'s {float(final[the])}")
    assert torch.allclose(dist.final_probs, final, atol=1e-6), "the whole final distribution equals generate()'s"


def test_bad_words_ban_the_bare_piece_as_generate_does(tiny_llama: object) -> None:
    tokenizer = tiny_llama.tokenizer
    ids = tokenizer("It was a dark and stormy night; the")["input_ids"]
    settings = DecodingSettings(bad_words=("rain",))
    dist = next_token(tiny_llama, ids, settings)
    final = torch.softmax(_generate_scores(tiny_llama, ids, settings), dim=-1)
    bare = tokenizer.convert_tokens_to_ids("rain")
    assert float(dist.final_probs[bare]) == 0.0 == float(final[bare]), (
        f"the bare piece 'rain' must be banned by both: {float(dist.final_probs[bare])}, {float(final[bare])}")
    assert torch.allclose(dist.final_probs, final, atol=1e-6), "the whole final distribution equals generate()'s"


@pytest.mark.parametrize(("name", "value"), [("temperature", 0.01), ("repetition_penalty", 0.01)])
def test_scores_that_overflow_are_refused_naming_the_setting(tiny_gpt2: object, name: str, value: float) -> None:
    """A logit of 1e37 divided by 0.01 is beyond float32 (inf): softmax would give NaN, so there is nothing true
    to show. (Real logits are far smaller: this is why 0.01 is a safe minimum.)"""
    logits = torch.zeros(tiny_gpt2.vocab_size)
    logits[5] = 1e37
    fake = SimpleNamespace(tokenizer=tiny_gpt2.tokenizer)
    with pytest.raises(ValueError, match=f"`{name}` = {value} pushes this model's scores beyond what a float can hold"):
        from_logits(fake, [5, 6], logits, DecodingSettings(**{name: value}))


def test_candidate_logits_and_logprobs_equal_a_plain_forward_pass(tiny: object) -> None:
    ids = tiny.tokenizer("It was a dark and stormy night; the rain the rain")["input_ids"]
    dist = next_token(tiny, ids, DecodingSettings(temperature=0.7, top_k=5), top_n=15)
    _assert_logits_and_logprobs(tiny, ids, dist)


def _assert_logits_and_logprobs(loaded: object, ids: list[int], dist: object) -> None:
    with torch.no_grad():
        logits = loaded.model(torch.tensor([ids])).logits[0, -1].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    for c in dist.candidates:
        assert abs(c.logit - float(logits[c.id])) < 1e-4, (
            f"logit of {c.id}: {c.logit} vs the model's {float(logits[c.id])}")
        assert abs(c.logprob - float(logprobs[c.id])) < 1e-4, (
            f"log-prob of {c.id}: {c.logprob} vs log_softmax's {float(logprobs[c.id])}")


def test_greedy_puts_all_mass_on_generates_choice(tiny: object) -> None:
    ids = tiny.tokenizer("Studying AI is")["input_ids"]
    settings = DecodingSettings(temperature=0, repetition_penalty=1.5)
    dist = next_token(tiny, ids, settings)
    out = tiny.model.generate(torch.tensor([ids]), max_new_tokens=1, pad_token_id=tiny.tokenizer.eos_token_id,
                              **settings.generate_kwargs(tiny.tokenizer))
    assert dist.greedy_id == int(out[0, -1]), (dist.greedy_id, int(out[0, -1]))
    assert float(dist.final_probs[dist.greedy_id]) == 1.0 and float(dist.final_probs.sum()) == 1.0, (
        "greedy puts all the mass on its choice")


def test_stages_report_survivors_and_removed_mass(tiny_gpt2: object) -> None:
    ids = tiny_gpt2.tokenizer("Studying AI is")["input_ids"]
    dist = next_token(tiny_gpt2, ids, DecodingSettings(temperature=0.5, top_k=5, top_p=0.5))
    names = [s.name for s in dist.stages]
    assert names == ["temperature", "top_k", "top_p"], names
    temperature, top_k, top_p = dist.stages
    assert temperature.survivors == tiny_gpt2.vocab_size and temperature.removed_mass == 0.0, temperature
    assert top_k.survivors == 5 and 0 < top_k.removed_mass < 1, top_k
    assert 1 <= top_p.survivors <= 5, top_p
    kept = [c for c in dist.candidates if not c.removed]
    assert len(kept) == top_p.survivors, (kept, top_p.survivors)


@pytest.mark.slow
@pytest.mark.parametrize("settings", SETTINGS[:3], ids=["raw", "temp-topk", "topp-penalty"])
def test_embedded_probabilities_equal_plain_transformers(embedded: object, settings: DecodingSettings) -> None:
    ids = embedded.tokenizer("It was a dark and stormy")["input_ids"]
    dist = next_token(embedded, ids, settings)
    final = torch.softmax(_generate_scores(embedded, ids, settings), dim=-1)
    assert torch.allclose(dist.final_probs, final, atol=1e-6), "the whole final distribution equals generate()'s"
    assert dist.candidates[0].text == " night", dist.candidates[0]
    _assert_logits_and_logprobs(embedded, ids, dist)
