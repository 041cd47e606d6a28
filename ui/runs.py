"""Each session's long runs (a generation, an auto-step run) and the flag that stops them.

A run registers a ``threading.Event`` under its session and kind while it works,
and checks it at every step; Stop sets it. Stopping by flag, rather than by
cancelling Gradio's event, lets the run end after the step it is in and show
that step: what the page shows is what the session holds. Gradio closing the
run's generator (a closed tab, a cancelled client) sets the flag too, so the
worker stops at its next step. This module knows nothing of what a run does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

_RUNS: dict[tuple[str, str], threading.Event] = {}
"""The stop flag of each session's current run of each kind."""
_LOCK = threading.Lock()


def _key(request: gr.Request | None, kind: str) -> tuple[str, str]:
    return (request.session_hash or "" if request is not None else "", kind)


@contextmanager
def running(request: gr.Request | None, kind: str) -> Iterator[threading.Event]:
    """Register a run of ``kind`` for the request's session, for as long as the block lasts; yields its flag."""
    key = _key(request, kind)
    stop = threading.Event()
    with _LOCK:
        _RUNS[key] = stop
    try:
        yield stop
    finally:
        stop.set()
        with _LOCK:
            if _RUNS.get(key) is stop:
                del _RUNS[key]


def stop(request: gr.Request | None, kind: str) -> None:
    """Stop the session's current run of ``kind`` (if any) at its next step."""
    with _LOCK:
        flag = _RUNS.get(_key(request, kind))
    if flag is not None:
        flag.set()


def active() -> int:
    """How many runs are registered now (for tests: none is left behind)."""
    with _LOCK:
        return len(_RUNS)
