"""The distribution core: raw softmax of a plain forward pass, generate()'s processed scores."""

from __future__ import annotations

import pytest
import torch

from stepgen.distribution import next_token
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
