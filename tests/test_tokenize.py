"""Whole texts as token spans: the ids are the tokenizer's own, the spans and counts are honest.

Every check runs on both tiny tokenizers (byte-level GPT-2 and SentencePiece-style Llama) over the same edge
cases, and a smaller slow set repeats them on the real embedded model.
"""

from __future__ import annotations

import itertools
import re

import pytest
from transformers import AutoTokenizer

from stepgen import tokenize as tk
from stepgen.chat import chat
from stepgen.tokens import is_byte_level
from ui import tokenizer_tab

EDGE_TEXTS = [
    "",
    "   ",
    "\n\n\t\tindented\r\nline",
    "Preposterous, I'm flabbergasted!",
    "🦀",
    "👩‍💻 coder and 👨‍👩‍👧‍👦 family",
    "日本語のテキスト",
    "مرحبا بالعالم",
    "שלום עולם",
    "e\u0301 café naïve",
    "<|im_start|>user",
]
HEX_ONLY = re.compile(r"^(<[0-9A-F]{2}( [0-9A-F]{2})*>| )+$")


def _messages() -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is a token? 🦀"},
        {"role": "assistant", "content": "A piece of text."},
    ]


# --- the ids are the tokenizer's own -----------------------------------------------------


@pytest.mark.parametrize("add_special_tokens", [True, False])
@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_ids_equal_the_tokenizers_own(tiny: object, text: str, add_special_tokens: bool) -> None:
    tokenizer = tiny.tokenizer
    expected = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
    result = tk.tokenize(tokenizer, text, add_special_tokens=add_special_tokens)
    assert result.ids == expected, f"ids differ from the tokenizer's for {text!r}"
    assert [t.piece for t in result.tokens] == tokenizer.convert_ids_to_tokens(expected), "pieces differ"
    assert result.counts()["count"] == len(expected), "count is not the number of ids"


def _touched(text: str, first: int, last: int) -> tuple[int, int]:
    """The characters of ``text`` whose UTF-8 holds its bytes ``first`` to ``last`` (exclusive)."""
    ends = list(itertools.accumulate(len(char.encode("utf-8")) for char in text))  # byte end of each character
    start = next(i for i, end in enumerate(ends) if end > first)
    return start, next(i for i, end in enumerate(ends) if end >= last) + 1


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_spans_cover_the_text_in_order(tiny: object, text: str) -> None:
    """Every character of the text is covered, left to right, by the tokens whose bytes it holds.

    The bytes of the tokens (without what the tokenizer added: a BOS, a leading ``▁``) spell the UTF-8 of
    the text in order, and each token spans exactly the characters its bytes touch: a token holding part
    of a character spans that whole character.
    """
    result = tk.tokenize(tiny.tokenizer, text)
    assert result.spans_from == "bytes", f"bytes did not match for {text!r}: {result.spans_from}"
    data = text.encode("utf-8")
    position = 0
    spelled = b""
    for token in result.tokens:
        assert token.start is not None and token.end is not None, f"token {token} has no span"
        assert token.start <= position, f"gap before {token} in {text!r}"
        position = max(position, token.end)
        own = b"" if token.added else token.bytes[1:] if token.added_space else token.bytes
        at = len(spelled)
        assert data.startswith(own, at), f"{token} holds {own!r}, but the text has {data[at:at + len(own)]!r} there"
        spelled += own
        if own:
            touched = _touched(text, at, len(spelled))
            assert (token.start, token.end) == touched, f"{token} should span the characters {touched} in {text!r}"
        else:
            assert token.start == token.end, f"{token} adds nothing to the text but covers characters"
    assert spelled == data, f"the tokens spell {spelled!r}, not the text {text!r}"
    assert position == len(text), f"spans end at {position}, the text at {len(text)}"


@pytest.mark.parametrize("text", ["a\ud800b", "\udfff", "🦀 \ud83e\udd80"])
def test_lone_surrogates_are_refused_with_their_position(tiny: object, text: str) -> None:
    """A str can hold surrogates that are not Unicode (a broken JSON escape); the tokenizer then fails with a
    TypeError, so they are refused first, saying where."""
    where = next(i for i, char in enumerate(text) if "\ud800" <= char <= "\udfff")
    code = f"\\\\u{ord(text[where]):04x}"
    refused = rf"`text` has to be valid Unicode, but holds a lone surrogate \({code}\) at position {where}$"
    with pytest.raises(ValueError, match=refused):
        tk.tokenize(tiny.tokenizer, text)


