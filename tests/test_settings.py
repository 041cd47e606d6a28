"""Decoding settings: validation in transformers' voice, and generate()'s processor order."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GenerationConfig

from stepgen.request import GenerationRequest
from stepgen.settings import DecodingSettings


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"top_p": 0}, r"`top_p` has to be a float > 0 and <= 1, but is 0.0"),
        ({"top_p": 1.5}, r"`top_p` has to be a float > 0 and <= 1, but is 1.5"),
        ({"top_k": -1}, r"`top_k` has to be 0 \(off\) or an integer from 1 to 1000, but is -1"),
        ({"top_k": 2.5}, r"`top_k` has to be a whole number, but is 2.5"),
        ({"temperature": -0.1}, r"`temperature` has to be 0 \(greedy\) or a float >= 0.01 and <= 5, but is -0.1"),
        # dividing logits by these overflows float32: inf scores, NaN probabilities
        ({"temperature": 1e-40}, r"`temperature` has to be 0 \(greedy\) or a float >= 0.01 and <= 5, but is 1e-40"),
        ({"temperature": 0.009}, r"`temperature` has to be 0 \(greedy\) or a float >= 0.01 and <= 5, but is 0.009"),
        ({"temperature": math.nan}, r"`temperature` has to be a finite number, but is nan"),
        ({"min_p": 2}, r"`min_p` has to be a float >= 0 and <= 1, but is 2.0"),
        ({"typical_p": 0}, r"`typical_p`"),
        ({"epsilon_cutoff": 1}, r"`epsilon_cutoff`"),
        ({"eta_cutoff": -0.5}, r"`eta_cutoff`"),
        ({"repetition_penalty": 0}, r"`repetition_penalty` has to be a float >= 0.01 and <= 3, but is 0.0"),
        ({"repetition_penalty": 1e-40}, r"`repetition_penalty` has to be a float >= 0.01 and <= 3, but is 1e-40"),
        ({"no_repeat_ngram_size": -2}, r"`no_repeat_ngram_size`"),
        ({"temperature": "hot"}, r"`temperature` has to be a number, but is 'hot'"),
        ({"bad_words": [1, 2]}, r"`bad_words` has to be a list of words"),
        ({"bad_words": 5}, r"`bad_words` has to be a list of words, but is 5"),
    ],
)
def test_invalid_settings_name_the_argument_and_the_value(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DecodingSettings(**values)


def test_the_smallest_divisors_are_allowed_and_the_playground_inherits_the_bounds() -> None:
    low = DecodingSettings(temperature=0.01, repetition_penalty=0.01)
    assert (low.temperature, low.repetition_penalty) == (0.01, 0.01), f"0.01 is the documented minimum: {low}"
    for name in ("temperature", "repetition_penalty"):
        with pytest.raises(ValueError, match=f"`{name}` has to be .*>= 0.01 and <= .*, but is 1e-40"):
            GenerationRequest.from_dict({"do_sample": True, name: 1e-40})


def test_bad_words_none_means_no_bad_words() -> None:
    assert DecodingSettings(bad_words=None) == DecodingSettings(), "None must mean no bad words, as in from_dict"
    assert DecodingSettings(bad_words=None).bad_words == (), DecodingSettings(bad_words=None)


def test_from_dict_refuses_unknown_names_and_treats_none_as_default() -> None:
    with pytest.raises(ValueError, match="Unknown decoding setting\\(s\\): temprature"):
        DecodingSettings.from_dict({"temprature": 0.5})
    from_none = DecodingSettings.from_dict({"top_k": None, "top_p": 0.9})
    assert from_none == DecodingSettings(top_p=0.9), f"None must mean the default: {from_none}"
    cleaned = DecodingSettings(top_k=5.0, bad_words=["  cat ", ""]).to_dict()
    assert cleaned["bad_words"] == ["cat"] and isinstance(cleaned["top_k"], int), cleaned


def test_temperature_zero_is_greedy_without_warpers(tiny_gpt2: object) -> None:
    settings = DecodingSettings(temperature=0, top_k=5, top_p=0.5, repetition_penalty=1.3)
    names = [name for name, _ in settings.processors(tiny_gpt2.tokenizer)]
    assert names == ["repetition_penalty"], names
    assert settings.generate_kwargs(tiny_gpt2.tokenizer)["do_sample"] is False, "temperature 0 must not sample"


def test_sampling_kwargs_always_name_top_k() -> None:
    kwargs = DecodingSettings(temperature=0.7).generate_kwargs(tokenizer=None)
    assert kwargs["top_k"] == 0, "generate() must not fall back to its hidden top_k=50"
    assert kwargs["do_sample"] is True and kwargs["temperature"] == 0.7, kwargs


def test_bad_words_cover_the_word_with_and_without_a_leading_space(tiny_gpt2: object) -> None:
    tokenizer = tiny_gpt2.tokenizer
    ids = DecodingSettings(bad_words=("night",)).bad_words_ids(tokenizer)
    assert tokenizer(" night", add_special_tokens=False)["input_ids"] in ids, f"' night' is missing from {ids}"
    assert tokenizer("night", add_special_tokens=False)["input_ids"] in ids, f"'night' is missing from {ids}"


@pytest.mark.parametrize(("kind", "bare", "spaced"), [("gpt2", "rain", "Ġrain"), ("llama", "rain", "▁rain")])
def test_bad_words_ban_the_bare_piece_on_every_tokenizer(request: pytest.FixtureRequest, kind: str, bare: str,
                                                        spaced: str) -> None:
    """A SentencePiece tokenizer adds its prefix space to a word alone ('rain' -> '▁rain'), so the piece the
    model writes with no space before it ('rain', after a line break or a quote) must be found in context."""
    tokenizer = request.getfixturevalue(f"tiny_{kind}").tokenizer
    ids = DecodingSettings(bad_words=("rain",)).bad_words_ids(tokenizer)
    pieces = [tokenizer.convert_ids_to_tokens(sequence) for sequence in ids]
    assert [bare] in pieces, f"the bare piece {bare!r} is not banned: {pieces}"
    assert [spaced] in pieces, f"the spaced piece {spaced!r} is not banned: {pieces}"


def test_processor_order_is_generates_own_order(tiny: object) -> None:
    """Every setting on: our list must hold the same classes, in the same order, as generate() builds."""
    settings = DecodingSettings(
        temperature=0.8, top_k=40, top_p=0.9, min_p=0.05, typical_p=0.95, epsilon_cutoff=1e-4,
        eta_cutoff=1e-4, repetition_penalty=1.2, no_repeat_ngram_size=3, bad_words=("night",),
    )
    ours = [type(processor).__name__ for _, processor in settings.processors(tiny.tokenizer)]
    config = GenerationConfig(**settings.generate_kwargs(tiny.tokenizer), eos_token_id=tiny.tokenizer.eos_token_id)
    config._eos_token_tensor = torch.tensor([tiny.tokenizer.eos_token_id])
    theirs = tiny.model._get_logits_processor(generation_config=config, input_ids_seq_length=4, device="cpu")
    assert ours == [type(processor).__name__ for processor in theirs], (ours, [type(p).__name__ for p in theirs])
    assert len(ours) == 10, f"every one of the ten settings must give a processor: {ours}"
