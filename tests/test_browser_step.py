"""The Step-by-step tab in a real browser: click a candidate, undo, fork a branch and switch back, keys."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def _open_tab(page: object) -> None:
    page.get_by_role("tab", name="Step by step").click()
    page.wait_for_selector("#step-candidates [data-token]")
    page.wait_for_selector("#step-text .step-tok")


def _ids(page: object) -> list[int]:
    return page.evaluate(IDS)


IDS = "() => Array.from(document.querySelectorAll('#step-text .step-tok')).map(e => Number(e.dataset.id ?? -1))"
"""The ids of the text's tokens (-1 for a prompt token, which carries its id only in its title)."""
RUNNING = "() => !document.querySelector('#step-text [data-testid=status-tracker]')?.classList.contains('hide')"
"""True while an event that writes the text (the auto-step run) has not ended, by Gradio's own progress tracker."""


def _wait_for_length(page: object, length: int) -> None:
    page.wait_for_function(f"document.querySelectorAll('#step-text .step-tok').length === {length}")


NEAR = 200
"""How far (CSS pixels) below the selected token its alternatives may start: a line or two of text, not a screen."""


def _assert_next_to(page: object, token: object, alternatives: object) -> None:
    """The alternatives of a selected token show on the screen, just below it, without scrolling."""
    selected, shown = token.bounding_box(), alternatives.bounding_box()
    height = page.viewport_size["height"]
    assert shown["y"] >= 0 and shown["y"] + shown["height"] <= height, (
        f"the alternatives are off the screen: at y={shown['y']:.0f} in a {height} px high window")
    gap = shown["y"] - (selected["y"] + selected["height"])
    assert 0 <= gap <= NEAR, f"the alternatives are {gap:.0f} px from the selected token (at most {NEAR} expected)"


def test_click_undo_fork_and_switch_back(page: object) -> None:
    _open_tab(page)
    start = page.locator("#step-text .step-tok").count()
    assert start > 0, "the prompt's tokens are not shown"

    chip = page.locator("#step-candidates [data-token]").nth(1)
    chosen = int(chip.get_attribute("data-token"))
    chip.click()
    _wait_for_length(page, start + 1)
    last = page.locator("#step-text .step-tok").nth(start)
    assert int(last.get_attribute("data-id")) == chosen, "the text did not grow by the clicked candidate"
    assert "step-gen-tok" in (last.get_attribute("class") or ""), "a generated token is not marked as generated"
    explained = page.locator("#step-explain").inner_text()
    assert f"the cache already held the first {start}, so only 1 went through" in explained, explained

    page.locator("#step-undo").click()
    _wait_for_length(page, start)

    page.locator("#step-greedy").click()
    _wait_for_length(page, start + 1)
    page.locator("#step-greedy").click()
    _wait_for_length(page, start + 2)
    original = _ids(page)

    token = page.locator(f"#step-text [data-pos='{start}']")
    token.click()
    page.wait_for_selector("#step-alts .step-chip.step-current")
    _assert_next_to(page, token, page.locator("#step-alts .step-chip.step-current"))
    alternative = page.locator("#step-alts .step-chip:not(.step-current)").first
    forked_id = int(alternative.get_attribute("data-token"))
    alternative.click()
    page.wait_for_function(
        f"document.querySelector('#step-text [data-pos=\"{start}\"]')?.dataset.id === '{forked_id}'"
    )
    _wait_for_length(page, start + 1)
    radios = page.locator("#step-branches input[type=radio]")
    assert radios.count() == 2, f"forking should add a branch, found {radios.count()}"
    assert "leaves this one at token" in page.locator("#step-branch-info").inner_text()

    page.locator("#step-branches label").first.click()
    _wait_for_length(page, start + 2)
    assert _ids(page) == original, "switching back did not restore the first branch"


def test_number_keys_pick_candidates_and_u_undoes(page: object) -> None:
    _open_tab(page)
    start = page.locator("#step-text .step-tok").count()
    expected = int(page.locator("#step-candidates [data-token]").nth(2).get_attribute("data-token"))
    page.locator("#step-explain").click()  # focus outside any text box
    page.keyboard.press("3")
    _wait_for_length(page, start + 1)
    assert _ids(page)[-1] == expected, "key 3 did not append the third candidate"
    page.keyboard.press("u")
    _wait_for_length(page, start)
    first = int(page.locator("#step-candidates [data-token]").first.get_attribute("data-token"))
    force = page.locator("#step-force textarea")
    force.fill(" rain")
    page.keyboard.press("3")  # typing in a text box must not step
    assert force.input_value() == " rain3", f"the key did not go into the text box: {force.input_value()!r}"
    # a press outside the box steps by candidate 1; steps are taken in order, so had the 3 stepped, the
    # first token to arrive would be candidate 3
    page.locator("#step-explain").click()
    page.keyboard.press("1")
    _wait_for_length(page, start + 1)
    assert _ids(page)[-1] == first, "a key typed into a text box stepped"