def test_lone_surrogates_in_a_chat_name_the_message(tiny_llama: object) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi \udc80"}]
    refused = r"`content` has to be valid Unicode, but holds a lone surrogate \(\\udc80\) at position 3 \(message 1\)"
    with pytest.raises(ValueError, match=refused):
        chat(tiny_llama.tokenizer, messages)


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_no_replacement_character_is_ever_shown(tiny: object, text: str) -> None:
    result = tk.tokenize(tiny.tokenizer, text)
    for token in result.tokens:
        assert "\ufffd" not in token.text, f"a lone replacement character in {token}"
        if token.partial:
            assert "<" in token.text, f"partial token {token} is not shown as bytes"


def test_byte_level_bytes_add_up_and_spans_equal_the_offsets(tiny_gpt2: object) -> None:
    """Byte-level BPE: the bytes of the tokens are the UTF-8 of the text, and our spans are the tokenizer's offsets."""
    tokenizer = tiny_gpt2.tokenizer
    assert is_byte_level(tokenizer), "the tiny GPT-2 tokenizer is byte-level BPE"
    for text in EDGE_TEXTS:
        result = tk.tokenize(tokenizer, text)
        assert b"".join(t.bytes for t in result.tokens) == text.encode("utf-8"), text
        hex_joined = " ".join(t.to_dict()["bytes"] for t in result.tokens if t.bytes)
        assert hex_joined == text.encode("utf-8").hex(" ").upper(), "hex bytes do not add up"
        offsets = [tuple(o) for o in tokenizer(text, return_offsets_mapping=True)["offset_mapping"]]
        assert [(t.start, t.end) for t in result.tokens] == offsets, f"spans differ from offsets for {text!r}"


def test_sentencepiece_added_space_is_shown_and_has_no_text(tiny_llama: object) -> None:
    """Known answer: the Llama-style tokenizer puts ``<s>`` and a ``▁`` in front of " a".

    The text " a" has one real space; the tokenizer prepends another (its normaliser adds ``▁``), so the ids
    are ``<s>``, ``▁`` (added), ``▁a`` (the real space and the a). The added ones cover no character.
    """
    tokenizer = tiny_llama.tokenizer
    result = tk.tokenize(tokenizer, " a")
    assert [t.piece for t in result.tokens] == ["<s>", "▁", "▁a"], [t.piece for t in result.tokens]
    bos, added, real = result.tokens
    assert bos.special and bos.added and (bos.start, bos.end) == (0, 0), bos
    assert added.added_space and (added.start, added.end) == (0, 0), added
    assert not real.added_space and (real.start, real.end) == (0, 2), real
    without = tk.tokenize(tokenizer, " a", add_special_tokens=False)
    assert [t.piece for t in without.tokens] == ["▁", "▁a"], "the BOS must go with add_special_tokens=False"


def test_special_token_typed_in_the_text_spans_its_characters(tiny_llama: object) -> None:
    result = tk.tokenize(tiny_llama.tokenizer, "<|im_start|>user")
    marker = [t for t in result.tokens if t.piece == "<|im_start|>"]
    assert len(marker) == 1 and marker[0].special and not marker[0].added, result.tokens
    assert (marker[0].start, marker[0].end) == (0, 12), marker[0]


def test_partial_pieces_merge_into_the_characters_they_form(tiny: object) -> None:
    for text in EDGE_TEXTS:
        result = tk.tokenize(tiny.tokenizer, text, add_special_tokens=False)
        groups = result.merged()
        assert [i for g in groups for i in g.ids] == result.ids, "merging lost or reordered ids"
        assert all(not g.to_dict()["partial"] for g in groups), f"a merged group is still partial in {text!r}"
        joined = b"".join(t.bytes for t in result.tokens).decode("utf-8")
        assert "".join(g.text for g in groups) == joined, f"merged texts do not spell {text!r}"
    crab = tk.tokenize(tiny.tokenizer, "🦀", add_special_tokens=False)
    assert any(t.partial and HEX_ONLY.match(t.text) for t in crab.tokens), "the crab should be split into bytes"
    assert any(g.text.endswith("🦀") and len(g.ids) > 1 for g in crab.merged()), "the crab pieces did not merge"


