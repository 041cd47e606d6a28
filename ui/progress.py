"""Where an event shows that it runs: on one component, never on every output it writes.

Gradio (6.31) keeps a loading status for every component an event has ever
shown progress on, and at every status change of any event it hands each of
them to its component again: a search of the whole component tree and a copy
of that component's properties, every time. By default an event shows
progress on all its outputs, so the first view of a page (one event writing
some ninety components) made every later keystroke in a prompt cost the
browser hundreds of milliseconds (``python -m stepgen.bench --browser``
measures it). So every event a page can start names the one component its
progress shows on (:func:`on`), the tabs pick one small output for all their
quick events, and the outputs themselves never fade while they update.

This module is the rule and its measure; it builds no component.
"""

from __future__ import annotations

from typing import Any

MAX_TARGETS = 20
"""How many components may show progress in the whole app (each costs the page at every status change)."""


def on(component: Any) -> dict[str, Any]:
    """The keyword argument that makes an event show its progress on ``component`` only."""
    return {"show_progress_on": [component]}


def targets(config: dict[str, Any]) -> dict[int, set[int]]:
    """For each event a page can start (a Blocks config's dependency with a trigger and a Python function),
    the ids of the components its progress shows on."""
    shown: dict[int, set[int]] = {}
    for index, dependency in enumerate(config["dependencies"]):
        if not dependency.get("backend_fn") or not dependency.get("targets"):
            continue
        shown[index] = set(dependency.get("show_progress_on") or dependency["outputs"])
    return shown
