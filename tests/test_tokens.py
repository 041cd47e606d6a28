"""Single tokens: their bytes and an honest readable form."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

import tiny_models
from stepgen import stepping
from stepgen.distribution import next_token
from stepgen.loading import LoadedModel, load_model
from stepgen.settings import DecodingSettings
from stepgen.tokens import hex_bytes, is_byte_level, piece, readable, token_bytes, token_text, visible

EDGE_TEXTS = ["", " ", "Hello world", "  two  spaces", "line\nbreak\ttab", "🦀", "👩‍💻 coder", "日本語", "مرحبا", "café", "e\u0301"]


def test_readable_shows_partial_characters_as_hex() -> None:
    crab = "🦀".encode()
    assert readable(crab) == "🦀", readable(crab)
    assert readable(crab[:2]) == "<F0 9F>", "a partial character must be shown as its bytes"
    assert readable(b"a" + crab[:3]) == "a<F0 9F A6>", readable(b"a" + crab[:3])
    assert readable(crab[2:] + b"b") == "<A6 80>b", readable(crab[2:] + b"b")
    assert hex_bytes(b"\x00\xff") == "00 FF", hex_bytes(b"\x00\xff")


def test_visible_marks_whitespace_and_controls() -> None:
    assert visible(" a\tb\nc\x07") == "·a→b↵c\\x07", visible(" a\tb\nc\x07")


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_byte_level_token_bytes_add_up_to_the_text(tiny_gpt2: object, text: str) -> None:
    """Byte-level BPE is lossless: concatenating each token's bytes gives back the UTF-8 of the input."""
    tokenizer = tiny_gpt2.tokenizer
    assert is_byte_level(tokenizer), "the tiny GPT-2 tokenizer is byte-level BPE"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert b"".join(token_bytes(tokenizer, i) for i in ids) == text.encode("utf-8"), [token_text(tokenizer, i) for i in ids]


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_byte_fallback_tokens_add_up_to_the_text(tiny_llama: object, text: str) -> None:
    """SentencePiece-style: ``▁`` is a space and ``<0xE2>`` a byte; the leading space is the tokenizer's own."""
    tokenizer = tiny_llama.tokenizer
    assert not is_byte_level(tokenizer), "the tiny Llama tokenizer is SentencePiece-style, not byte-level"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    joined = b"".join(token_bytes(tokenizer, i) for i in ids)
    assert joined.removeprefix(b" ") == text.encode("utf-8"), (joined, text)


def test_special_tokens_stand_for_their_own_text(tiny_llama: object) -> None:
    assert token_bytes(tiny_llama.tokenizer, 1) == b"<s>", token_bytes(tiny_llama.tokenizer, 1)
    byte_piece = tiny_llama.tokenizer.convert_tokens_to_ids("<0xF0>")
    assert token_text(tiny_llama.tokenizer, byte_piece) == "<F0>", token_text(tiny_llama.tokenizer, byte_piece)


def test_ids_past_the_tokenizer_say_they_are_unused(tiny: object) -> None:
    """Qwen2 pads its output layer past its vocabulary: such an id has no token, and must not show as 'None'."""
    tokenizer = tiny.tokenizer
    unused = len(tokenizer) + 3
    assert piece(tokenizer, unused) == f"<unused id {unused}>", f"piece shows {piece(tokenizer, unused)!r}"
    assert token_text(tokenizer, unused) == f"<unused id {unused}>", f"text shows {token_text(tokenizer, unused)!r}"
    assert token_bytes(tokenizer, unused) == b"", "an id with no token stands for no bytes (it decodes to nothing)"


PADDED_PROMPT = "It was a dark and stormy"


@pytest.fixture(scope="module")
def padded_llama(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """A tiny Llama whose output layer has 8 rows more than its tokenizer has tokens, as Qwen2 pads its own.

    The first padding row is set so that its id is by far the likeliest token after :data:`PADDED_PROMPT`.
    """
    tokenizer = tiny_models.llama_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer) + 8, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    with torch.no_grad():
        hidden = model.model(torch.tensor([tokenizer(PADDED_PROMPT)["input_ids"]])).last_hidden_state[0, -1]
        model.lm_head.weight[len(tokenizer)] = 100 * hidden / hidden.norm()
    folder = Path(tmp_path_factory.mktemp("padded-llama"))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return load_model(str(folder))


def test_an_unused_id_the_model_predicts_is_shown_as_unused(padded_llama: LoadedModel) -> None:
    unused = len(padded_llama.tokenizer)
    assert padded_llama.vocab_size > unused, "the padded model must have more outputs than its tokenizer has tokens"
    ids = padded_llama.tokenizer(PADDED_PROMPT)["input_ids"]
    top = next_token(padded_llama, ids).candidates[0]
    assert top.id == unused, f"the padding id {unused} should be the likeliest, not {top.id}"
    assert top.text == f"<unused id {unused}>", f"the distribution shows the padding id as {top.text!r}"
    result = stepping.step(padded_llama, ids, DecodingSettings(), "greedy")
    assert result.step.token_id == unused, f"greedy should pick the padding id {unused}, not {result.step.token_id}"
    assert result.step.text == f"<unused id {unused}>", f"the step shows the padding id as {result.step.text!r}"


@pytest.mark.slow
def test_embedded_tokenizer_bytes_add_up(embedded: object) -> None:
    tokenizer = embedded.tokenizer
    for text in EDGE_TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert b"".join(token_bytes(tokenizer, i) for i in ids) == text.encode("utf-8"), text
    crab_ids = tokenizer("🦀", add_special_tokens=False)["input_ids"]
    assert len(crab_ids) > 1 and "<" in token_text(tokenizer, crab_ids[0]), "the crab is split across tokens"


def test_a_space_and_the_separator_of_loose_bytes_look_different() -> None:
    """A space before a partial emoji is a dot; the gap between its hex bytes stays a plain space."""
    assert visible(" <F0 9F>") == "·<F0 9F>", f"the byte run's separator is marked: {visible(' <F0 9F>')!r}"
    assert visible("a b<C3>\n", keep_newlines=True) == "a·b<C3>↵\n", visible("a b<C3>\n", keep_newlines=True)
    assert visible("<not hex> x") == "<not·hex>·x", "only runs of hex bytes are left alone"
