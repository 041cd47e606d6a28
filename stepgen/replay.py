"""Rebuild a stepping session from the token paths a link carries: every branch, and which one is current.

A shared Step view is its prompt, its settings and, for each branch, the token
ids written after the prompt. :func:`rebuild` replays them: each branch takes
the steps it shares with the branch before it that it has the longest start in
common with (its parent), and appends the rest one explicit token at a time
(strategy ``token``), so every number it shows is recomputed for the settings
on screen. A token the model cannot take ends that branch there, and the
notice says which one of the link was left out and why.

This module knows no URL and no widget (see ``ui/deeplinks.py``); it only calls
:mod:`stepgen.stepping`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from stepgen import stepping
from stepgen.settings import DecodingSettings

MAX_TOKENS = 1024
"""The most tokens a link may make the server replay, over all its branches."""


def rebuild(loaded: Any, prompt_ids: Sequence[int], branches: Sequence[Sequence[int]], *, current: int = 0,
            settings: DecodingSettings | None = None, seed: int = 0, top_n: int = 10
            ) -> tuple[stepping.Session, str]:
    """The session whose branches write ``branches`` (token ids after the prompt) with branch ``current``
    selected, and a notice of what could not be replayed ("" when everything was)."""
    settings = settings or DecodingSettings()
    session = stepping.start(loaded.name, list(prompt_ids), seed)
    start = len(session.prompt_ids)
    built: list[stepping.Branch] = []
    budget = MAX_TOKENS
    notice = ""
    for number, path in enumerate(branches):
        path = list(path)
        parent, shared = None, 0
        for index, other in enumerate(built):
            common = stepping.divergence(tuple(other.ids[start:]), tuple(path))
            if common > shared or parent is None:
                parent, shared = index, common
        base = built[parent] if parent is not None else session.branch
        ids, steps = base.ids[:start + shared], base.steps[:shared]
        for index, token_id in enumerate(path[shared:], start=shared):
            if budget <= 0:
                notice = notice or f"The link holds more than {MAX_TOKENS} tokens: the rest was left out."
                break
            try:
                result = stepping.step(loaded, ids, settings, "token", token_id=token_id, top_n=top_n)
            except ValueError as error:
                where = f"branch {number + 1}'s " if len(branches) > 1 else ""
                notice = notice or (f"The link's `path` stops here: {where}token {index + 1} ({token_id!r}) was "
                                    f"left out, with the {len(path) - index - 1} after it. {error}")
                break
            ids, steps, budget = result.ids, steps + (result.step,), budget - 1
        if built and any(branch.ids == ids for branch in built):
            continue  # the same path twice (or cut to one that exists): one branch
        fork_at = start + shared if parent is not None and shared < len(path) else None
        built.append(stepping.Branch(ids=ids, steps=steps, parent=parent if built else None, fork_at=fork_at))
    if not built:
        built = [session.branch]
    return replace(session, branches=tuple(built), current=min(max(current, 0), len(built) - 1)), notice
