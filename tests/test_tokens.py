"""Single tokens: their bytes and an honest readable form."""

from __future__ import annotations

import pytest

from stepgen.tokens import hex_bytes, is_byte_level, readable, token_bytes, token_text, visible

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


@pytest.mark.slow
def test_embedded_tokenizer_bytes_add_up(embedded: object) -> None:
    tokenizer = embedded.tokenizer
    for text in EDGE_TEXTS:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert b"".join(token_bytes(tokenizer, i) for i in ids) == text.encode("utf-8"), text
    crab_ids = tokenizer("🦀", add_special_tokens=False)["input_ids"]
    assert len(crab_ids) > 1 and "<" in token_text(tokenizer, crab_ids[0]), "the crab is split across tokens"
