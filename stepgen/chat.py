"""A conversation through a tokenizer's chat template, and which tokens each message made.

``chat`` renders the messages with ``apply_chat_template`` (its ids are the
template's own) and tells which tokens belong to which message by slicing
token ids: it tokenizes growing prefixes of the conversation, never splitting
the rendered string on markers. Tokens a template puts before the first
message on its own (a BOS, or a default system prompt when the conversation
has none, as SmolLM2's does) belong to no message: they are a segment of their
own, role ``template``. Each token's span in the rendered text comes from
:func:`stepgen.tokenize.token_spans`.

This module writes no template of its own and loads no model; plain texts are
:mod:`stepgen.tokenize`'s job.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stepgen.tokenize import Tokenization, adds_prefix_space, check_text, lone_surrogate, token_spans

CHAT_ROLES = ("system", "user", "assistant")
TEMPLATE_ROLE = "template"
"""The role of the tokens a template adds before the first message on its own."""


@dataclass(frozen=True)
class Segment:
    """The tokens ``[start, end)`` a chat template made for one message (or the generation prompt, or on its own)."""

    role: str
    start: int
    end: int


@dataclass(frozen=True)
class ChatTokenization:
    """A rendered conversation, its tokens, and the tokens of each message."""

    tokenization: Tokenization
    """The rendered template (``text``) and its tokens, exactly as ``apply_chat_template`` tokenizes it."""
    segments: tuple[Segment, ...]
    """Which tokens each message produced, after the ``template`` segment when the template adds tokens of its
    own before the first message; empty when the template does not grow by appending."""

    def to_dict(self) -> dict[str, Any]:
        out = self.tokenization.to_dict()
        out["segments"] = [{"role": s.role, "start": s.start, "end": s.end} for s in self.segments]
        return out


def check_messages(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    if not messages:
        raise ValueError("`messages` has to hold at least one message, but is empty")
    if not isinstance(messages, (list, tuple)):
        raise ValueError(f'`messages` has to be a list of messages like [{{"role": "user", "content": "Hi"}}], '
                         f"but is {messages!r}")
    clean = []
    for position, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in CHAT_ROLES:
            raise ValueError(f"`role` has to be one of {', '.join(CHAT_ROLES)}, but is {role!r} (message {position})")
        content = message.get("content", "")
        if not isinstance(content, str):
            raise ValueError(f"`content` has to be a string, but is {type(content).__name__} (message {position})")
        problem = lone_surrogate(content)
        if problem:  # not check_unicode: the message names its position in the conversation too
            raise ValueError(f"`content` has to be valid Unicode, but {problem} (message {position})")
        clean.append({"role": role, "content": content})
    check_text("".join(m["content"] for m in clean))
    return clean


def _template_ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=add_generation_prompt, return_dict=True
    )
    return [int(i) for i in encoded["input_ids"]]


def _template_opening(tokenizer: Any, first: dict[str, str], alone: list[int]) -> int:
    """How many tokens at the start of ``alone`` (the ids of the ``first`` message alone) the template adds.

    The message's own tokens are found as they look where it is not first: the ids of ``[first, first]``
    after those of ``[first]``. When ``alone`` ends with them, what comes before is the template's own (a
    default system prompt, a BOS). Both copies are last, so templates that treat the last message apart
    agree. A template that refuses the probe (roles that must alternate) or renders the copy otherwise
    gives 0: the first message then keeps those tokens.
    """
    try:
        twice = _template_ids(tokenizer, [first, first], False)
    except Exception:  # a template may raise on any conversation it does not expect; then we cannot tell
        return 0
    own = twice[len(alone):]
    if twice[: len(alone)] != alone or not 0 < len(own) < len(alone) or alone[-len(own):] != own:
        return 0
    return len(alone) - len(own)


def chat(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> ChatTokenization:
    """A conversation through the tokenizer's chat template: the rendered text, its tokens, and each message's tokens.

    The ids are ``apply_chat_template``'s own. Message boundaries come from token ids: the ids of the first
    k messages are a prefix of the ids of the first k + 1, and the difference belongs to message k + 1.
    Templates that rewrite earlier messages break that; then no segments are given. Tokens the template adds
    before the first message on its own form a ``template`` segment (see :func:`_template_opening`).
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("This model has no chat template; pick a chat model (the embedded model has one).")
    messages = check_messages(messages)
    rendered = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    ids = _template_ids(tokenizer, messages, add_generation_prompt)
    boundaries = [0]
    stages = [_template_ids(tokenizer, messages[:k], False) for k in range(1, len(messages) + 1)]
    roles = [m["role"] for m in messages]
    if add_generation_prompt:
        stages.append(ids)
        roles.append("generation prompt")
    segments: tuple[Segment, ...] = ()
    if all(stage[: len(before)] == before for before, stage in zip([[]] + stages, stages)) and stages[-1] == ids:
        opening = _template_opening(tokenizer, messages[0], stages[0])
        if opening:
            boundaries.append(opening)
            roles.insert(0, TEMPLATE_ROLE)
        boundaries += [len(stage) for stage in stages]
        segments = tuple(Segment(role, a, b) for role, a, b in zip(roles, boundaries, boundaries[1:]))
    fast = bool(getattr(tokenizer, "is_fast", False))
    offsets = None
    if fast:
        encoding = tokenizer(rendered, add_special_tokens=False, return_offsets_mapping=True)
        if [int(i) for i in encoding["input_ids"]] == ids:
            offsets = [tuple(pair) for pair in encoding["offset_mapping"]]
    tokens, spans_from = token_spans(tokenizer, ids, rendered, offsets, prefix_space=adds_prefix_space(tokenizer))
    return ChatTokenization(Tokenization(rendered, tokens, spans_from, add_special_tokens=False), segments)
