"""Whole texts as the model sees them: token spans and counts.

``tokenize`` runs the model's own tokenizer (the ids are exactly what it
returns) and describes every token: its id, readable text, vocabulary piece,
bytes, and the characters of the input it covers. ``detokenize`` goes the other
way, from ids to text and spans. Chat templates are :mod:`stepgen.chat`'s
job; it builds on :func:`token_spans`.

How character spans are found. The bytes of the tokens are matched against the
UTF-8 of the text, left to right. A token covers the characters its bytes
*touch*: each of the four byte tokens of ``🦀`` has the span of the crab, and
``Ġð`` (a space and the first byte of the crab) spans both. This is what the
fast tokenizers' ``offset_mapping`` reports for byte-level vocabularies (the
tests check that they agree). We do not take the offsets as they are because
SentencePiece-style tokenizers add a space (``▁``) that is not in the text, and
their offsets point that space at the next character; here such a token keeps
its ``▁`` and ``added_space`` is true, and a lone added ``▁`` has an empty span.
A special token the tokenizer inserts (BOS) has an empty span where it goes and
``added`` true; one typed in the text spans its characters. Only when the bytes
cannot be matched (a tokenizer that normalises text, an unknown token) do we
fall back to the tokenizer's offsets (``spans_from`` says which was used).

This module loads no model and renders no HTML; single tokens are rendered by
:mod:`stepgen.tokens`.

Longer than the ~300-line guide: turning texts and ids into spans, honest
partial characters and the checks of what a tokenizer can take are one idea,
used together by every tab.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Any

from stepgen.tokens import hex_bytes, is_whole, piece, readable, special_ids, token_bytes

MAX_CHARACTERS = 10_000
"""Longest text tokenized at once (longer texts are refused with a message, not a hang)."""
MAX_IDS = 10_000
"""Longest list of ids turned back into text at once."""


@dataclass(frozen=True)
class TokenSpan:
    """One token of a sequence, and where it sits in the text."""

    index: int
    """Position in the sequence (0 for the first token)."""
    id: int
    text: str
    """Readable form: the characters, or hex such as ``<F0 9F>`` for part of a character."""
    piece: str
    """The token as the vocabulary stores it (``Ġnight``, ``▁night``, ``<0xF0>``)."""
    bytes: bytes
    start: int | None
    """First character of the text it covers (None when no span could be found)."""
    end: int | None
    """One past the last character it covers (``start == end``: covers nothing)."""
    special: bool
    added: bool = False
    """A special token the tokenizer inserted (BOS, EOS); it is not in the text."""
    added_space: bool = False
    """Its leading space (``▁``) was added by the tokenizer; it is not in the text."""

    @property
    def partial(self) -> bool:
        """True when the token holds only part of a UTF-8 character."""
        return not self.special and not is_whole(self.bytes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index, "id": self.id, "text": self.text, "piece": self.piece,
            "bytes": hex_bytes(self.bytes), "start": self.start, "end": self.end, "special": self.special,
            "partial": self.partial, "added": self.added, "added_space": self.added_space,
        }


@dataclass(frozen=True)
class Group:
    """Consecutive tokens shown as one: a single token, or the pieces of a character merged."""

    tokens: tuple[TokenSpan, ...]

    @property
    def ids(self) -> list[int]:
        return [token.id for token in self.tokens]

    @property
    def bytes(self) -> bytes:
        return b"".join(token.bytes for token in self.tokens)

    @property
    def text(self) -> str:
        return self.tokens[0].text if len(self.tokens) == 1 else readable(self.bytes)

    def to_dict(self) -> dict[str, Any]:
        starts = [t.start for t in self.tokens if t.start is not None]
        ends = [t.end for t in self.tokens if t.end is not None]
        return {
            "index": self.tokens[0].index, "ids": self.ids, "text": self.text,
            "pieces": [t.piece for t in self.tokens], "bytes": hex_bytes(self.bytes),
            "start": min(starts) if starts else None, "end": max(ends) if ends else None,
            "special": any(t.special for t in self.tokens),
            "partial": not any(t.special for t in self.tokens) and not is_whole(self.bytes),
            "added": all(t.added for t in self.tokens),
            "added_space": self.tokens[0].added_space,
        }


@dataclass(frozen=True)
class Tokenization:
    """A text and the tokens the model reads for it."""

    text: str
    tokens: tuple[TokenSpan, ...]
    spans_from: str
    """``bytes`` (matched token bytes), ``offsets`` (the tokenizer's offsets), or ``bytes, partly`` (tokens
    after the first byte that the text does not hold have no span)."""
    add_special_tokens: bool = True

    @property
    def ids(self) -> list[int]:
        return [token.id for token in self.tokens]

    def singles(self) -> tuple[Group, ...]:
        return tuple(Group((token,)) for token in self.tokens)

    def merged(self) -> tuple[Group, ...]:
        return merge_partial(self.tokens)

    def counts(self) -> dict[str, Any]:
        """Tokens (special ones included), characters (code points), UTF-8 bytes, characters per token."""
        count = len(self.tokens)
        characters = len(self.text)
        return {
            "count": count, "characters": characters, "bytes": len(self.text.encode("utf-8", "surrogatepass")),
            "chars_per_token": round(characters / count, 3) if count else None,
        }

    def to_dict(self, *, merge: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "ids": self.ids, "tokens": [t.to_dict() for t in self.tokens]}
        out.update(self.counts())
        out.update(spans_from=self.spans_from, add_special_tokens=self.add_special_tokens)
        if merge:
            out["merged"] = [group.to_dict() for group in self.merged()]
        return out


# --- checks ----------------------------------------------------------------------


_SURROGATE = re.compile("[\ud800-\udfff]")


def lone_surrogate(text: str) -> str | None:
    """Where ``text`` holds its first lone surrogate (``holds a lone surrogate (\\ud800) at position 1``), or None.

    A Python string can hold surrogates (a broken ``\\ud800`` JSON escape) that are not Unicode and have no
    UTF-8; tokenizers fail on them with a TypeError, so they are refused first, saying where.
    """
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return f"holds a lone surrogate (\\u{ord(found.group()):04x}) at position {found.start()}"


def check_unicode(name: str, text: str) -> str:
    """``text`` when it is a string a tokenizer can take, else a ValueError naming ``name`` (see :func:`lone_surrogate`)."""
    if not isinstance(text, str):
        raise ValueError(f"`{name}` has to be a string, but is {text!r}")
    problem = lone_surrogate(text)
    if problem:
        raise ValueError(f"`{name}` has to be valid Unicode, but {problem}")
    return text


def check_text(text: str) -> str:
    if not isinstance(text, str):
        raise ValueError(f"`text` has to be a string, but is {type(text).__name__}")
    if len(text) > MAX_CHARACTERS:
        raise ValueError(
            f"`text` has to be at most {MAX_CHARACTERS} characters long, but is {len(text)} characters long; "
            "tokenize it in parts."
        )
    return check_unicode("text", text)


def parse_ids(raw: str) -> list[int]:
    """``"[1, 2, 3]"``, ``"1 2 3"`` or ``"1,2,3"`` -> ``[1, 2, 3]``."""
    parts = [part for part in re.split(r"[\s,\[\]()]+", raw.strip()) if part]
    bad = [part for part in parts if not re.fullmatch(r"[+-]?\d+", part)]
    if bad:
        raise ValueError(f"`ids` has to be a list of integers like [1, 2, 3], but holds {bad[0]!r}")
    return [int(part) for part in parts]


def check_ids(tokenizer: Any, ids: list[int]) -> list[int]:
    if len(ids) > MAX_IDS:
        raise ValueError(f"`ids` has to hold at most {MAX_IDS} ids, but holds {len(ids)}")
    size = len(tokenizer)
    for position, token_id in enumerate(ids):
        if isinstance(token_id, bool) or not isinstance(token_id, int) or not 0 <= token_id < size:
            raise ValueError(
                f"`ids` has to hold integers >= 0 and < {size} (the vocabulary size), "
                f"but holds {token_id!r} at position {position}"
            )
    return list(ids)


# --- text <-> spans ----------------------------------------------------------------


CONTEXT_FREE = "\n"
"""A context after which a text starts as it would start a line: no space is put in front of it."""


def continuation_ids(tokenizer: Any, context: str, text: str) -> list[int] | None:
    """The ids ``text`` adds when the tokenizer splits ``context + text``, or None when the split of
    ``context`` alone is not a prefix of that (the text merges into the context's last token).

    Tokenizing ``text`` alone is not the same: a SentencePiece tokenizer puts its automatic prefix space in
    front (``'fell'`` becomes ``'▁fell'``, ``' fell'`` becomes ``'▁', '▁fell'``).
    """
    before = tokenizer(context, add_special_tokens=False)["input_ids"]
    both = tokenizer(context + text, add_special_tokens=False)["input_ids"]
    if list(both[: len(before)]) != list(before):
        return None
    return [int(i) for i in both[len(before):]]


def adds_prefix_space(tokenizer: Any) -> bool:
    """True when the tokenizer puts a space (``▁``) in front of the text, as SentencePiece does."""
    cached = getattr(tokenizer, "_stepgen_prefix_space", None)
    if cached is not None:
        return cached
    ids = tokenizer("a", add_special_tokens=False)["input_ids"]
    answer = b"".join(token_bytes(tokenizer, i) for i in ids) == b" a"
    try:
        tokenizer._stepgen_prefix_space = answer
    except AttributeError:
        pass
    return answer


def _char_of_byte(text: str) -> list[int]:
    """For each UTF-8 byte of ``text`` (and one past the end), the index of the character it belongs to."""
    owners: list[int] = []
    for index, char in enumerate(text):
        owners.extend([index] * len(char.encode("utf-8", "surrogatepass")))
    owners.append(len(text))
    return owners


def _match_bytes(
    pieces: list[bytes], special: list[bool], text: str, *, prefix_rule: bool, inserted: list[bool]
) -> tuple[list[tuple[int, int, bool, bool] | None], bool]:
    """Byte spans (start, end, added, added_space) of each token in ``text``, and whether all bytes matched.

    Tokens after the first mismatch get None. With ``prefix_rule`` a leading space is taken as added at the
    start of the text and after a special token typed in the text (where SentencePiece adds one); without
    it, only where the text has no space there. ``inserted`` marks special tokens known to be added by the
    tokenizer (an empty offset), which match nothing.
    """
    data = text.encode("utf-8", "surrogatepass")
    cursor, at_segment_start = 0, True
    spans: list[tuple[int, int, bool, bool] | None] = []
    for chunk, is_special, was_inserted in zip(pieces, special, inserted):
        if is_special:
            if chunk and not was_inserted and data.startswith(chunk, cursor):
                spans.append((cursor, cursor + len(chunk), False, False))
                cursor += len(chunk)
                at_segment_start = True
            else:
                spans.append((cursor, cursor, True, False))
            continue
        added_space = chunk.startswith(b" ") and (
            at_segment_start if prefix_rule else not data.startswith(chunk, cursor)
        )
        if added_space:
            chunk = chunk[1:]
        if not data.startswith(chunk, cursor):
            return spans + [None] * (len(pieces) - len(spans)), False
        spans.append((cursor, cursor + len(chunk), False, added_space))
        cursor += len(chunk)
        at_segment_start = False
    return spans, cursor == len(data)


def token_spans(
    tokenizer: Any, ids: list[int], text: str, offsets: list[tuple[int, int]] | None, *, prefix_space: bool
) -> tuple[tuple[TokenSpan, ...], str]:
    """Each of ``ids`` with its span in ``text`` (see the module docstring), and ``spans_from``.

    ``offsets`` are the tokenizer's own (None when it has none for these ids); ``prefix_space`` says the
    tokenizer adds a leading ``▁`` (:func:`adds_prefix_space`).
    """
    specials = special_ids(tokenizer)
    pieces = [token_bytes(tokenizer, i) for i in ids]
    special = [i in specials for i in ids]
    inserted = [is_special and offsets is not None and offsets[k][0] == offsets[k][1]
                for k, is_special in enumerate(special)]
    attempts = [
        _match_bytes(pieces, special, text, prefix_rule=rule, inserted=inserted)
        for rule in ((True, False) if prefix_space else (False,))
    ]
    matched = next((spans for spans, complete in attempts if complete), None)
    spans_from = "bytes"
    if matched is None and offsets is None:
        matched, spans_from = attempts[-1][0], "bytes, partly"
    owners = _char_of_byte(text)
    tokens = []
    for index, (token_id, chunk, is_special) in enumerate(zip(ids, pieces, special)):
        start: int | None = None
        end: int | None = None
        added = added_space = False
        found = matched[index] if matched is not None else None
        if found is not None:
            byte_start, byte_end, added, added_space = found
            start = owners[byte_start]
            end = owners[byte_end - 1] + 1 if byte_end > byte_start else start
        elif matched is None and offsets is not None:
            start, end = offsets[index]
            added = is_special and start == end
        tokens.append(TokenSpan(
            index=index, id=int(token_id), text=readable(chunk), piece=piece(tokenizer, token_id), bytes=chunk,
            start=start, end=end, special=is_special, added=added, added_space=added_space,
        ))
    if matched is None:
        spans_from = "offsets"
    return tuple(tokens), spans_from


def tokenize(tokenizer: Any, text: str, *, add_special_tokens: bool = True) -> Tokenization:
    """``text`` as the model reads it: the tokenizer's own ids, each with its span (see the module docstring)."""
    check_text(text)
    fast = bool(getattr(tokenizer, "is_fast", False))
    encoding = tokenizer(text, add_special_tokens=add_special_tokens, return_offsets_mapping=fast)
    ids = [int(i) for i in encoding["input_ids"]]
    offsets = [tuple(pair) for pair in encoding["offset_mapping"]] if fast else None
    tokens, spans_from = token_spans(tokenizer, ids, text, offsets, prefix_space=adds_prefix_space(tokenizer))
    return Tokenization(text=text, tokens=tokens, spans_from=spans_from, add_special_tokens=add_special_tokens)


def detokenize(tokenizer: Any, ids: list[int]) -> Tokenization:
    """Ids -> the tokenizer's own decoded text (special tokens kept), with each token's span in it.

    From the first token whose bytes the decoded text does not hold (ids that end inside a character decode
    to ``�``), spans are None.
    """
    ids = check_ids(tokenizer, ids)
    text = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    tokens, spans_from = token_spans(tokenizer, ids, text, None, prefix_space=False)
    return Tokenization(text=text, tokens=tokens, spans_from=spans_from, add_special_tokens=False)


def _still_possible(data: bytes) -> bool:
    """True when ``data`` is valid UTF-8 so far (it may end inside a character)."""
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
    except UnicodeDecodeError:
        return False
    return True


def merge_partial(tokens: tuple[TokenSpan, ...]) -> tuple[Group, ...]:
    """Group consecutive tokens that hold parts of the same character(s) until their bytes are whole UTF-8.

    Special tokens always stand alone; pieces that never complete a character (ids ending mid-character)
    stay as a partial group.
    """
    groups: list[Group] = []
    pending: list[TokenSpan] = []
    for token in tokens:
        if token.special:
            if pending:
                groups.append(Group(tuple(pending)))
                pending = []
            groups.append(Group((token,)))
            continue
        data = b"".join(t.bytes for t in pending) + token.bytes
        if pending and not _still_possible(data):
            groups.append(Group(tuple(pending)))
            pending, data = [], token.bytes
        pending.append(token)
        if is_whole(data):
            groups.append(Group(tuple(pending)))
            pending = []
    if pending:
        groups.append(Group(tuple(pending)))
    return tuple(groups)
