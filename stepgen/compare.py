"""Strategies side by side: one prompt, one seed, several settings, each run exactly as ``/generate`` runs it.

:func:`compare` turns each settings (a dict of knobs by their transformers
names, or a preset name from :mod:`stepgen.presets`) into a
:class:`~stepgen.request.GenerationRequest` with the knobs common to all and
the one seed, runs it with :func:`stepgen.generation.generate`, and returns
each run's response (:func:`response`, what ``/generate`` returns) with the
numbers that compare columns: sequence log-probability, perplexity, distinct
2-grams (:func:`stepgen.repetition.distinct`), token count, time taken and the
first token where the column leaves the first one.

This module neither validates knobs itself (the request does, with its own
messages) nor renders anything (``ui/compare_tab.py``).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from stepgen.checks import MAX_SEED, given_seed
from stepgen.codegen import python_code
from stepgen.generation import generate
from stepgen.presets import PRESETS, preset_knobs
from stepgen.repetition import distinct
from stepgen.request import GenerationRequest
from stepgen.results import GenerationResult

MAX_COMPARE = 6
"""The most settings one comparison runs (each is a whole generate() call)."""
DEFAULT_SETTINGS: tuple[str | dict[str, Any], ...] = (
    "greedy", "beam search", {"do_sample": True, "temperature": 1.0, "top_k": 50},
    {"penalty_alpha": 0.6, "top_k": 4},
)
"""Greedy, beam search, sampling (with the comparison's seed) and contrastive search."""
LABELS = {2: "sampling", 3: "contrastive search"}
"""Names of the default settings that are not presets, by position."""


def settings_knobs(item: Any, index: int = 0) -> dict[str, Any]:
    """The knobs of one settings: a preset's, or a dict's own (checked later, by the request)."""
    if isinstance(item, str):
        if item not in PRESETS:
            raise ValueError(f"`settings[{index}]` has to be a dict of knobs or one of the presets "
                             f"{', '.join(PRESETS)}, but is {item!r}")
        return preset_knobs(item)
    if not isinstance(item, dict):
        raise ValueError(f"`settings[{index}]` has to be a dict of knobs or a preset name, "
                         f"but is {type(item).__name__}")
    return dict(item)


def label(item: str | dict[str, Any]) -> str:
    """A short name for a settings: the preset's, a known default's, or the knobs it sets."""
    if isinstance(item, str):
        return item
    for index, default in enumerate(DEFAULT_SETTINGS):
        if default == item:
            return LABELS.get(index, str(default))
    return ", ".join(f"{key}={value}" for key, value in item.items() if key not in ("seed", "max_new_tokens"))


def requests(settings: Sequence[Any] | None, seed: Any = None, **common: Any) -> list[GenerationRequest]:
    """One checked request per settings: its knobs, then the ``common`` ones, then the one ``seed``
    (None or -1: one seed is drawn for all, so that sampled columns can be repeated)."""
    if settings is None:
        settings = DEFAULT_SETTINGS
    if isinstance(settings, (str, dict)) or not isinstance(settings, Sequence):
        raise ValueError(f"`settings` has to be a list of settings (dicts of knobs or preset names), "
                         f"but is {type(settings).__name__}")
    if not settings or len(settings) > MAX_COMPARE:
        raise ValueError(f"`settings` has to hold from 1 to {MAX_COMPARE} settings, but holds {len(settings)}")
    seed = given_seed(seed)
    if seed is None:
        seed = secrets.randbelow(MAX_SEED + 1)
    common = {key: value for key, value in common.items() if value is not None}
    out = []
    for index, item in enumerate(settings):
        knobs = {**settings_knobs(item, index), **common, "seed": seed}
        try:
            out.append(GenerationRequest.from_dict(knobs))
        except ValueError as error:
            raise ValueError(f"`settings[{index}]`: {error}") from None
    return out


def response(result: GenerationResult) -> dict[str, Any]:
    """What ``/generate`` returns for a finished run."""
    return {"status": "done", **result.to_dict(), "code": python_code(result)}


def first_difference(ids: Sequence[int], first: Sequence[int]) -> int | None:
    """The first token index where ``ids`` and ``first`` differ (the shorter one's length when one is the
    other's start), or None when they are the same."""
    for index, (a, b) in enumerate(zip(ids, first)):
        if a != b:
            return index
    return None if len(ids) == len(first) else min(len(ids), len(first))


def metrics(result: GenerationResult, first: GenerationResult) -> dict[str, Any]:
    """The numbers of a column (its first sequence): ``logprob``, ``perplexity``, ``distinct_2``, ``tokens``,
    ``seconds`` and ``first_difference`` from the first column's first sequence."""
    sequence = result.sequences[0] if result.sequences else None
    ids = list(sequence.token_ids) if sequence else []
    first_ids = list(first.sequences[0].token_ids) if first.sequences else []
    return {"logprob": sequence.logprob if sequence else None,
            "perplexity": sequence.perplexity if sequence and sequence.tokens else None,
            "distinct_2": distinct(ids, 2), "tokens": len(ids), "seconds": result.seconds,
            "first_difference": first_difference(ids, first_ids)}


def compare(loaded: Any, prompt: str, settings: Sequence[Any] | None = None, seed: Any = None,
            **common: Any) -> dict[str, Any]:
    """Run every settings on ``prompt`` with one seed; ``{"results": [...], "metrics": [...], "labels": [...]}``,
    ``results[i]`` being what ``/generate`` returns for the same prompt, seed and settings."""
    runs = requests(settings, seed, **common)
    results = [generate(loaded, prompt, request) for request in runs]
    return {"results": [response(result) for result in results],
            "metrics": [metrics(result, results[0]) for result in results],
            "labels": [label(item) for item in (settings if settings is not None else DEFAULT_SETTINGS)]}