def test_ids_ending_inside_a_character_stay_partial(tiny_gpt2: object) -> None:
    tokenizer = tiny_gpt2.tokenizer
    ids = tokenizer("ab🦀", add_special_tokens=False)["input_ids"][:-1]
    result = tk.detokenize(tokenizer, ids)
    assert result.text == tokenizer.decode(ids), "the text must be the tokenizer's own decoding"
    assert result.spans_from == "bytes, partly", result.spans_from
    assert result.tokens[0].start == 0 and result.tokens[-1].start is None, result.tokens
    assert result.merged()[-1].to_dict()["partial"], "an unfinished character must stay partial"


def test_counts_known_answer(tiny_gpt2: object) -> None:
    """"Hi 🦀" is 4 characters (H, i, space, crab) and 7 UTF-8 bytes (the crab takes 4)."""
    result = tk.tokenize(tiny_gpt2.tokenizer, "Hi 🦀")
    counts = result.counts()
    assert counts["characters"] == 4 and counts["bytes"] == 7, counts
    assert counts["chars_per_token"] == round(4 / counts["count"], 3), counts
    assert tk.tokenize(tiny_gpt2.tokenizer, "").counts()["chars_per_token"] is None, "no tokens, no ratio"


# --- ids -> text -------------------------------------------------------------------------


@pytest.mark.parametrize("text", EDGE_TEXTS)
def test_detokenize_round_trips(tiny: object, text: str) -> None:
    tokenizer = tiny.tokenizer
    ids = tokenizer(text)["input_ids"]
    result = tk.detokenize(tokenizer, ids)
    assert result.ids == ids, "detokenize changed the ids"
    decoded = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    assert result.text == decoded, f"{result.text!r} is not the tokenizer's decoding {decoded!r}"
    assert result.spans_from == "bytes", f"spans not found in the decoded text of {text!r}"


def test_parse_and_check_ids(tiny_gpt2: object) -> None:
    assert tk.parse_ids("[1, 2,3]\n4 5") == [1, 2, 3, 4, 5], tk.parse_ids("[1, 2,3]\n4 5")
    with pytest.raises(ValueError, match="`ids` has to be a list of integers"):
        tk.parse_ids("1, two")
    size = len(tiny_gpt2.tokenizer)
    with pytest.raises(ValueError, match=f"< {size}.*but holds {size} at position 1"):
        tk.detokenize(tiny_gpt2.tokenizer, [0, size])
    with pytest.raises(ValueError, match="at most"):
        tk.detokenize(tiny_gpt2.tokenizer, [0] * (tk.MAX_IDS + 1))


def test_long_text_has_a_clear_limit(tiny: object) -> None:
    longest = "It was a dark and stormy night. " * (tk.MAX_CHARACTERS // 32)
    assert len(tk.tokenize(tiny.tokenizer, longest).text) <= tk.MAX_CHARACTERS, "a text at the limit is tokenized"
    too_long = "x" * (tk.MAX_CHARACTERS + 1)
    with pytest.raises(ValueError, match=rf"at most {tk.MAX_CHARACTERS} characters.*{tk.MAX_CHARACTERS + 1}"):
        tk.tokenize(tiny.tokenizer, too_long)


# --- chat templates -------------------------------------------------------------------------


@pytest.mark.parametrize("generation_prompt", [False, True])
def test_chat_tokens_are_apply_chat_templates_own(tiny_llama: object, generation_prompt: bool) -> None:
    _check_chat(tiny_llama.tokenizer, generation_prompt)


def _check_chat(tokenizer: object, generation_prompt: bool) -> None:
    messages = _messages()
    result = chat(tokenizer, messages, add_generation_prompt=generation_prompt)
    expected = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt)["input_ids"]
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    tokens = result.tokenization
    assert tokens.ids == expected, "chat ids differ from apply_chat_template"
    assert tokens.text == rendered and tokens.spans_from == "bytes", tokens.spans_from
    segments = result.segments
    roles = [m["role"] for m in messages] + (["generation prompt"] if generation_prompt else [])
    assert [s.role for s in segments] == roles, segments
    assert segments[0].start == 0 and segments[-1].end == len(expected), segments
    assert all(a.end == b.start for a, b in zip(segments, segments[1:])), f"segments leave gaps: {segments}"
    for segment, message in zip(segments, messages):
        piece = tokenizer.decode(expected[segment.start:segment.end])
        assert message["content"] in piece, f"{message['role']} tokens do not hold its content: {piece!r}"
    assert any(t.special for t in tokens.tokens), "chat markers must be marked special"


