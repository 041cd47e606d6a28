"""From what a caller gives (a prompt or token ids) to token ids the model can read: one road, one rule each.

:func:`prompt_ids` is the road every view and endpoint takes: ``token_ids`` as
given, or else the prompt as the model's tokenizer encodes it (as
``tokenizer(prompt)`` does, special tokens included); never both. The ids are
then held to two rules:

* the vocabulary: an id is one of the model's own, from 0 to one less than the
  rows of its output layer (:attr:`~stepgen.loading.LoadedModel.vocab_size`),
  see :func:`check_ids`;
* the context window: there is at least one token, and the tokens, with the
  ``room`` a caller still needs for the tokens it will add, fit
  :attr:`~stepgen.loading.LoadedModel.context_length`, see :func:`check_context`.

This module neither runs the model nor decides what comes next.
"""

from __future__ import annotations

from typing import Any

from stepgen.tokenize import check_unicode

NO_TOKEN = "There is no token to continue from: type a prompt (or give `token_ids`)."


def as_ids(ids: Any, name: str = "token_ids") -> list[int]:
    """The ids as a list of ints (whole floats accepted), or a ValueError naming ``name`` and the first bad one."""
    if isinstance(ids, (str, bytes)) or not hasattr(ids, "__iter__"):
        raise ValueError(f"`{name}` has to be a list of integers, but is {ids!r}")
    checked: list[int] = []
    for token_id in ids:
        if isinstance(token_id, float) and token_id.is_integer():
            token_id = int(token_id)
        if isinstance(token_id, bool) or not isinstance(token_id, int):
            raise ValueError(f"`{name}` has to be a list of integers, but holds {token_id!r}")
        checked.append(token_id)
    return checked


def check_context(
    loaded: Any, n_tokens: int, *, room: int = 0, what: str = "text", advice: str = "shorten it",
) -> None:
    """Refuse, with a message, no tokens at all, or more than fit the context window with ``room`` to spare."""
    if n_tokens == 0:
        raise ValueError(NO_TOKEN)
    if n_tokens + room > loaded.context_length:
        more = {0: "", 1: " and needs room for at least one more"}.get(room, f" and needs room for {room} more")
        raise ValueError(
            f"The {what} is {n_tokens} tokens long, but {loaded.name} reads at most {loaded.context_length} tokens "
            f"(its context window){more}; {advice}."
        )


def check_ids(loaded: Any, ids: Any, *, room: int = 0, advice: str = "shorten it") -> list[int]:
    """The ids as a list of ints, or a ValueError naming the first one the model does not know (or the window)."""
    checked = as_ids(ids)
    vocab = loaded.vocab_size
    for token_id in checked:
        if not 0 <= token_id < vocab:
            raise ValueError(
                f"`token_ids` has to hold ids from 0 to {vocab - 1} ({loaded.name}'s vocabulary), but holds {token_id}"
            )
    check_context(loaded, len(checked), room=room, advice=advice)
    return checked


def prompt_ids(
    loaded: Any, prompt: str = "", token_ids: Any = None, *, room: int = 0, what: str = "text",
) -> list[int]:
    """The ids to continue: ``token_ids`` as given, else the prompt as the model's tokenizer encodes it; checked."""
    if token_ids is not None and (not isinstance(token_ids, (list, tuple)) or len(token_ids) > 0):
        if prompt:
            raise ValueError("Give either `prompt` or `token_ids`, not both.")
        return check_ids(loaded, token_ids, room=room)
    ids = list(loaded.tokenizer(check_unicode("prompt", prompt or ""))["input_ids"])
    check_context(loaded, len(ids), room=room, what=what)
    return ids
