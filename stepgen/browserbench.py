"""``python -m stepgen.bench --browser``: how the page feels, measured in Chromium on a warm server.

Starts ``python app.py`` on the embedded model in a subprocess, opens it in
Debian's Chromium with Playwright, and reads the browser's own measures: long
tasks (``PerformanceObserver`` ``longtask``) while typing in every prompt and
dragging every slider, each tab's first view (tab click until no output shows
Gradio's progress tracker), the cumulative layout shift (``layout-shift``
entries without recent input), and the Step tab's click-to-text latency against
the same step asked of ``/step`` through ``gradio_client`` (the model's work
plus Gradio's round trip) and a trivial endpoint (``/models``, the round trip
alone).

This module measures; it changes nothing, and it imports neither gradio nor the
app (the server is another process). Figures from a shared machine are
inflated by whatever else runs there.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
TABS = ("Tokenizer", "Next token", "Step by step", "generate() playground")
OBSERVE = """
window.__longtasks = []; window.__cls = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries())
  window.__longtasks.push({start: e.startTime, duration: e.duration}); }).observe({type: 'longtask', buffered: true});
new PerformanceObserver((list) => { for (const e of list.getEntries())
  if (!e.hadRecentInput) window.__cls += e.value; }).observe({type: 'layout-shift', buffered: true});
"""
SETTLED = """() => [...document.querySelectorAll('[data-testid=status-tracker]')]
    .every(t => t.classList.contains('hide') || t.offsetParent === null)"""
TEXT_CHANGED = """([selector, before]) => (document.querySelector(selector)?.innerText ?? '') !== before"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _serve() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "STEPGEN_MODEL": os.environ.get("STEPGEN_MODEL", "embedded")}
    server = subprocess.Popen([sys.executable, str(root / "app.py"), "--port", str(port)], cwd=root, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return server, url
        except OSError:
            if server.poll() is not None:
                raise SystemExit("bench: the app did not start (run `python app.py` to see why)")
            time.sleep(0.5)
    server.kill()
    raise SystemExit("bench: the app did not answer within 5 minutes")


def _longest_task_since(page: Any, since: float) -> float:
    return page.evaluate("(since) => Math.max(0, ...window.__longtasks.filter(t => t.start >= since)"
                         ".map(t => t.duration))", since)


def _interact(page: Any) -> tuple[float, float]:
    """Type into every visible prompt and drag every visible slider; the longest task (ms) for each."""
    typing = dragging = 0.0
    for box in page.locator("textarea:visible:not([disabled]):not([readonly])").all():
        since = page.evaluate("performance.now()")
        box.click()
        page.keyboard.press("End")
        page.keyboard.type(" and then", delay=60)
        page.wait_for_function(SETTLED)
        typing = max(typing, _longest_task_since(page, since))
    for slider in page.locator("input[type=range]:visible:not([disabled])").all():
        area = slider.bounding_box()
        if not area:
            continue
        since = page.evaluate("performance.now()")
        y = area["y"] + area["height"] / 2
        page.mouse.move(area["x"] + 2, y)
        page.mouse.down()
        for move in range(1, 21):
            page.mouse.move(area["x"] + area["width"] * move / 21, y)
            page.wait_for_timeout(30)  # a hand's pace between moves, not a wait for the page
        page.mouse.up()
        page.wait_for_function(SETTLED)
        dragging = max(dragging, _longest_task_since(page, since))
    return typing, dragging


def _step_latency(page: Any) -> float:
    """Median ms from a click on "Greedy step" to the text on screen changing."""
    page.get_by_role("tab", name="Step by step", exact=True).click()
    page.wait_for_function(SETTLED)
    times = []
    for _ in range(7):
        before = page.locator("#step-text").inner_text()
        started = time.perf_counter()
        page.get_by_role("button", name="Greedy step").click()
        page.wait_for_function(TEXT_CHANGED, arg=["#step-text", before], polling="raf")
        times.append((time.perf_counter() - started) * 1000)
        page.wait_for_function(SETTLED)
    return statistics.median(times)


def _api_times(url: str) -> tuple[float, float]:
    """Median ms of a trivial endpoint and of one greedy /step, through gradio_client."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    ids = client.predict(text="It was a dark and stormy", api_name="/tokenize")["ids"]

    def median(call: Any) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    trivial = median(lambda: client.predict(api_name="/models"))
    step = median(lambda: client.predict(token_ids=ids, strategy="greedy", api_name="/step"))
    return trivial, step


def run() -> list[Any]:
    from playwright.sync_api import sync_playwright

    from stepgen.bench import Figure

    server, url = _serve()
    figures: list[Figure] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            context.add_init_script(OBSERVE)
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(url)  # warms the server: the model, every tab's first computation
            page.wait_for_selector("#model-status :text('Serving')")
            page.wait_for_function(SETTLED)
            page.reload()
            page.wait_for_selector("#model-status :text('Serving')")
            page.wait_for_function(SETTLED)
            typing = dragging = first_view = 0.0
            for name in TABS:
                started = time.perf_counter()
                page.get_by_role("tab", name=name, exact=True).click()
                page.wait_for_function(SETTLED, polling="raf")
                first_view = max(first_view, time.perf_counter() - started)
                typed, dragged = _interact(page)
                typing, dragging = max(typing, typed), max(dragging, dragged)
            shift = page.evaluate("window.__cls")
            click = _step_latency(page)
            browser.close()
        trivial, step = _api_times(url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return [
        Figure("browser_longest_task_typing", typing, "ms", target="<= 100",
               note="the longest task while typing in every prompt of every tab"),
        Figure("browser_longest_task_dragging", dragging, "ms", target="<= 100",
               note="the longest task while dragging every slider of every tab (20 moves each)"),
        Figure("browser_first_view", first_view, "s", target="<= 1",
               note="the slowest tab from its click until no output shows progress (warm server)"),
        Figure("browser_layout_shift", shift, "", target="<= 0.1", note="cumulative layout shift of the session"),
        Figure("browser_step_click", click, "ms", note="Step tab: click on Greedy step until the text changes"),
        Figure("api_round_trip", trivial, "ms", note="/models through gradio_client: Gradio's own round trip"),
        Figure("api_step", step, "ms", note="one greedy /step through gradio_client: model work + round trip"),
        Figure("browser_step_click_over_api_step", click - step, "ms", target="<= 20",
               note="what the page adds to the step and the round trip"),
    ]