DEFAULT_SYSTEM = "You are a helpful assistant."
OWN_SYSTEM_PROMPT = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "<|im_start|>system\n" + DEFAULT_SYSTEM + "<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""ChatML that, like SmolLM2's template, opens with a system prompt of its own when the conversation has none."""


def _check_template_segment(tokenizer: object, default_system: str) -> None:
    """The system prompt a template adds on its own is labelled ``template``, not credited to the first message.

    Known answer: those tokens are exactly the ones the same text gives as a system message, and the user's
    tokens are exactly the ones its message gives after a system message.
    """
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    result = chat(tokenizer, messages, add_generation_prompt=True)
    ids, segments = result.tokenization.ids, result.segments
    roles = [s.role for s in segments]
    assert roles == ["template", "user", "assistant", "generation prompt"], f"segments are {roles}"
    assert segments[0].start == 0 and segments[-1].end == len(ids), f"segments do not cover the ids: {segments}"
    assert all(a.end == b.start for a, b in itertools.pairwise(segments)), f"segments leave gaps: {segments}"
    system = [{"role": "system", "content": default_system}]
    own = tokenizer.apply_chat_template(system)["input_ids"]
    template = ids[segments[0].start:segments[0].end]
    assert template == own, f"the template's tokens {tokenizer.decode(template)!r} are not its system prompt"
    after_system = tokenizer.apply_chat_template(system + messages[:1])["input_ids"][len(own):]
    user = ids[segments[1].start:segments[1].end]
    assert user == after_system, f"the user's tokens are {tokenizer.decode(user)!r}, not its message's"
    given = chat(tokenizer, [{"role": "system", "content": "Be brief."}] + messages)
    assert [s.role for s in given.segments] == ["system", "user", "assistant"], "a given system prompt is a message"


def test_tokens_the_template_adds_on_its_own_are_labelled_template(tiny_llama_dir: object) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)  # a copy: the shared tiny Llama keeps its template
    tokenizer.chat_template = OWN_SYSTEM_PROMPT
    _check_template_segment(tokenizer, DEFAULT_SYSTEM)


def test_chat_refuses_what_it_cannot_do(tiny_gpt2: object, tiny_llama: object) -> None:
    with pytest.raises(ValueError, match="no chat template"):
        chat(tiny_gpt2.tokenizer, _messages())
    with pytest.raises(ValueError, match="`role` has to be one of"):
        chat(tiny_llama.tokenizer, [{"role": "robot", "content": "hi"}])
    with pytest.raises(ValueError, match="at least one message"):
        chat(tiny_llama.tokenizer, [])
    for not_a_list in (5, 5.5, True, "Hi", {"role": "user", "content": "Hi"}):
        with pytest.raises(ValueError, match=re.escape("`messages` has to be a list of messages like [")):
            chat(tiny_llama.tokenizer, not_a_list)


# --- HTML built safely ----------------------------------------------------------------------------


def test_chips_and_details_escape_every_text(tiny_gpt2: object) -> None:
    hostile = '<img src=x onerror="alert(1)"> & </span>'
    result = tk.tokenize(tiny_gpt2.tokenizer, hostile)
    chips = [g.to_dict() for g in result.singles()]
    page = tokenizer_tab.chips_html(chips, show_whitespace=True)
    assert "<img" not in page and "</span> &" not in page, "token text reached the page unescaped"
    assert page.count('class="tok-chip ') == len(chips), "one chip per token"
    assert "tok-a" in page and "tok-b" in page, "neighbours must alternate colours"
    details = tokenizer_tab.details_html(chips[0], hostile)
    assert "<img" not in details and "&lt;" in details, details
    assert str(chips[0]["ids"][0]) in details, "the details must show the id"


def test_whitespace_toggle_marks_spaces_newlines_tabs(tiny_gpt2: object) -> None:
    chips = [g.to_dict() for g in tk.tokenize(tiny_gpt2.tokenizer, "a b\n\tc").singles()]
    labels = re.compile(r'aria-label="[^"]*"')  # screen readers always get the marks
    shown = labels.sub("", tokenizer_tab.chips_html(chips, show_whitespace=True))
    hidden = labels.sub("", tokenizer_tab.chips_html(chips, show_whitespace=False))
    for mark in "·↵→":
        assert mark in shown and mark not in hidden, f"{mark!r} should appear only with whitespace shown"


