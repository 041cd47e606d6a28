"""Work stops when nobody waits: a tab closed in the middle of a generation or an auto-step run.

A real page starts a long run on the long tiny model and is closed while tokens stream in. The server's work
on it must end within 3 s (the generate() worker thread ends; the auto-step loop is closed), the model is not
called again afterwards, and the next user's run on another page goes through. The forward calls of the long
model are counted with a hook (the app runs in this process): a steadier witness than CPU time on a shared
machine. Waits follow events (threads ending, the loop closing, the page showing a result), bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import open_view, set_number, wait_until_settled

from stepgen.registry import get_model

pytestmark = pytest.mark.browser


@pytest.fixture
def forward_calls(long_tiny_dir: Path) -> Iterator[list[int]]:
    """The number of forward passes of the long tiny model so far (the app's own instance)."""
    calls = [0]

    def count(*_: object) -> None:
        calls[0] += 1

    handle = get_model(str(long_tiny_dir)).model.register_forward_hook(count)
    yield calls
    handle.remove()


def _workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "stepgen-generate"]


def _page(browser: object, app_url: str, tab: str) -> tuple[object, object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    open_view(page, f"{app_url}/?tab={tab}")
    return context, page


def _load(page: object, model: str) -> None:
    page.locator("#model-picker input").fill(model)
    page.locator("#load-model").click()
    page.wait_for_function("() => document.querySelector('#model-status').innerText.includes('context 2048')")


def _next_user_generates(browser: object, app_url: str) -> None:
    """Another page, on the app's default model, runs a short generation to the end."""
    context, page = _page(browser, app_url, "playground")
    try:
        wait_until_settled(page, "#playground-tab")
        set_number(page, "pg-max-new-tokens", "5")
        page.locator("#pg-run").click()
        page.wait_for_function("() => /Done/.test(document.querySelector('#pg-status').innerText)")
    finally:
        context.close()


def test_closing_the_tab_mid_generation_ends_the_work(browser: object, app_url: str, long_tiny_dir: Path,
                                                      forward_calls: list[int]) -> None:
    context, page = _page(browser, app_url, "playground")
    _load(page, str(long_tiny_dir))
    wait_until_settled(page, "#playground-tab")
    set_number(page, "pg-max-new-tokens", "1000")
    set_number(page, "pg-min-new-tokens", "1000")
    page.locator("#pg-run").click()
    page.wait_for_function("() => document.querySelectorAll('#pg-output .pg-tok').length >= 5")
    workers = _workers()
    assert workers, "no generate() worker runs while the page shows tokens streaming"
    context.close()
    for worker in workers:
        worker.join(timeout=3)
    assert not _workers(), "generate() still runs 3 s after its tab was closed"
    assert forward_calls[0] < 1000, f"the run reached its end ({forward_calls[0]} forward passes): it was not stopped"
    after = forward_calls[0]
    _next_user_generates(browser, app_url)
    assert forward_calls[0] == after, f"the abandoned run went on: {forward_calls[0] - after} more forward passes"


def test_closing_the_tab_mid_auto_step_ends_the_loop(browser: object, app_url: str, long_tiny_dir: Path,
                                                     forward_calls: list[int],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from ui import step_tab

    closed = threading.Event()
    steps = step_tab.auto_steps

    def watched(*args: object, **kwargs: object) -> Iterator[object]:
        try:
            yield from steps(*args, **kwargs)
        finally:
            closed.set()

    monkeypatch.setattr(step_tab, "auto_steps", watched)
    context, page = _page(browser, app_url, "step")
    _load(page, str(long_tiny_dir))
    page.wait_for_selector("#step-text .step-tok")
    start = page.locator("#step-text .step-tok").count()
    page.locator("#step-n input").fill("500")  # at least 25 s of steps: the tab is closed long before the end
    page.locator("#step-auto").click()
    page.wait_for_function(f"document.querySelectorAll('#step-text .step-tok').length >= {start + 3}")
    context.close()
    assert closed.wait(timeout=3), "the auto-step loop still runs 3 s after its tab was closed"
    after = forward_calls[0]
    _next_user_generates(browser, app_url)
    assert forward_calls[0] == after, f"the abandoned auto-step went on: {forward_calls[0] - after} more passes"
