"""What a single token *is*: its bytes, and a readable, honest rendering of them.

Tokenizers store tokens in their own alphabets: byte-level BPE (GPT-2,
SmolLM2, Qwen) writes each byte as a printable stand-in (``Ġ`` for a space),
SentencePiece-style vocabularies use ``▁`` for a space and ``<0xE2>`` pieces
for raw bytes. Here every token id becomes the bytes it stands for, and bytes
become text people can read: a token holding only part of a UTF-8 character
is shown as hex (``<F0 9F>``), never as a lone ``�``. An id the tokenizer has
no token for (Qwen2 pads its output layer past its vocabulary) is shown as
``<unused id 151700>`` and stands for no bytes, as it decodes to nothing.

This module renders single tokens. Splitting whole texts into spans is
:mod:`stepgen.tokenize`'s job; it loads nothing.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

_BYTE_PIECE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_SPACE_MARK = "▁"


@functools.cache
def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable stand-in for each byte, inverted (stand-in -> byte)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes)}


def is_byte_level(tokenizer: Any) -> bool:
    """True for byte-level BPE tokenizers (GPT-2 style ``Ġ`` vocabularies)."""
    cached = getattr(tokenizer, "_stepgen_byte_level", None)
    if cached is not None:
        return cached
    backend = getattr(tokenizer, "backend_tokenizer", None)
    answer = False
    if backend is not None:
        description = json.loads(backend.to_str())
        answer = "ByteLevel" in json.dumps(description.get("decoder")) or "ByteLevel" in json.dumps(
            description.get("pre_tokenizer")
        )
    try:
        tokenizer._stepgen_byte_level = answer
    except AttributeError:  # some tokenizers refuse new attributes; then we just recompute
        pass
    return answer


def special_ids(tokenizer: Any) -> frozenset[int]:
    """Ids of special tokens (BOS, EOS, chat markers, other added special tokens)."""
    ids = set(getattr(tokenizer, "all_special_ids", []) or [])
    decoder = getattr(tokenizer, "added_tokens_decoder", None) or {}
    ids.update(token_id for token_id, added in decoder.items() if getattr(added, "special", False))
    return frozenset(int(token_id) for token_id in ids)


def _stored(tokenizer: Any, token_id: int) -> str | None:
    """The vocabulary's entry for ``token_id``, or None for an id past the tokenizer's tokens."""
    stored = tokenizer.convert_ids_to_tokens(int(token_id))
    return None if stored is None else str(stored)


def _unused(token_id: int) -> str:
    return f"<unused id {int(token_id)}>"


def piece(tokenizer: Any, token_id: int) -> str:
    """The token as the vocabulary stores it (``Ġnight``, ``▁night``, ``<0xE2>``), or ``<unused id N>``."""
    stored = _stored(tokenizer, token_id)
    return _unused(token_id) if stored is None else stored


def token_bytes(tokenizer: Any, token_id: int) -> bytes:
    """The bytes a token stands for (a special token stands for its own text, an unused id for none)."""
    stored = _stored(tokenizer, token_id)
    if stored is None:
        return b""
    if int(token_id) in special_ids(tokenizer):
        return stored.encode("utf-8")
    if is_byte_level(tokenizer):
        decoder = _byte_decoder()
        if all(char in decoder for char in stored):
            return bytes(decoder[char] for char in stored)
        return stored.encode("utf-8")  # an added plain-text token
    match = _BYTE_PIECE.match(stored)
    if match:
        return bytes([int(match.group(1), 16)])
    return stored.replace(_SPACE_MARK, " ").encode("utf-8")


def hex_bytes(data: bytes) -> str:
    """``b'\\xf0\\x9f'`` -> ``'F0 9F'``."""
    return " ".join(f"{byte:02X}" for byte in data)


def readable(data: bytes) -> str:
    """Bytes as text, with every run of bytes that is not a whole UTF-8 character shown as ``<F0 9F>``."""
    text = data.decode("utf-8", errors="surrogateescape")
    out: list[str] = []
    loose: list[int] = []
    for char in text:
        if "\udc80" <= char <= "\udcff":
            loose.append(ord(char) - 0xDC00)
            continue
        if loose:
            out.append(f"<{hex_bytes(bytes(loose))}>")
            loose = []
        out.append(char)
    if loose:
        out.append(f"<{hex_bytes(bytes(loose))}>")
    return "".join(out)


def is_whole(data: bytes) -> bool:
    """True when the bytes are complete UTF-8 (no partial character)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def token_text(tokenizer: Any, token_id: int) -> str:
    """The readable form of one token: its text, hex where it holds part of a character, or ``<unused id N>``."""
    if _stored(tokenizer, token_id) is None:
        return _unused(token_id)  # its bytes are empty: an empty text would hide that a token was chosen
    return readable(token_bytes(tokenizer, token_id))


_VISIBLE = {" ": "·", "\n": "↵\n", "\t": "→", "\r": "␍"}


def visible(text: str, *, keep_newlines: bool = False, keep_spaces: bool = False) -> str:
    """Whitespace made visible: ``·`` for a space, ``↵`` for a newline, ``→`` for a tab, ``␍`` for CR.

    Other control characters become their escapes (``\\x07``), like minbpe's ``render_token``. The one rule for
    showing a token's text anywhere: ``keep_newlines`` keeps the line break after its ``↵`` (text laid out on
    several lines), ``keep_spaces`` leaves spaces as they are (running text, where a dot in every gap would hide
    the words). Escaping for a page is the UI's business.
    """
    out: list[str] = []
    for index, part in enumerate(_HEX_RUN.split(text)):
        if index % 2:  # a run of loose bytes (see readable): its separators are not spaces of the text
            out.append(part)
        else:
            _mark(part, out, keep_newlines, keep_spaces)
    return "".join(out)


_HEX_RUN = re.compile(r"(<[0-9A-F]{2}(?: [0-9A-F]{2})*>)")
"""A run of bytes that is no whole character, as :func:`readable` writes it (``<F0 9F>``)."""


def _mark(text: str, out: list[str], keep_newlines: bool, keep_spaces: bool) -> None:
    for char in text:
        if char == " " and keep_spaces:
            out.append(char)
        elif char in _VISIBLE:
            mark = _VISIBLE[char]
            out.append(mark if keep_newlines or char != "\n" else "↵")
        elif ord(char) < 32 or ord(char) == 127:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(char)
