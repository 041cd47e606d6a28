"""On a phone (390 x 844): every tab is one tap away (none behind Gradio's "..." menu), the model picker and its
button share one line so the tabs start in the first screen, and the suite takes the README's phone screenshots.
Also the keyboard: moving focus onto the model picker with Tab does not open its list."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import wait_until_settled
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
