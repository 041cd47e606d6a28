"""The Next-token tab in a real browser: the chart follows the settings, and survives a bad one."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser

CHART_DATA = "() => document.querySelector('#next-chart .js-plotly-plot').data.map(trace => Array.from(trace.y))"


def _open_tab(page: object) -> list[list[float]]:
    page.get_by_role("tab", name="Next token").click()
    page.wait_for_selector("#next-chart .js-plotly-plot")
    page.wait_for_function("() => document.querySelector('#next-chart .js-plotly-plot').data?.length === 2")
    return page.evaluate(CHART_DATA)


def _set(page: object, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(value)
    box.press("Enter")


def test_changing_temperature_changes_the_chart(page: object) -> None:
    raw, final = _open_tab(page)
    assert raw == final, "with the default settings the final distribution is the raw one"
    assert "entropy" in page.locator("#next-reading").inner_text()
    _set(page, "next-temperature", "0.3")
    page.wait_for_function(
        "top => document.querySelector('#next-chart .js-plotly-plot').data[1].y[0] > top + 1e-6", arg=final[0]
    )
    raw_after, final_after = page.evaluate(CHART_DATA)
    assert raw_after == raw, "temperature must not change the model's raw probabilities"
    assert final_after[0] > final[0], f"a low temperature sharpens the top token: {final[0]} -> {final_after[0]}"
    page.get_by_text("Copy as code: the Python that shows the same numbers").click()
    page.wait_for_function("() => document.querySelector('#next-code')?.innerText.includes('TemperatureLogitsWarper(0.3)')")
    pipeline = page.locator("#next-pipeline-table").inner_text()
    assert "TemperatureLogitsWarper" in pipeline, pipeline


def test_a_refused_prompt_names_why_and_shows_no_old_numbers(page: object, tiny_gpt2: object) -> None:
    """No control reaches a refused value (the table of knobs sees to that), but a prompt can be too long: the
    message says so, and no chart of an earlier prompt stays beside it."""
    before = _open_tab(page)
    too_long = " ".join(["word"] * (tiny_gpt2.context_length + 10))
    page.locator("#next-prompt textarea").fill(too_long)
    message = page.locator("#next-message")
    message.locator("text=context window").wait_for()
    page.wait_for_function("() => !document.querySelector('#next-chart .js-plotly-plot')")
    assert not page.locator("#next-table tbody tr").filter(has_text="%").count(), "the table kept old numbers"
    page.locator("#next-prompt textarea").fill("It was a dark and stormy")
    page.wait_for_function("() => !document.querySelector('#next-message').innerText.includes('context window')")
    page.wait_for_function("() => document.querySelector('#next-chart .js-plotly-plot')?.data?.length === 2")
    assert page.evaluate(CHART_DATA) == before, "the first prompt's chart is back, with its own numbers"


def test_a_number_typed_beyond_a_slider_is_named_then_the_slider_keeps_its_lowest(page: object) -> None:
    """A person can type 0 into top_p's box: the message names `top_p` (not a generic range error) and no old
    chart stays beside it; leaving the box puts the slider at its lowest value, which the settings accept,
    and the views follow it."""
    _open_tab(page)
    box = page.locator("#next-top-p input[type=number]")
    box.fill("0")
    message = page.locator("#next-message")
    message.locator("text=top_p").wait_for()
    assert "top_p has to be a float > 0 and <= 1, but is 0" in message.inner_text(), message.inner_text()
    page.wait_for_function("() => !document.querySelector('#next-chart .js-plotly-plot')")
    box.press("Tab")  # leave the box
    page.wait_for_function("() => Number(document.querySelector('#next-top-p input[type=number]').value) === 0.01")
    page.wait_for_function("() => document.querySelector('#next-chart .js-plotly-plot')?.data?.length === 2")
    page.wait_for_function("() => !document.querySelector('#next-message').innerText.includes('top_p')")


def test_switching_the_model_redraws_the_tab(page: object, tiny_llama_dir: object) -> None:
    _open_tab(page)
    labels = "() => Array.from(document.querySelector('#next-chart .js-plotly-plot').data[0].x)"
    before = page.evaluate(labels)
    picker = page.locator("#model-picker input")
    picker.fill(str(tiny_llama_dir))
    page.locator("#load-model").click()
    page.wait_for_selector("#model-status :text('LlamaForCausalLM')")
    page.wait_for_function(f"before => ({labels})().at(-1) !== before.at(-1)", arg=before)
    after = page.evaluate(labels)
    assert after != before, f"the chart still shows the old model's tokens: {after}"


def test_every_position_colours_the_prompt_by_its_probability(page: object, client: object) -> None:
    _open_tab(page)
    page.get_by_text("Every position: how likely was each token of the prompt?").click()
    prompt = page.locator("#next-prompt textarea").input_value()
    answer = client.predict(prompt=prompt, api_name="/score")
    page.wait_for_function("n => document.querySelectorAll('#next-score .sc-tok').length === n",
                           arg=len(answer["tokens"]))
    shown = page.eval_on_selector_all("#next-score .sc-tok[data-prob]", "els => els.map(e => Number(e.dataset.prob))")
    expected = [token["prob"] for token in answer["tokens"][1:]]
    assert len(shown) == len(expected), f"{len(shown)} coloured tokens for {len(expected)} predicted ones"
    assert all(abs(a - b) < 1e-5 for a, b in zip(shown, expected)), (shown, expected)
    assert "Perplexity" in page.locator("#next-score").inner_text(), "the prompt's perplexity is not shown"
    page.locator("#next-prompt textarea").fill("Once upon a time")
    page.wait_for_function("() => document.querySelector('#next-score').innerText.includes('time')")


def test_drawn_samples_chart_their_counts_and_clear_when_a_setting_changes(page: object, client: object) -> None:
    _open_tab(page)
    page.get_by_text("Draw samples: how often does each token come out?").click()
    # the accordion mounts its content when it opens: type once the slider has put its value on the range input
    # (a number typed within milliseconds of the click, sooner than a person could, does not always take)
    page.wait_for_function("() => document.querySelector('#next-samples input[type=range]')?.value === '100'")
    _set(page, "next-samples", "400")
    page.wait_for_function("() => document.querySelector('#next-samples input[type=range]').value === '400'")
    page.locator("#next-draw").click()
    page.wait_for_function("() => document.querySelector('#next-draws .js-plotly-plot')?.data?.length === 2")
    counts = page.evaluate("() => Array.from(document.querySelector('#next-draws .js-plotly-plot').data[1].customdata)")
    prompt = page.locator("#next-prompt textarea").input_value()
    answer = client.predict(prompt=prompt, top_n=10, samples=400, seed=0, api_name="/next_token")
    drawn = {c["id"]: c["count"] for c in answer["draws"]["counts"]}
    expected = [drawn.get(c["id"], 0) for c in answer["candidates"][:10]]
    assert counts[:-1] == expected, f"the chart's counts {counts} are not the endpoint's draws {expected}"
    assert sum(counts) == 400, counts
    assert "In 400 draws" in page.locator("#next-draws-note").inner_text()
    _set(page, "next-temperature", "0.5")
    page.wait_for_function("() => !document.querySelector('#next-draws-note').innerText.includes('400 draws')")
    assert not page.locator("#next-draws .js-plotly-plot").count(), "draws of the old settings stay on screen"
