"""``python -m stepgen.bench --browser``: how the page feels, measured in Chromium on a warm server.

Starts ``python app.py`` on the embedded model in a subprocess, opens it in
Debian's Chromium with Playwright, and reads the browser's own measures: long
tasks (``PerformanceObserver`` ``longtask``) while typing in every prompt and
dragging every slider, each tab's first view (from the click, as the page got
it, until its events have answered and two frames are drawn), the cumulative
layout shift (``layout-shift`` entries without recent input, with the elements
that moved), and the Step tab's click-to-text latency (timed in the page, from
the click event to the first frame showing the new text) against its budget:
the bare step (the model's work, timed in this process) plus Gradio's own round
trip (a trivial endpoint, ``/models``, through ``gradio_client``).

An event has answered once its ``process_completed`` message has reached the
page (read beside the page's own reading of its stream of answers), which does
not depend on whether the event shows progress. This module measures; it changes nothing, and it imports
neither gradio nor the app (the server is another process; the bare step loads
the model here). Figures from a shared machine are
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
TABS = ("Tokenizer", "Next token", "Step by step", "generate() playground", "Compare strategies")
OBSERVE = """
window.__longtasks = []; window.__cls = 0; window.__shifts = [];
new PerformanceObserver((list) => { for (const e of list.getEntries())
  window.__longtasks.push({start: e.startTime, duration: e.duration}); }).observe({type: 'longtask', buffered: true});
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) {
  window.__cls += e.value;
  window.__shifts.push({value: e.value, at: e.startTime, sources: (e.sources || []).map(s => {
    const node = s.node && (s.node.closest ? s.node.closest('[id]') : s.node.parentElement?.closest('[id]'));
    return node ? node.id : String(s.node?.nodeName); })}); } }).observe({type: 'layout-shift', buffered: true});
// the time of the last click on a button, as the page received it
document.addEventListener('click', (e) => { window.__clickedAt = e.timeStamp; }, true);
"""
SETTLED = """() => [...document.querySelectorAll('[data-testid=status-tracker]')]
    .every(t => t.classList.contains('hide') || t.offsetParent === null)"""
FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now()))))"
"""Resolves once the page has drawn two frames: what a response changed is on screen (returns the time)."""
WATCH = """([selector, before]) => { window.__changedMs = null;
    const shown = () => document.querySelector(selector)?.innerText ?? '';
    const box = document.querySelector(selector.split(' ')[0]);
    const watch = new MutationObserver(() => { if (shown() !== before) { watch.disconnect();
        requestAnimationFrame(() => { window.__changedMs = performance.now() - window.__clickedAt; }); } });
    watch.observe(box, {childList: true, subtree: true, characterData: true});
}"""
"""Arms ``window.__changedMs``: ms from the last click the page received to the first frame after the text
of ``selector`` (``#box inner``: watched under ``#box``) changed."""


STEP_TEXT = "#step-text .step-text"
"""The Step tab's text itself (its box also holds Gradio's hidden progress tracker, whose text changes)."""


EVENTS = """
if (!window.__queue) {
  const queue = window.__queue = {joining: 0, pending: new Set(), done: new Set()};
  const fetched = window.fetch.bind(window);
  const read = async (body) => {  // the page's stream of answers, read beside the page
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = '';
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      const lines = (rest + value).split('\\n');
      rest = lines.pop();
      for (const line of lines) {
        if (!line.startsWith('data:')) continue;
        try {
          const message = JSON.parse(line.slice(5));
          if (message.msg === 'process_completed' && message.event_id) {
            queue.done.add(message.event_id); queue.pending.delete(message.event_id);
          }
        } catch (error) {}
      }
    }
  };
  window.fetch = async (...args) => {
    const url = String(args[0]?.url ?? args[0]);
    if (url.includes('/queue/join')) {
      queue.joining += 1;
      try {
        const response = await fetched(...args);
        try {
          const id = (await response.clone().json())?.event_id;
          if (id && !queue.done.has(id)) queue.pending.add(id);
        } catch (error) {}
        return response;
      } finally { queue.joining -= 1; }
    }
    const response = await fetched(...args);
    if (url.includes('/queue/data') && response.body) read(response.clone().body).catch(() => {});
    return response;
  };
}
"""
"""Counts the page's events in the page itself: each event joined to Gradio's queue is pending until its
``process_completed`` message arrives on the page's stream of answers. (The stream itself is no measure:
Gradio 6.31 may open a new one just as the last event completes, which then stays open with heartbeats.)"""
ANSWERED = "() => window.__queue.joining === 0 && window.__queue.pending.size === 0"


class QueueRequests:
    """The page's events sent to Gradio's queue and not yet answered: an event has answered once its
    ``process_completed`` message has arrived (the browser tests wait with it too: for a page's first view,
    before they act on it). Made before the page opens the app."""

    def __init__(self, page: Any) -> None:
        self.joined = 0
        """How many events the page has sent to the queue so far."""
        page.add_init_script(EVENTS)
        page.on("request", self._started)

    def _started(self, request: Any) -> None:
        self.joined += "/queue/join" in request.url

    def sent(self, page: Any, after: int, within_ms: int = 5000) -> None:
        """Until the page has sent an event since the count was ``after`` (an edit's event may start a
        moment after the edit), or ``within_ms`` have passed (an edit that starts none)."""
        for _ in range(within_ms // 10):
            if self.joined > after:
                return
            page.wait_for_timeout(10)

    def wait(self, page: Any, within_s: float = 120) -> None:
        """Until every event has answered, then two frames drawn, and still every one (a chained event has
        had its chance to start). Raises TimeoutError, naming what is still pending, after ``within_s``."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        deadline = time.monotonic() + within_s
        while True:
            try:
                page.wait_for_function(ANSWERED, timeout=max(1.0, deadline - time.monotonic()) * 1000)
            except PlaywrightTimeout:
                pending = page.evaluate("() => ({joining: window.__queue.joining, "
                                        "pending: [...window.__queue.pending]})")
                raise TimeoutError(f"events of the page still unanswered after {within_s:.0f} s: {pending}") from None
            page.wait_for_function(SETTLED)
            page.evaluate(FRAMES)
            if page.evaluate(ANSWERED):
                return


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


def _interact(page: Any, requests: QueueRequests) -> tuple[float, float]:
    """Type into every visible prompt and drag every visible slider; the longest task (ms) for each."""
    typing = dragging = 0.0
    for box in page.locator("textarea:visible:not([disabled]):not([readonly])").all():
        since = page.evaluate("performance.now()")
        box.click()
        page.keyboard.press("End")
        page.keyboard.type(" and the", delay=60)
        last = requests.joined
        page.keyboard.type("n")
        requests.sent(page, last)  # the last keystroke's answer is part of the measure
        requests.wait(page)
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
        requests.wait(page)
        dragging = max(dragging, _longest_task_since(page, since))
    return typing, dragging


def _first_view(page: Any, requests: QueueRequests, name: str) -> float:
    """Seconds from the click on tab ``name`` (as the page received it) until its view is drawn and no event
    it started is still open."""
    page.get_by_role("tab", name=name, exact=True).click()
    requests.wait(page)
    return (page.evaluate(FRAMES) - page.evaluate("window.__clickedAt")) / 1000


def _step_latency(page: Any, requests: QueueRequests) -> float:
    """Median ms from a click on "Greedy step" (as the page received it) to the first frame showing the new text."""
    page.get_by_role("tab", name="Step by step", exact=True).click()
    requests.wait(page)
    times = []
    for _ in range(7):
        before = page.locator(STEP_TEXT).inner_text()
        page.evaluate(WATCH, [STEP_TEXT, before])
        page.get_by_role("button", name="Greedy step").click()
        times.append(page.wait_for_function("() => window.__changedMs").json_value())
        requests.wait(page)
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


def _bare_step() -> float:
    """Median ms of one greedy step of the embedded model in this process, the text growing a token each time
    (as clicks on "Greedy step" grow it): the model's work alone."""
    from stepgen import stepping
    from stepgen.inputs import prompt_ids
    from stepgen.registry import get_model
    from stepgen.settings import DecodingSettings

    loaded = get_model("embedded")
    ids = prompt_ids(loaded, "It was a dark and stormy")
    times = []
    for _ in range(8):
        started = time.perf_counter()
        ids = list(stepping.step(loaded, ids, DecodingSettings(), "greedy").ids)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])  # the first fills the prefix store


