"""On a phone (390 x 844): every tab is one tap away (none behind Gradio's "..." menu), the model picker and its
button share one line so the tabs start in the first screen, and the suite takes the README's phone screenshots.
Also the keyboard: moving focus onto the model picker with Tab does not open its list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import open_view, wait_until_settled
from conftest import open_app

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DOCS = Path(__file__).resolve().parent.parent / "docs"
TABS = ["Tokenizer", "Next token", "Step by step", "generate() playground", "Compare strategies"]


@pytest.fixture
def phone(browser: object, app_url: str) -> Iterator[object]:
    yield from open_app(browser, app_url, viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)


def test_every_tab_is_one_tap_away(phone: object) -> None:
    from playwright.sync_api import expect

    for name in TABS:
        tab = phone.get_by_role("tab", name=name, exact=True)
        assert tab.is_visible(), f"the {name!r} tab is not on the screen (behind the overflow menu?)"
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{name!r} runs off the screen: {box}"
        tab.tap()
        expect(tab).to_have_attribute("aria-selected", "true")


def test_the_model_picker_and_its_button_leave_room_for_the_tabs(phone: object) -> None:
    picker = phone.locator("#model-picker input").bounding_box()
    load = phone.locator("#load-model").bounding_box()
    assert load["y"] < picker["y"] + picker["height"] and picker["y"] < load["y"] + load["height"], (
        f"Load ({load}) is not on the picker's line ({picker})")
    assert load["width"] < PHONE["width"] / 2, f"Load fills the width: {load}"
    tabs = phone.get_by_role("tab", name="Tokenizer", exact=True).bounding_box()
    assert tabs["y"] < PHONE["height"] / 2, f"the tabs start {tabs['y']:.0f} px down, below half the screen"


def test_tab_onto_the_model_picker_does_not_open_its_list(phone: object) -> None:
    from playwright.sync_api import expect

    picker = phone.locator("#model-picker input")
    phone.locator("h1").click()  # focus starts before the picker
    for _ in range(10):
        phone.keyboard.press("Tab")
        if picker.evaluate("(el) => el === document.activeElement"):
            break
    else:
        pytest.fail("Tab never reached the model picker")
    expect(picker).not_to_have_attribute("aria-expanded", "true")  # the list stays closed
    phone.keyboard.press("ArrowDown")
    expect(picker).to_have_attribute("aria-expanded", "true")  # the keyboard can still open it
    phone.keyboard.press("Tab")
    expect(picker).not_to_have_attribute("aria-expanded", "true")  # and it closes when focus moves on


@pytest.mark.slow
@pytest.mark.parametrize("tab", ["next-token", "step"])
def test_phone_screenshots(browser: object, app_url: str, embedded_cache_dir: Path, tab: str) -> None:
    """The README's phone screenshots, on the embedded model, opened by a deep link."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(120_000)  # the first load of the embedded model dequantises it
    try:
        page.goto(f"{app_url}/?model=embedded&tab={tab}")
        page.wait_for_function(
            "() => /Serving embedded/.test(document.querySelector('#model-status')?.innerText ?? '')")
        wait_until_settled(page)
        page.mouse.move(0, 0)
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / f"phone-{tab}.png"), full_page=False)
    finally:
        context.close()


LABELS_APART = """(selector) => {
  // the tick labels of a chart: unslanted ones side by side, slanted ones parallel and a line apart
  const centre = (t) => { const r = t.getBoundingClientRect(); return (r.left + r.right) / 2; };
  const texts = [...document.querySelectorAll(selector)].filter(t => t.textContent)
    .sort((a, b) => centre(a) - centre(b));
  const boxes = texts.map(t => t.getBoundingClientRect());
  const angles = texts.map(t => { const m = /rotate\\((-?[\\d.]+)/.exec(t.getAttribute('transform') || '');
                                  return m ? Number(m[1]) : 0; });
  const size = parseFloat(getComputedStyle(texts[0]).fontSize);
  const clashes = [];
  for (let i = 1; i < boxes.length; i++) {
    const [a, b] = [boxes[i - 1], boxes[i]];
    if (angles[i] === 0) {
      if (a.right > b.left + 0.5) clashes.push([texts[i - 1].textContent, texts[i].textContent, 'side by side']);
    } else {
      // a slanted label ends at its tick (its box's right edge): parallel labels a tick apart are this far apart
      const apart = Math.abs(b.right - a.right) * Math.abs(Math.sin(angles[i] * Math.PI / 180));
      if (apart < 0.9 * size) clashes.push([texts[i - 1].textContent, texts[i].textContent, apart]);
    }
  }
  return {n: texts.length, angles: [...new Set(angles)], clashes};
}"""
BOXES_APART = """(selector) => {
  const items = [...document.querySelectorAll(selector)].map(t => [t.textContent, t.getBoundingClientRect()]);
  const clashes = [];
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
    const [a, b] = [items[i][1], items[j][1]];
    if (a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5)
      clashes.push([items[i][0], items[j][0]]);
  }
  return {n: items.length, clashes};
}"""
REACHABLE = """(selector) => {
  // each element is on the screen, or inside a box that scrolls sideways far enough to show it
  return [...document.querySelectorAll(selector)].filter(el => {
    const box = el.getBoundingClientRect();
    if (box.left >= 0 && box.right <= window.innerWidth + 0.5) return false;
    for (let up = el.parentElement; up; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (['auto', 'scroll'].includes(style.overflowX) && up.scrollWidth > up.clientWidth) {
        const inner = up.getBoundingClientRect();
        return box.right - inner.left > up.scrollWidth + 0.5;  // beyond even the scrolled end
      }
    }
    return true;
  }).map(el => el.textContent.trim());
}"""


def test_the_next_token_charts_and_tables_read_on_a_phone(phone: object) -> None:
    """Token labels never run into each other, plotly's toolbar does not cover the legend, the pipeline's
    panel titles stand apart, and every column of both tables can be scrolled to."""
    from browser_helpers import wait_until_settled

    open_view(phone, phone.url.split("?")[0] + "?tab=next-token&top_k=5&temperature=0.7&top_n=12")
    phone.wait_for_function("() => document.querySelectorAll('#next-pipeline-chart .annotation-text').length === 3")
    wait_until_settled(phone)
    labels = phone.evaluate(LABELS_APART, "#next-chart .xtick text")
    assert labels["n"] == 13 and not labels["clashes"], f"token labels run together on a phone: {labels}"
    toolbar = phone.evaluate("() => [...document.querySelectorAll('#next-chart .modebar-container')]"
                             ".filter(el => el.offsetParent !== null).length")
    assert toolbar == 0, "plotly's toolbar shows over the legend on a phone"
    titles = phone.evaluate(BOXES_APART, "#next-pipeline-chart .annotation-text")
    assert titles["n"] == 3 and not titles["clashes"], f"the pipeline's panel titles overlap: {titles}"
    ticks = phone.evaluate(LABELS_APART, "#next-pipeline-chart .xtick text")
    assert not ticks["clashes"], f"the pipeline's percent labels run together: {ticks}"
    hidden = phone.evaluate(REACHABLE, "#next-table th, #next-pipeline-table th, #next-pipeline-chart .annotation-text")
    assert not hidden, f"these columns and panels cannot be reached on a phone: {hidden}"