def test_quick_presses_all_count_in_order(page: object) -> None:
    _open_tab(page)
    start = page.locator("#step-text .step-tok").count()
    page.locator("#step-explain").click()  # focus outside any text box
    for key in "11111":  # faster than a step takes: each press waits its turn instead of being dropped
        page.keyboard.press(key)
    for _ in range(3):
        page.keyboard.press("u")
    # every click on the tab is taken one at a time, in the order it came: once selecting the first token
    # shows, every press before it has been taken
    page.locator("#step-text [data-pos='0']").click()
    page.wait_for_selector("#step-text .step-selected[data-pos='0']")
    assert page.locator("#step-text .step-tok").count() == start + 2, "quick presses were not all taken, once each"


def _auto_step_then_stop(page: object) -> tuple[int, list[int]]:
    """Start a long auto-step run, press Stop once a few tokens came, and wait until the run has ended."""
    _open_tab(page)
    start = page.locator("#step-text .step-tok").count()
    page.locator("#step-n input").fill("500")  # at least 25 s of steps: Stop lands long before the end
    page.locator("#step-auto").click()
    page.wait_for_function(f"document.querySelectorAll('#step-text .step-tok').length >= {start + 3}")
    # the click event itself: while tokens stream in, the button moves with the growing text, and a pointer
    # click waits for it to hold still, which under load can be after the run ended
    page.locator("#step-stop").dispatch_event("click")
    # the run has ended once Gradio no longer tracks it on the text; nothing it sent lands after that
    page.wait_for_function(f"() => !({RUNNING})()")
    return start, _ids(page)


def test_auto_step_streams_and_stop_stops(page: object) -> None:
    start, stopped = _auto_step_then_stop(page)
    assert start + 3 <= len(stopped) < start + 500, f"auto-step did not stop early: {len(stopped) - start} tokens"


def test_a_step_after_stop_adds_one_token_to_the_text_shown(page: object) -> None:
    """A step computed while Stop arrives is shown, so the session holds exactly the text on screen."""
    _, stopped = _auto_step_then_stop(page)
    page.locator("#step-explain").click()  # focus outside any text box
    page.keyboard.press("1")
    _wait_for_length(page, len(stopped) + 1)
    after = _ids(page)
    assert after[:-1] == stopped, f"the step after Stop changed the text before it: {stopped} -> {after}"


def test_a_link_with_a_path_restores_the_steps(page: object, app_url: str) -> None:
    page.goto(f"{app_url}/?tab=step&prompt=It+was+a+dark&path=5,6,7")
    page.wait_for_function("document.querySelectorAll('#step-text .step-gen-tok').length === 3")
    generated = page.locator("#step-text .step-gen-tok")
    assert [int(generated.nth(i).get_attribute("data-id")) for i in range(3)] == [5, 6, 7], "the path was not replayed"
    assert page.locator("#step-text .step-prompt-tok").first.inner_text().startswith("It"), "the link's prompt was lost"


def test_a_link_with_only_a_prompt_opens_on_that_prompt(page: object, app_url: str, client: object) -> None:
    prompt = "Once upon a time"
    ids = client.predict(text=prompt, api_name="/tokenize")["ids"]
    page.goto(f"{app_url}/?tab=step&prompt=Once+upon+a+time")
    shown = "() => Array.from(document.querySelectorAll('#step-text .step-prompt-tok')).map(e => Number(e.title.split('id ')[1]))"
    page.wait_for_function(f"want => JSON.stringify(({shown})()) === JSON.stringify(want)", arg=ids)
    page.wait_for_selector("#step-candidates [data-token]")
    assert page.evaluate(shown) == ids, "the page-load view replaced the link's prompt"
    assert page.locator("#step-text .step-gen-tok").count() == 0, "a link without a path generated tokens"


def test_appending_a_forced_text_empties_its_box(page: object) -> None:
    _open_tab(page)
    start = page.locator("#step-text .step-tok").count()
    force = page.locator("#step-force textarea")
    force.fill(" and")
    page.locator("#step-force-button").click()
    page.wait_for_function(f"document.querySelectorAll('#step-text .step-tok').length > {start}")
    page.wait_for_function("() => document.querySelector('#step-force textarea').value === ''")
    assert force.input_value() == "", f"the appended text stayed in the box: {force.input_value()!r}"