def _per_tab(values: dict[str, float], unit: str) -> str:
    return ", ".join(f"{name} {value:.0f} {unit}" if unit == "ms" else f"{name} {value:.2f} {unit}"
                     for name, value in values.items())


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
            requests = QueueRequests(page)
            page.goto(url)  # warms the server: the model, every tab's first computation
            page.wait_for_selector("#model-status :text('Serving')")
            requests.wait(page)
            page.reload()
            page.wait_for_selector("#model-status :text('Serving')")
            requests.wait(page)
            views: dict[str, float] = {}
            typed: dict[str, float] = {}
            dragged: dict[str, float] = {}
            for name in TABS:
                views[name] = _first_view(page, requests, name)
                typed[name], dragged[name] = _interact(page, requests)
            typing, dragging, first_view = max(typed.values()), max(dragged.values()), max(views.values())
            shift = page.evaluate("window.__cls")
            shifts = page.evaluate("window.__shifts")
            click = _step_latency(page, requests)
            browser.close()
        trivial, step = _api_times(url)
    finally:
        server.terminate()
        server.wait(timeout=30)
    bare = _bare_step()
    moved = sorted({source for entry in shifts for source in entry["sources"]})
    return [
        Figure("browser_longest_task_typing", typing, "ms", target="<= 100",
               note="the longest task while typing in every prompt of every tab, until every answer is drawn: "
                    + _per_tab(typed, "ms")),
        Figure("browser_longest_task_dragging", dragging, "ms", target="<= 100",
               note="the longest task while dragging every slider of every tab (20 moves each): "
                    + _per_tab(dragged, "ms")),
        Figure("browser_first_view", first_view, "s", target="<= 1",
               note="the slowest tab from its click until it is drawn and its events have answered (warm server): "
                    + _per_tab(views, "s")),
        Figure("browser_layout_shift", shift, "", target="<= 0.1",
               note="cumulative layout shift of the session" + (f"; moved: {', '.join(moved)}" if moved else "")),
        Figure("browser_step_click", click, "ms", note="Step tab: click on Greedy step until the new text is drawn"),
        Figure("bare_step", bare, "ms", note="one greedy step of the embedded model in-process: the model's work"),
        Figure("api_round_trip", trivial, "ms", note="/models through gradio_client: Gradio's own round trip"),
        Figure("api_step", step, "ms", note="one greedy /step through gradio_client: model work + round trip"),
        Figure("browser_step_click_over_budget", click - bare - trivial, "ms", target="<= 20",
               note="the click's latency beyond the bare step plus Gradio's round trip"),
    ]
