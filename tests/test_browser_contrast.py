"""Probability colours and grey hints stay readable: WCAG contrast of every coloured token and of the subdued
text around them, in light and in dark mode.

The probability scale every tab shares (cividis, ``ui/render.py``) goes from
very dark to very light, so the ink on each token must follow its background;
the tokenizer's chips alternate two tints. This measures, in the real browser,
the contrast between each token's text colour and the background it is drawn
on, for the light and the dark theme.
"""

from __future__ import annotations

import pytest
from browser_helpers import open_view

pytestmark = pytest.mark.browser

WCAG_AA = 4.5  # normal-size text

COLOURS = """
  const parse = (c) => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const lum = ({r, g, b}) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
"""
"""How the two measures read a computed colour and its WCAG luminance."""

CONTRASTS = """
(selector) => {
""" + COLOURS + """  const background = (el) => {
    for (let node = el; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  return [...document.querySelectorAll(selector)]
    .filter((el) => el.offsetParent !== null && el.textContent.trim())
    .map((el) => {
      const ink = lum(parse(getComputedStyle(el).color));
      const back = lum(background(el));
      const ratio = (Math.max(ink, back) + 0.05) / (Math.min(ink, back) + 0.05);
      return {text: el.textContent.trim().slice(0, 20), ratio: Math.round(ratio * 100) / 100};
    });
}
"""


EDGES = """
(selector) => {
""" + COLOURS + """  const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  const page = (el) => {
    for (let node = el.parentElement; node; node = node.parentElement) {
      const c = parse(getComputedStyle(node).backgroundColor);
      if (c && c.a > 0.5) return c;
    }
    return {r: 255, g: 255, b: 255, a: 1};
  };
  return [...document.querySelectorAll(selector)]
    .filter((el) => el.offsetParent !== null)
    .map((el) => {
      const style = getComputedStyle(el);
      const around = page(el);
      const fill = ratio(parse(style.backgroundColor), around);
      const edge = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 1
        ? ratio(parse(style.outlineColor), around) : 1;
      return {text: el.textContent.trim().slice(0, 20), fill: Math.round(fill * 100) / 100,
              edge: Math.round(edge * 100) / 100};
    });
}
"""
NON_TEXT = 3.0  # WCAG 1.4.11: what marks out a thing from what is around it


def _stands_out(page: object, selector: str, what: str) -> None:
    """Each coloured token's fill or its edge contrasts with the page around it (cividis reaches the page's own
    colour at one end in each theme)."""
    found = page.evaluate(EDGES, selector)
    assert found, f"no {what} on the page"
    lost = [item for item in found if max(item["fill"], item["edge"]) < NON_TEXT]
    assert not lost, f"{what} hardly differ from the page around them (< {NON_TEXT}:1): {lost[:5]} (of {len(found)})"


def _check(page: object, selector: str, what: str) -> None:
    page.wait_for_selector(selector)
    found = page.evaluate(CONTRASTS, selector)
    assert found, f"no {what} on the page"
    poor = [item for item in found if item["ratio"] < WCAG_AA]
    assert not poor, f"{what} below WCAG AA contrast {WCAG_AA}: {poor[:5]} (of {len(found)})"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_coloured_tokens_are_readable(browser: object, app_url: str, client: object, scheme: str) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        open_view(page, f"{app_url}/?__theme={scheme}")
        is_dark = page.evaluate("() => document.body.classList.contains('dark') || "
                                "!!document.querySelector('.gradio-container.dark, .dark .gradio-container')")
        assert is_dark == (scheme == "dark"), f"the page did not switch to the {scheme} theme"

        page.get_by_role("tab", name="Tokenizer").click()
        text = "Studying AI is fun 🦀 日本"
        page.locator("#tok-text textarea").fill(text)
        page.locator("#tok-text textarea").press("Enter")
        # the chips of this text, not the example's that the tab opened with
        typed = page.locator("#tok-text textarea").input_value()  # with the newline Enter put in
        ids = client.predict(text=typed, api_name="/tokenize")["ids"]
        expect(page.locator("#tok-ids-out textarea")).to_have_value(str(ids))
        _check(page, "#tok-chips [data-index]", "tokenizer chips")

        page.get_by_role("tab", name="Next token").click()
        page.get_by_text("Every position: how likely was each token of the prompt?").click()
        _check(page, "#next-score .sc-tok[data-prob]", "scored prompt tokens of the Next-token tab")
        _stands_out(page, "#next-score .sc-tok[data-prob]", "scored prompt tokens of the Next-token tab")
        _check(page, "#next-score .prob-legend, #next-score .sc-head", "grey hints of the Next-token tab")

        page.get_by_role("tab", name="Step by step").click()
        for _ in range(4):
            page.get_by_role("button", name="Greedy step").click()
        page.wait_for_function("() => document.querySelectorAll('.step-gen-tok').length === 4")
        _check(page, ".step-gen-tok", "generated tokens of the Step tab")
        _stands_out(page, ".step-gen-tok", "generated tokens of the Step tab")
        _check(page, ".step-chip", "candidate chips of the Step tab")
        _check(page, ".step-prompt-tok, #step-text .prob-legend, .step-chip-prob",
               "prompt tokens and grey hints of the Step tab")

        page.get_by_role("tab", name="generate() playground").click()
        page.locator("#pg-run").click()
        page.locator("#pg-status").get_by_text("Done").wait_for()
        _check(page, ".pg-tok", "generated tokens of the playground")
        _stands_out(page, ".pg-tok", "generated tokens of the playground")
        _check(page, "#pg-output .prob-legend, .pg-seq-head, .pg-prompt", "grey hints and the prompt in the playground")
    finally:
        context.close()
