"""The Tokenizer tab in a real browser: typing text shows the tokenizer's own tokens as chips, with counts."""

from __future__ import annotations

import pytest

from stepgen import tokenize as tk
from stepgen.browserbench import QueueRequests

pytestmark = pytest.mark.browser


def test_typing_text_shows_chips_counts_and_details(page: object, tiny_gpt2: object) -> None:
    from playwright.sync_api import expect

    text = "It was a dark and stormy"
    expected = tiny_gpt2.tokenizer(text)["input_ids"]
    page.locator("#tok-text textarea").fill(text)
    # the ids of this text, not of the example the tab opened with: the chips below are this text's
    expect(page.locator("#tok-ids-out textarea")).to_have_value(str(expected))
    chips = page.locator("#tok-chips .tok-chip")
    expect(chips).to_have_count(len(expected))
    shown = [chips.nth(i).inner_text() for i in range(len(expected))]
    assert "".join(shown) == text, f"the chips do not spell the text: {shown}"
    counts = page.locator("#tok-counts")
    expect(counts.locator("[data-kind=tokens] strong")).to_have_text(str(len(expected)))
    expect(counts.locator("[data-kind=characters] strong")).to_have_text(str(len(text)))
    expect(counts.locator("[data-kind=bytes] strong")).to_have_text(str(len(text.encode())))
    classes = [chips.nth(i).get_attribute("class") for i in range(2)]
    assert "tok-a" in classes[0] and "tok-b" in classes[1], f"neighbours must alternate colours: {classes}"

    chips.nth(2).click()
    details = page.locator("#tok-details")
    expect(details).to_contain_text(str(expected[2]))
    expect(details).to_contain_text(tiny_gpt2.tokenizer.convert_ids_to_tokens(expected[2]))
    chips.nth(1).focus()
    page.keyboard.press("Enter")
    expect(details).to_contain_text(tiny_gpt2.tokenizer.convert_ids_to_tokens(expected[1]))

    page.locator("#tok-whitespace input").check()
    expect(chips.nth(1)).to_contain_text("·")


def test_text_typed_while_the_page_opens_is_the_text_its_chips_show(browser: object, app_url: str,
                                                                     tiny_gpt2: object) -> None:
    """The page's first view is computed from the start values and lands after the status line: once every
    answer is in, the chips and ids are those of the text on screen, not of the start text. (Gradio may still
    write the start text into a box it is mounting: then that is the text on screen.)"""
    text = "It was a dark and stormy"
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        requests = QueueRequests(page)
        page.goto(app_url)
        page.locator("#tok-text textarea").fill(text)  # as soon as the box is there: the first view is on its way
        page.wait_for_selector("#model-status :text('Serving')")
        requests.wait(page)
        on_screen = page.locator("#tok-text textarea").input_value()
        assert page.locator("#tok-ids-out textarea").input_value() == str(tiny_gpt2.tokenizer(on_screen)["input_ids"])
        chips = page.locator("#tok-chips .tok-chip")
        assert "".join(chips.all_inner_texts()) == on_screen, "the chips are of a text no longer on screen"
    finally:
        context.close()


def test_emoji_example_merges_partial_bytes_and_ids_decode(page: object, tiny_gpt2: object) -> None:
    from playwright.sync_api import expect

    page.get_by_role("button", name="Emoji").click()
    expect(page.locator("#tok-text textarea")).not_to_have_value("Preposterous, I'm flabbergasted!")
    text = page.locator("#tok-text textarea").input_value()
    example = tk.tokenize(tiny_gpt2.tokenizer, text)
    chips = page.locator("#tok-chips .tok-chip")
    expect(chips).to_have_count(len(example.tokens))
    expect(page.locator("#tok-chips .tok-partial").first).to_contain_text("<F0")
    page.locator("#tok-merge input").check()
    expect(chips).to_have_count(len(example.merged()))
    expect(page.locator("#tok-chips .tok-partial")).to_have_count(0)

    page.get_by_text("From IDs to text").click()
    page.locator("#tok-ids-in textarea").fill(" ".join(str(i) for i in example.ids))
    page.locator("#tok-decode").click()
    expect(page.locator("#tok-decoded textarea")).to_have_value(text)
    expect(page.locator("#tok-ids-chips .tok-chip")).to_have_count(len(example.merged()))


def _options(page: object, picker: str) -> list[str]:
    """The entries the dropdown ``#picker`` lists once opened (then closed again: the list has gone before this
    returns, so that no other dropdown's list is read with it)."""
    page.locator(f"#{picker} input").click()
    options = page.locator(f"#{picker} [role=option]")
    options.first.wait_for()
    shown = [text.strip() for text in options.all_inner_texts()]
    page.keyboard.press("Escape")
    page.wait_for_function("() => !document.querySelector('[role=option]')")
    return shown


def test_offline_pickers_mark_what_needs_the_network_and_an_empty_compare_is_refused(page: object) -> None:
    """The suite runs with HF_HUB_OFFLINE=1 and an empty hub cache: the hub models cannot load."""
    for picker in ("model-picker", "tok-compare-model"):
        if picker == "tok-compare-model":
            page.get_by_text("Compare with another tokenizer").click()
        shown = _options(page, picker)
        marked = [entry for entry in shown if entry.endswith("(needs the network)")]
        assert "gpt2 (needs the network)" in shown, f"#{picker} offers the hub's gpt2 unmarked: {shown}"
        assert marked == shown[len(shown) - len(marked):] and len(marked) < len(shown), (
            f"#{picker} does not list what loads first: {shown}")
    page.locator("#tok-compare").click()
    toast = page.locator(".toast-body", has_text="Pick the other model to compare with")
    toast.first.wait_for()
    assert toast.count() == 1, f"the refusal is shown {toast.count()} times"
    assert page.locator("#tok-compare-out .tok-compare-row").count() == 0, "the same model was compared with itself"


def test_a_decode_error_leaves_no_stale_text_and_no_error_badge(page: object) -> None:
    from playwright.sync_api import expect

    page.get_by_text("From IDs to text").click()
    page.locator("#tok-ids-in textarea, #tok-ids-in input").first.fill("[15, 16]")
    page.locator("#tok-decode").click()
    decoded = page.locator("#tok-decoded textarea, #tok-decoded input").first
    expect(decoded).not_to_have_value("")
    page.locator("#tok-ids-in textarea, #tok-ids-in input").first.fill("[15, oops]")
    page.locator("#tok-decode").click()
    expect(page.locator("#tok-ids-counts .tok-warning")).to_be_visible()
    assert decoded.input_value() == "", f"the previous text stayed beside the error: {decoded.input_value()!r}"
    badges = page.locator("#tok-decoded, #tok-ids-chips, #tok-ids-counts").get_by_text("Error", exact=True)
    assert badges.count() == 0, f"{badges.count()} outputs carry an Error badge"
