"""Step a session many times in a row, until a count, the end-of-sequence token, the context window or Stop.

:func:`auto_steps` is a plain generator over :func:`stepgen.stepping.advance`:
it yields the new session and the step's result after every step, so a caller
can show the text as it grows. It stops

* after ``count`` steps (from 1 to :data:`MAX_AUTO_STEPS`),
* after the model wrote its end-of-sequence token,
* when the text fills the model's context window,
* when ``stop`` is set (a ``threading.Event`` or a callable), checked before every step.

``interval`` paces it: a step takes at least that many seconds, so a small
model does not finish before anyone could watch (or stop) it. This module
neither renders anything nor keeps any state: the session goes in and comes
out as plain data.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from stepgen.kvcache import KVStore
from stepgen.checks import whole_in_range
from stepgen.settings import DecodingSettings
from stepgen.stepping import Session, StepResult, advance

MAX_AUTO_STEPS = 500
"""The most steps one auto-step run takes (server work is shared)."""


def check_count(count: Any) -> int:
    """``count`` as an int from 1 to :data:`MAX_AUTO_STEPS`, or a ValueError naming the control ``N``."""
    return whole_in_range("N", count, 1, MAX_AUTO_STEPS, what="a whole number")


def _stopped(stop: threading.Event | Callable[[], bool] | None) -> bool:
    if stop is None:
        return False
    return stop.is_set() if isinstance(stop, threading.Event) else bool(stop())


def auto_steps(
    loaded: Any, session: Session, settings: DecodingSettings, strategy: str, count: Any, *,
    stop: threading.Event | Callable[[], bool] | None = None, interval: float = 0.0, top_n: int = 10,
    store: KVStore | None = None,
) -> Iterator[tuple[Session, StepResult]]:
    """Take up to ``count`` steps by ``strategy`` on the current branch, yielding (session, result) after each.

    The count is checked at the call, before any step."""
    count = check_count(count)
    return _run(loaded, session, settings, strategy, count, stop, interval, top_n, store)


def _run(
    loaded: Any, session: Session, settings: DecodingSettings, strategy: str, count: int,
    stop: threading.Event | Callable[[], bool] | None, interval: float, top_n: int, store: KVStore | None,
) -> Iterator[tuple[Session, StepResult]]:
    eos = loaded.tokenizer.eos_token_id
    for _ in range(count):
        if _stopped(stop):
            return
        started = time.perf_counter()
        session, result = advance(loaded, session, settings, strategy, top_n=top_n, store=store)
        pause = max(0.0, interval - (time.perf_counter() - started))
        if isinstance(stop, threading.Event):
            stop.wait(pause)  # Stop ends the pause at once
        else:
            time.sleep(pause)
        yield session, result
        if result.step.token_id == eos or len(session.ids) >= loaded.context_length:
            return
