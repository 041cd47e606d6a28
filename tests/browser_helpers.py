"""Waiting in the browser tests: every wait follows an event the page shows, never the speed of the machine.

A browser test may only read a view once the page says it is the view it wants:
a control holds the value typed into it, a chart equals what the endpoint
returns for the same settings, or Gradio's own progress trackers are gone. The
helpers here are those waits, shared by every browser test. They do not drive
a tab (each test file knows its own tab) and they never sleep.
"""

from __future__ import annotations

from collections.abc import Sequence

from playwright.sync_api import TimeoutError as PlaywrightTimeout

from stepgen.browserbench import QueueRequests

SETTLED = """scope => Array.from(document.querySelectorAll(`${scope} [data-testid=status-tracker]`))
    .every(tracker => tracker.classList.contains('hide') || tracker.offsetParent === null)"""
"""True once no output under ``scope`` shows a progress indicator: every event that writes there has answered."""

CHART = """id => { const plot = document.querySelector(`#${id} .js-plotly-plot`);
    return plot?.data ? plot.data.map(trace => Array.from(trace.y)) : null }"""

CHART_IS = """([id, want]) => { const data = document.querySelector(`#${id} .js-plotly-plot`)?.data;
    return !!data && data.length >= want.length
        && want.every((bars, trace) => bars.every((p, i) => Math.abs(data[trace].y[i] - p) < 1e-6)) }"""


def chart(page: object, elem_id: str) -> list[list[float]] | None:
    """The bar heights of each trace of the plotly chart in ``#elem_id`` (None while it draws nothing)."""
    return page.evaluate(CHART, elem_id)


def wait_for_chart(page: object, elem_id: str, *traces: Sequence[float], what: str = "the endpoint") -> None:
    """Wait until the first bars of each trace of the chart in ``#elem_id`` are ``traces`` (to 1e-6).

    Only the response for the settings that produced ``traces`` draws that chart, so a chart still computing,
    or computed for other settings, is never read. On a timeout the failure says what the chart showed.
    """
    want = [list(bars) for bars in traces]
    try:
        page.wait_for_function(CHART_IS, arg=[elem_id, want])
    except PlaywrightTimeout:
        raise AssertionError(f"the chart #{elem_id} never showed what {what} says: it shows {chart(page, elem_id)}, "
                             f"{what} says {want}") from None


SERVING = "() => /Serving/.test(document.querySelector('#model-status')?.innerText ?? '')"
"""True once the status line says which model is serving: the page's load event has answered."""


def open_view(page: object, url: str, serving: str = SERVING) -> None:
    """Open ``url`` in ``page`` and wait until its first view has landed: the status line says ``serving`` (a
    JavaScript test) and every event of the page has answered, so that no answer to the page's
    opening (the view a link restores, computed from the start values) arrives after what a test does."""
    requests = QueueRequests(page)
    page.goto(url)
    page.wait_for_function(serving)
    requests.wait(page)


def wait_until_settled(page: object, scope: str = "", timeout: float | None = None) -> None:
    """Wait until Gradio shows no progress under ``scope`` (a CSS selector; the whole page by default)."""
    page.wait_for_function(SETTLED, arg=scope, timeout=timeout)


def set_number(page: object, elem_id: str, value: str) -> None:
    """Type ``value`` into the number box of the slider or number ``#elem_id`` and wait until the control took it.

    The box is filled and Enter pressed, as a person would; the wait is on the value the control shows
    afterwards (for a slider, its range input too, which follows the component's own value, not the box).
    """
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")
    wait_for_value(page, elem_id, value)


def wait_for_value(page: object, elem_id: str, value: str) -> None:
    """Wait until every input of the control ``#elem_id`` (a number box, a slider's range) holds ``value``."""
    shown = f"() => Array.from(document.querySelectorAll('#{elem_id} input')).map(input => input.value)"
    try:
        page.wait_for_function(f"want => {{ const values = ({shown})(); "
                               "return values.length > 0 && values.every(v => Number(v) === Number(want)) }",
                               arg=value)
    except PlaywrightTimeout:
        raise AssertionError(f"#{elem_id} never took {value!r}: it shows {page.evaluate(shown)}") from None


def wait_for_shown(page: object, shown: str, want: object, what: str) -> None:
    """Wait until the JavaScript function ``shown`` returns ``want`` (compared as JSON): the view ``what`` describes.

    On a timeout the failure says what the page showed instead.
    """
    try:
        page.wait_for_function(f"want => JSON.stringify(({shown})()) === JSON.stringify(want)", arg=want)
    except PlaywrightTimeout:
        raise AssertionError(f"{what} never showed {want!r}: it shows {page.evaluate(shown)!r}") from None


ARM = """probe => {
    window.__stepgenShown = null;
    const watch = new MutationObserver(() => {
        const box = document.querySelector(probe);
        if (!box) return;
        watch.disconnect();
        window.__stepgenShown = box.value;
        box.value = Number(box.value) === 7 ? '8' : '7';  // a mark the held value is not
        box.dispatchEvent(new Event('input', {bubbles: true}));
    });
    watch.observe(document.body, {childList: true, subtree: true});
}"""

PUSHED = """probe => window.__stepgenShown !== null && document.querySelector(probe)?.value === window.__stepgenShown"""


def open_section(page: object, header: object, probe: str) -> None:
    """Click ``header`` (a closed accordion's title) and wait until Gradio has finished showing its content.

    Gradio (6.31) mounts the content of a closed accordion when it opens, and a few frames later writes the
    values it holds for those controls into them once more (``render_previously_invisible_children``). A value
    typed in between is overwritten with the old one: under load, a test typing as soon as a control appears
    loses what it typed (seen with sliders; text boxes and numbers keep it). That write is the event waited for
    here: as ``probe`` (the CSS selector of a slider's number box in the content whose changes run no event)
    mounts, a mark is put into it, and Gradio's write puts the held value back. Once it is back, what a test
    types stays.
    """
    if page.locator(probe).count():
        raise AssertionError(f"{probe} is already shown: nothing to wait for, open_section is for closed sections")
    page.evaluate(ARM, probe)
    header.click()
    try:
        page.wait_for_function(PUSHED, arg=probe)
    except PlaywrightTimeout:
        shown = page.evaluate("probe => [window.__stepgenShown, document.querySelector(probe)?.value]", probe)
        raise AssertionError(f"Gradio never wrote its values into the opened section: {probe} held and now holds "
                             f"{shown}") from None
