"""The queue is bounded: a request beyond ``STEPGEN_QUEUE_SIZE`` waiting ones is refused at once, with a message.

A second app is served with a queue of two and one run of an event at a time (two, so that a page's own first
view, two events at once, always finds room): one long generation runs, two wait, a fourth is refused (gradio_client raises ``QueueError``, "Queue is full! Please try again."; the
browser shows Gradio's "This application is currently busy. Please try again."). Once the queue drains, the
same request goes through. Waits follow the jobs' own statuses, never the clock.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import open_view

PROMPT = "It was a dark and stormy night; the"
LONG = {"max_new_tokens": 1000, "min_new_tokens": 1000}
QUEUE = 2
"""The small app's queue: a page's first view sends two events at once, which a queue of one could refuse."""


def test_the_queue_size_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    monkeypatch.delenv("STEPGEN_QUEUE_SIZE", raising=False)
    assert app.queue_kwargs()["max_size"] == app.QUEUE_SIZE, "without STEPGEN_QUEUE_SIZE the default bound is used"
    monkeypatch.setenv("STEPGEN_QUEUE_SIZE", "3")
    assert app.queue_kwargs()["max_size"] == 3, "STEPGEN_QUEUE_SIZE=3 did not bound the queue at 3"
    for bad in ("0", "-2", "many"):
        monkeypatch.setenv("STEPGEN_QUEUE_SIZE", bad)
        with pytest.raises(ValueError, match="`STEPGEN_QUEUE_SIZE` has to be a whole number from 1"):
            app.queue_kwargs()


@pytest.fixture(scope="module")
def small_queue_url(tiny_gpt2_dir: Path) -> object:
    """The app with a queue of :data:`QUEUE` waiting events and one run of each event at a time."""
    os.environ["STEPGEN_MODEL"] = str(tiny_gpt2_dir)
    os.environ["STEPGEN_QUEUE_SIZE"] = str(QUEUE)
    import app

    try:
        demo = app.build_demo()
        demo.queue(**{**app.queue_kwargs(), "default_concurrency_limit": 1})
    finally:
        del os.environ["STEPGEN_QUEUE_SIZE"]
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **app.launch_kwargs())
    yield url.rstrip("/")
    demo.close()


def _until(condition: object, what: str, job: object = None, limit: float = 60.0) -> None:
    """Wait until ``condition()`` holds, following the job's reported status (bounded, so a hang fails)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline or (job is not None and job.done()):
            shown = "" if job is None else f": the job is {job.status().code}, {job.exception()!r}"
            raise AssertionError(f"never saw {what}{shown}")
        time.sleep(0.02)


@contextlib.contextmanager
def full_queue(url: str, model: str) -> Iterator[object]:
    """The small-queue app with one long run going and :data:`QUEUE` waiting: the queue is full until the block
    ends."""
    from gradio_client import Client
    from gradio_client.utils import Status

    client = Client(url, verbose=False)
    running = client.submit(prompt=PROMPT, model=model, api_name="/generate", **LONG)
    waiting: list[object] = []
    try:
        _until(lambda: running.status().code == Status.ITERATING, "the first run streaming", running)
        for _ in range(QUEUE):
            job = client.submit(prompt=PROMPT, model=model, api_name="/generate", **LONG)
            waiting.append(job)
            _until(lambda: job.status().code == Status.IN_QUEUE, "a run waiting in the queue", job)
        yield client
    finally:
        for job in [*reversed(waiting), running]:
            job.cancel()
        _until(lambda: running.done() and all(job.done() for job in waiting), "the cancelled runs end")


def test_a_full_queue_refuses_at_once_with_a_busy_message(small_queue_url: str, long_tiny_dir: Path) -> None:
    from gradio_client.exceptions import AppError
    from gradio_client.utils import QueueError

    model = str(long_tiny_dir)
    with full_queue(small_queue_url, model) as client:
        with pytest.raises((QueueError, AppError)) as caught:
            client.predict(prompt=PROMPT, model=model, max_new_tokens=2, api_name="/generate")
        assert "try again" in str(caught.value).lower(), f"the refusal does not say to try again: {caught.value!s}"
    done = client.predict(prompt=PROMPT, model=model, max_new_tokens=2, api_name="/generate")
    assert done["status"] == "done", f"once the queue drained the same request should run: {done}"


@pytest.mark.browser
def test_a_full_queue_tells_the_page_it_is_busy(small_queue_url: str, long_tiny_dir: Path, browser: object) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_view(page, f"{small_queue_url}/?tab=playground")
        page.wait_for_selector("#pg-run")
        with full_queue(small_queue_url, str(long_tiny_dir)):
            page.locator("#pg-run").click()
            page.wait_for_selector(":text('currently busy')")
            shown = page.locator(":text('currently busy')").first.inner_text()
        assert "try again" in shown.lower(), f"the busy notice does not say to try again: {shown!r}"
    finally:
        context.close()
