"""One run through every tab in real Chromium, on the real embedded model, as a reader would use the app.

The run opens the app through a deep link (``?model=embedded``), tokenizes a
text, reads the next-token chart and checks it against ``/next_token``, picks
candidates by click and by number key, undoes by click and by key, and
generates with a preset. Along the way it saves a screenshot of each tab into
``docs/`` (the README shows them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import open_embedded
from browser_helpers import chart, set_number, wait_for_chart, wait_until_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = Path(__file__).resolve().parent.parent / "docs"
PROMPT = "The capital of France is"


@pytest.fixture
def app_page(browser: object, app_url: str, embedded_cache_dir: Path) -> Iterator[object]:
    """The app opened on the embedded model by a deep link, in a window as wide as a laptop's."""
    for page in open_embedded(browser, app_url, height=1280):
        page.set_default_timeout(30_000)
        yield page


def screenshot(page: object, name: str) -> None:
    DOCS.mkdir(exist_ok=True)
    wait_until_settled(page)  # no half-faded output or timer in the picture
    page.mouse.move(0, 0)  # no hover effects in the picture
    page.screenshot(path=str(DOCS / f"{name}.png"), full_page=False)


def run_tokenizer(page: object, client: object) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Tokenizer").click()
    text = "Tokenizers split text into pieces: unbelievable 🙂"
    page.locator("#tok-text textarea").fill(text)
    expected = client.predict(text=text, model="embedded", api_name="/tokenize")
    expect(page.locator("#tok-chips .tok-chip")).to_have_count(expected["count"])
    expect(page.locator("#tok-counts [data-kind=tokens] strong")).to_have_text(str(expected["count"]))
    screenshot(page, "tab-tokenizer")


def run_next_token(page: object, client: object) -> None:
    page.get_by_role("tab", name="Next token").click()
    page.locator("#next-prompt textarea").fill(PROMPT)
    set_number(page, "next-temperature", "0.7")
    truth = client.predict(prompt=PROMPT, model="embedded", temperature=0.7, top_n=10, api_name="/next_token")
    # the chart redraws when the new numbers arrive: wait until its bars are the API's
    wait_for_chart(page, "next-chart", [c["prob"] for c in truth["candidates"]],
                   [c["final_prob"] for c in truth["candidates"]], what="/next_token with temperature 0.7")
    raw, final = chart(page, "next-chart")
    for name, shown, exact in [("raw", raw, "prob"), ("final", final, "final_prob")]:
        for bar, candidate in zip(shown, truth["candidates"], strict=False):
            assert abs(bar - candidate[exact]) < 1e-6, (
                f"the {name} bar of {candidate['text']!r} is {bar}, /next_token says {candidate[exact]}"
            )
    assert len(raw) == len(truth["candidates"]) + 1, "one bar per candidate and one for the rest of the vocabulary"
    screenshot(page, "tab-next-token")


def generated(page: object) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("#step-text .step-gen-tok", "els => els.map(e => e.dataset.id)")]


def candidate_ids(page: object) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("#step-candidates .step-chip", "els => els.map(e => e.dataset.token)")]


def wait_for_length(page: object, n: int) -> None:
    page.wait_for_function("n => document.querySelectorAll('#step-text .step-gen-tok').length === n", arg=n)


def run_step(page: object, client: object) -> None:
    page.get_by_role("tab", name="Step by step").click()
    prompt = page.locator("#step-prompt textarea, #step-prompt input").first
    prompt.fill(PROMPT)
    prompt.press("Enter")
    ids = client.predict(text=PROMPT, model="embedded", api_name="/tokenize")["ids"]
    truth = client.predict(token_ids=ids, model="embedded", top_n=9, api_name="/next_token")  # the tab shows 9
    want = [candidate["id"] for candidate in truth["candidates"]]
    page.wait_for_function("want => { const ids = Array.from(document.querySelectorAll('#step-candidates .step-chip'))"
                           ".map(e => Number(e.dataset.token)); return JSON.stringify(ids) === JSON.stringify(want) }",
                           arg=want)
    # click the second candidate, then the first; undo the last click
    page.locator("#step-candidates .step-chip").nth(1).click()
    wait_for_length(page, 1)
    assert generated(page) == [want[1]], f"clicking candidate 2 appended {generated(page)}, not {want[1]}"
    page.locator("#step-candidates .step-chip").first.click()
    wait_for_length(page, 2)
    page.locator("#step-undo").click()
    wait_for_length(page, 1)
    assert generated(page) == [want[1]], f"undo left {generated(page)}"
    # the keyboard: number keys pick, u undoes (focus outside any text box)
    page.locator("#step-text").click(position={"x": 2, "y": 2})
    page.keyboard.press("Escape")
    expected_next = candidate_ids(page)
    page.locator("body").press("3")
    wait_for_length(page, 2)
    assert generated(page) == [want[1], expected_next[2]], f"key 3 appended {generated(page)[-1:]}"
    page.locator("body").press("u")
    wait_for_length(page, 1)
    # focus is visible: tabbing onto a candidate draws an outline
    page.locator("#step-candidates .step-chip").first.focus()
    outline = page.evaluate("() => { const s = getComputedStyle(document.activeElement);"
                            " return [s.outlineStyle, s.outlineWidth, s.boxShadow] }")
    assert outline[0] != "none" and outline[1] != "0px" or outline[2] != "none", f"no visible focus: {outline}"
    page.locator("#step-candidates .step-chip").first.click()
    wait_for_length(page, 2)
    screenshot(page, "tab-step")


def run_playground(page: object, client: object) -> None:
    page.get_by_role("tab", name="generate() playground").click()
    page.locator("#pg-prompt textarea").fill(PROMPT)
    page.locator("#pg-preset").get_by_text("beam search").click()
    page.wait_for_function("() => document.querySelector('#pg-num-beams input[type=number]').value === '4'")
    box = page.locator("#pg-max-new-tokens input[type=number]")
    box.fill("8")
    box.press("Tab")
    page.locator("#pg-run").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#pg-output .pg-seq').length === 3"
        " && !document.querySelector('#pg-status').innerText.includes('Generating')"
    )
    truth = client.predict(prompt=PROMPT, model="embedded", max_new_tokens=8, num_beams=4, num_return_sequences=3,
                           no_repeat_ngram_size=2, early_stopping=True, api_name="/generate")
    for index, sequence in enumerate(truth["sequences"]):
        shown = page.locator("#pg-output .pg-seq").nth(index).locator(".pg-tok")
        ids = [int(shown.nth(i).get_attribute("data-id")) for i in range(shown.count())]
        assert ids == sequence["token_ids"], f"beam {index + 1} shows {ids}, /generate returns {sequence['token_ids']}"
    screenshot(page, "tab-playground")


def test_one_run_through_every_tab(app_page: object, client: object) -> None:
    run_tokenizer(app_page, client)
    run_next_token(app_page, client)
    run_step(app_page, client)
    run_playground(app_page, client)
    errors = app_page.locator(".toast-body").all_inner_texts()
    assert not errors, f"the run raised notices: {errors}"
