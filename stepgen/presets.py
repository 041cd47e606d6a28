"""Named starting points for ``generate()``: the presets, as plain data.

A preset names the knobs that make one decoding method (greedy, beam search,
two kinds of sampling); every knob it does not name goes back to its neutral
value. This module holds data and builds requests from it; it runs nothing and
shows nothing (the playground tab turns these into control values).
"""

from __future__ import annotations

from typing import Any

from stepgen.request import GenerationRequest

PRESETS: dict[str, dict[str, Any]] = {
    "greedy": {"do_sample": False, "num_beams": 1},
    "beam search": {"do_sample": False, "num_beams": 4, "num_return_sequences": 3, "no_repeat_ngram_size": 2,
                    "early_stopping": True, "length_penalty": 1.0},
    "creative sampling": {"do_sample": True, "temperature": 1.2, "top_p": 0.95, "min_p": 0.05},
    "precise sampling": {"do_sample": True, "temperature": 0.3, "top_k": 40, "top_p": 0.9,
                         "repetition_penalty": 1.1},
}
"""Named starting points; every knob a preset does not name goes back to its neutral value."""


def preset(name: str, **keep: Any) -> GenerationRequest:
    """The request for preset ``name`` (``keep`` carries knobs such as ``max_new_tokens`` or ``seed`` over)."""
    if name not in PRESETS:
        raise ValueError(f"`preset` has to be one of {', '.join(PRESETS)}, but is {name!r}")
    return GenerationRequest.from_dict({**PRESETS[name], **keep})