# --- the endpoints ----------------------------------------------------------------------------------


def test_tokenize_endpoint_matches_the_tokenizer(client: object, tiny_gpt2: object, tiny_llama_dir: object) -> None:
    text = "It was a dark and stormy 🦀"
    answer = client.predict(text, api_name="/tokenize")
    assert answer["ids"] == tiny_gpt2.tokenizer(text)["input_ids"], "endpoint ids differ from the tokenizer"
    assert answer["count"] == len(answer["tokens"]), "count is not the number of tokens"
    assert {"id", "text", "piece", "bytes", "start", "end", "special"} <= set(answer["tokens"][0]), answer["tokens"][0]
    assert " ".join(t["bytes"] for t in answer["tokens"]) == text.encode().hex(" ").upper(), "hex bytes do not add up"
    other = client.predict(text, str(tiny_llama_dir), api_name="/tokenize")
    assert other["tokens"][0]["special"] and other["tokens"][0]["piece"] == "<s>", "the Llama BOS is missing"
    back = client.predict(answer["ids"], api_name="/detokenize")
    assert back["text"] == text and back["ids"] == answer["ids"], back["text"]
    both = client.predict(text, str(tiny_llama_dir), api_name="/compare_tokenizers")
    counts = [entry["count"] for entry in both["counts"]]  # the default model first, then the other
    assert counts == [answer["count"], other["count"]], f"compared counts {both['counts']} differ from /tokenize's"


def test_chat_endpoint_and_errors(client: object, tiny_llama_dir: object) -> None:
    answer = client.predict(_messages(), str(tiny_llama_dir), True, api_name="/chat_template")
    last = answer["segments"][-1]
    assert last["role"] == "generation prompt" and last["end"] == answer["count"], answer["segments"]
    with pytest.raises(Exception, match="at most 10000 characters"):
        client.predict("x" * 10_001, api_name="/tokenize")
    with pytest.raises(Exception, match="no chat template"):
        client.predict(_messages(), "", False, api_name="/chat_template")


# --- the real embedded model ---------------------------------------------------------------------------


@pytest.mark.slow
def test_embedded_ids_spans_and_chat(embedded: object) -> None:
    tokenizer = embedded.tokenizer
    for text in EDGE_TEXTS + ["x" * tk.MAX_CHARACTERS]:
        result = tk.tokenize(tokenizer, text)
        assert result.ids == tokenizer(text)["input_ids"], f"ids differ for {text[:40]!r}"
        offsets = [tuple(o) for o in tokenizer(text, return_offsets_mapping=True)["offset_mapping"]]
        assert [(t.start, t.end) for t in result.tokens] == offsets, f"spans differ from offsets for {text[:40]!r}"
        assert all("\ufffd" not in t.text for t in result.tokens), text
        assert not any(g.to_dict()["partial"] for g in result.merged()), text
        assert tk.detokenize(tokenizer, result.ids).text == text, f"round trip failed for {text[:40]!r}"
    assert next(t for t in tk.tokenize(tokenizer, "<|im_start|>user").tokens).special, "<|im_start|> is special"
    for generation_prompt in (False, True):
        _check_chat(tokenizer, generation_prompt)
    _check_template_segment(tokenizer, "You are a helpful AI assistant named SmolLM, trained by Hugging Face")


@pytest.mark.parametrize(("model", "adds"), [("tiny_gpt2_dir", False), ("tiny_llama_dir", True)])
def test_the_tab_says_when_the_tokenizer_adds_no_special_tokens(request: pytest.FixtureRequest, model: str,
                                                                 adds: bool) -> None:
    """GPT-2's tokenizer adds no BOS or EOS to a text, Llama's adds a BOS: the checkbox matters only for Llama."""
    for checked in (True, False):
        counts = tokenizer_tab._show_text("Hello world", checked, False, False, str(request.getfixturevalue(model)))[1]
        said = 'data-kind="no-special"' in counts
        assert said is not adds, (f"{model} with the box {'' if checked else 'un'}checked: the note on special "
                                  f"tokens is {'shown' if said else 'missing'}: {counts}")
