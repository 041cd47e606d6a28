"""Buttons are sized like buttons: one beside a field is as tall as a button, level with the field's input box.

A row of equal height stretches its children to the tallest one, so a button next to a field with a label and
help text used to grow to the whole field ("Load model" was 110 px tall). Measured in the real browser.
"""

from __future__ import annotations

import pytest
from conftest import open_app

pytestmark = pytest.mark.browser

BUTTON_HEIGHT = 60
"""Pixels a button may reach at most: a normal gradio button is 40, a small one 26."""

BESIDE = [
    # (tab, accordion to open, button, the input box of the field it sits beside)
    (None, None, "#load-model", "#model-picker input"),
    ("Step by step", None, "#step-reset", "#step-prompt textarea"),
    ("Step by step", None, "#step-auto", "#step-n input"),
    ("Step by step", None, "#step-stop", "#step-n input"),
    ("Step by step", None, "#step-force-button", "#step-force textarea"),
    ("generate() playground", None, "#pg-reuse-seed", "#pg-seed textarea"),
    ("Next token", "Draw samples: how often does each token come out?", "#next-draw", "#next-draw-seed input"),
    ("Tokenizer", "From IDs to text", "#tok-decode", "#tok-ids-in textarea"),
    ("Tokenizer", "Compare with another tokenizer", "#tok-compare", "#tok-compare-model input"),
]


@pytest.mark.parametrize(("tab", "accordion", "button", "field"), BESIDE, ids=[row[2] for row in BESIDE])
def test_a_button_beside_a_field_is_button_sized_and_level_with_its_input(
    page: object, tab: str | None, accordion: str | None, button: str, field: str
) -> None:
    if tab is not None:
        page.get_by_role("tab", name=tab).click()
    if accordion is not None:
        page.get_by_text(accordion).click()
    page.locator(button).wait_for(state="visible")
    page.locator(field).first.wait_for(state="visible")
    box = page.locator(button).bounding_box()
    entry = page.locator(field).first.bounding_box()
    assert box["height"] < BUTTON_HEIGHT, (
        f"{button} is {box['height']:.0f} px tall, stretched to its row (a button is under {BUTTON_HEIGHT} px)")
    middle = box["y"] + box["height"] / 2
    assert entry["y"] <= middle <= entry["y"] + entry["height"], (
        f"{button} (y {box['y']:.0f} to {box['y'] + box['height']:.0f}) is not level with the input of its field "
        f"(y {entry['y']:.0f} to {entry['y'] + entry['height']:.0f})")


@pytest.mark.parametrize("width", [1280, 390], ids=["desktop", "phone"])
def test_the_status_line_keeps_its_place_while_the_model_picker_is_not_drawn_yet(browser: object, app_url: str,
                                                                                 width: int) -> None:
    """Gradio draws the picker's row a moment after the page's first paint: until then the status line holds
    its place, so that it and the tabs below do not jump when the row arrives (the page's worst layout shift)."""
    for page in open_app(browser, app_url, viewport={"width": width, "height": 900}):
        status = "() => document.querySelector('#model-status').getBoundingClientRect().top"
        drawn = page.evaluate(status)
        page.evaluate("() => document.querySelector('#model-row').remove()")
        moved = page.evaluate(status) - drawn
        assert abs(moved) <= 2, f"the status line moves {moved:+.0f} px when the picker's row is drawn"
