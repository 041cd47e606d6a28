"""Where an event shows that it runs: on one component, never on every output it writes.

Gradio (6.31) keeps a loading status for every component an event has ever
shown progress on, and at every status change of any event it hands each of
them to its component again: a search of the whole component tree and a copy
of that component's properties, every time. By default an event shows
progress on all its outputs, so the first view of a page (one event writing
some ninety components) made every later keystroke in a prompt cost the
browser hundreds of milliseconds (``python -m stepgen.bench --browser``
measures it). So every event a page can start names the one component its
progress shows on (:func:`on`), and the outputs themselves never fade while
they update.

The search goes through the tree in page order and stops at the component it
looks for. So the quick events, those that show no progress at all
(:func:`quiet`), all keep their status on one spot: an empty component, never
shown, the first of the page (:func:`one_spot`), found at once. Slow events
(a model loading, a run of many steps) show their progress where the user
looks.

This module is the rule, its measure and that one spot.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import gradio as gr

MAX_TARGETS = 20
"""How many components may show progress in the whole app (each costs the page at every status change)."""


def on(component: Any) -> dict[str, Any]:
    """The keyword argument that makes an event show its progress on ``component`` only."""
    return {"show_progress_on": [component]}


_SPOT: ContextVar[Any] = ContextVar("spot", default=None)


@contextmanager
def one_spot() -> Iterator[gr.HTML]:
    """Inside: the quick events keep their status on one spot, made here (make it first in the page)."""
    spot = gr.HTML(elem_id="progress-spot", js_on_load=None, elem_classes=["stepgen-hidden"])
    token = _SPOT.set(spot)
    try:
        yield spot
    finally:
        _SPOT.reset(token)


def quiet(fallback: Any) -> dict[str, Any]:
    """The keyword arguments of a quick event: no progress shown, its status kept on the page's one spot
    (on ``fallback`` where a tab is built on its own, outside :func:`one_spot`)."""
    return {"show_progress": "hidden", **on(_SPOT.get() or fallback)}


def targets(config: dict[str, Any]) -> dict[int, set[int]]:
    """For each event a page can start (a Blocks config's dependency with a trigger and a Python function),
    the ids of the components its progress shows on."""
    shown: dict[int, set[int]] = {}
    for index, dependency in enumerate(config["dependencies"]):
        if not dependency.get("backend_fn") or not dependency.get("targets"):
            continue
        shown[index] = set(dependency.get("show_progress_on") or dependency["outputs"])
    return shown
