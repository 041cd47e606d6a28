"""The Next-token tab in a real browser: the chart follows the settings, and survives a bad one.

Each view is read only once it equals what ``/next_token`` or ``/score`` returns
for the same settings, so no test reads a chart that is still being computed.
"""

from __future__ import annotations

import pytest
from browser_helpers import chart, open_section, set_number, wait_for_chart, wait_for_shown

from stepgen.browserbench import QueueRequests

pytestmark = pytest.mark.browser


def _truth(client: object, **settings: object) -> tuple[list[float], list[float]]:
    """The raw and final probabilities ``/next_token`` gives the tab's prompt under ``settings``."""
    answer = client.predict(prompt=settings.pop("prompt"), top_n=10, api_name="/next_token", **settings)
    return [c["prob"] for c in answer["candidates"]], [c["final_prob"] for c in answer["candidates"]]


def _open_tab(page: object, client: object) -> tuple[list[float], list[float]]:
    """Open the tab and wait until its chart is the endpoint's for the default settings; return that chart."""
    page.get_by_role("tab", name="Next token").click()
    prompt = page.locator("#next-prompt textarea").input_value()
    raw, final = _truth(client, prompt=prompt)
    wait_for_chart(page, "next-chart", raw, final, what="/next_token with the default settings")
    return raw, final


def test_changing_temperature_changes_the_chart(page: object, client: object) -> None:
    raw, final = _open_tab(page, client)
    assert raw == final, "with the default settings the final distribution is the raw one"
    assert "entropy" in page.locator("#next-reading").inner_text()
    set_number(page, "next-temperature", "0.3")
    prompt = page.locator("#next-prompt textarea").input_value()
    raw_after, final_after = _truth(client, prompt=prompt, temperature=0.3)
    wait_for_chart(page, "next-chart", raw_after, final_after, what="/next_token with temperature 0.3")
    assert raw_after == raw, "temperature must not change the model's raw probabilities"
    assert final_after[0] > final[0], f"a low temperature sharpens the top token: {final[0]} -> {final_after[0]}"
    page.get_by_text("Copy as code: the Python that shows the same numbers").click()
    page.wait_for_function("() => document.querySelector('#next-code')?.innerText.includes('TemperatureLogitsWarper(0.3)')")
    # the pipeline's table may still be drawing: wait for it, then compare
    answer = client.predict(prompt=prompt, top_n=10, temperature=0.3, api_name="/next_token")
    entropy = f"{answer['stages'][0]['entropy']:.3f}".rstrip("0").rstrip(".")
    page.wait_for_function("(entropy) => { const table = document.querySelector('#next-pipeline-table').innerText;"
                           " return table.includes('TemperatureLogitsWarper') && table.includes(entropy); }",
                           arg=entropy)
    titles = page.evaluate("() => [...document.querySelectorAll('#next-pipeline-chart .annotation-text')]"
                           ".map(title => title.textContent)")
    assert titles[1].startswith("temperature"), f"the pipeline's second panel is the temperature step: {titles}"


def test_a_prompt_typed_while_the_page_opens_is_the_one_the_chart_shows(browser: object, app_url: str,
                                                                         client: object) -> None:
    """The first view is computed from the start values: once every answer is in, the chart is that of the
    prompt on screen. (Gradio may still write the start prompt into a box it is mounting: then that is the
    prompt on screen.)"""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        requests = QueueRequests(page)
        page.goto(app_url)
        page.get_by_role("tab", name="Next token").click()
        page.locator("#next-prompt textarea").fill("The capital of France is")  # the first view is on its way
        page.wait_for_selector("#model-status :text('Serving')")
        requests.wait(page)
        # every answer is in: the chart draws the last one, which must be of the prompt on screen
        raw, final = _truth(client, prompt=page.locator("#next-prompt textarea").input_value())
        wait_for_chart(page, "next-chart", raw, final, what="/next_token for the prompt on screen")
    finally:
        context.close()


def test_a_refused_prompt_names_why_and_shows_no_old_numbers(page: object, client: object,
                                                             tiny_gpt2: object) -> None:
    """No control reaches a refused value (the table of knobs sees to that), but a prompt can be too long: the
    message says so, and no chart of an earlier prompt stays beside it."""
    raw, final = _open_tab(page, client)
    too_long = " ".join(["word"] * (tiny_gpt2.context_length + 10))
    page.locator("#next-prompt textarea").fill(too_long)
    message = page.locator("#next-message")
    message.locator("text=context window").wait_for()
    page.wait_for_function("() => !document.querySelector('#next-chart .js-plotly-plot')")
    assert not page.locator("#next-table tbody tr").filter(has_text="%").count(), "the table kept old numbers"
    # the pipeline's views come in the next answer, and are emptied too
    page.wait_for_function("() => !document.querySelector('#next-pipeline-chart .js-plotly-plot')")
    assert not page.locator("#next-pipeline-table tbody tr").filter(has_text="softmax").count(), "old pipeline"
    page.locator("#next-prompt textarea").fill("It was a dark and stormy")
    page.wait_for_function("() => !document.querySelector('#next-message').innerText.includes('context window')")
    wait_for_chart(page, "next-chart", raw, final, what="/next_token for the first prompt again")


def test_a_number_typed_beyond_a_slider_is_named_then_the_slider_keeps_its_lowest(page: object,
                                                                                   client: object) -> None:
    """A person can type 0 into top_p's box: the message names `top_p` (not a generic range error) and no old
    chart stays beside it; leaving the box puts the slider at its lowest value, which the settings accept,
    and the views follow it."""
    _open_tab(page, client)
    box = page.locator("#next-top-p input[type=number]")
    box.fill("0")
    message = page.locator("#next-message")
    # the message comes in the same response that leaves the chart alone
    message.locator("text=top_p").wait_for()
    # the message is shown as its characters (backticks included), like every message that may quote a value
    assert "`top_p` has to be a float > 0 and <= 1, but is 0" in message.inner_text(), message.inner_text()
    page.wait_for_function("() => !document.querySelector('#next-chart .js-plotly-plot')")
    box.press("Tab")  # leave the box
    page.wait_for_function("() => Number(document.querySelector('#next-top-p input[type=number]').value) === 0.01")
    raw, final = _truth(client, prompt=page.locator("#next-prompt textarea").input_value(), top_p=0.01)
    wait_for_chart(page, "next-chart", raw, final, what="/next_token with top_p 0.01")
    page.wait_for_function("() => !document.querySelector('#next-message').innerText.includes('top_p')")


def test_switching_the_model_redraws_the_tab(page: object, client: object, tiny_llama_dir: object) -> None:
    _open_tab(page, client)
    picker = page.locator("#model-picker input")
    picker.fill(str(tiny_llama_dir))
    page.locator("#load-model").click()
    page.wait_for_selector("#model-status :text('LlamaForCausalLM')")
    prompt = page.locator("#next-prompt textarea").input_value()
    answer = client.predict(prompt=prompt, model=str(tiny_llama_dir), top_n=10, api_name="/next_token")
    labels = "() => Array.from(document.querySelector('#next-chart .js-plotly-plot').data[0].x).slice(0, -1)"
    wanted = [c["final_prob"] for c in answer["candidates"]]
    wait_for_chart(page, "next-chart", [c["prob"] for c in answer["candidates"]], wanted,
                   what="/next_token on the tiny Llama")
    assert len(page.evaluate(labels)) == len(answer["candidates"]), f"the chart shows {page.evaluate(labels)}"


def test_every_position_colours_the_prompt_by_its_probability(page: object, client: object) -> None:
    _open_tab(page, client)
    page.get_by_text("Every position: how likely was each token of the prompt?").click()
    prompt = page.locator("#next-prompt textarea").input_value()
    answer = client.predict(prompt=prompt, api_name="/score")
    expected = [f"{token['prob']:.6f}" for token in answer["tokens"][1:]]
    probs = "() => Array.from(document.querySelectorAll('#next-score .sc-tok[data-prob]')).map(e => e.dataset.prob)"
    wait_for_shown(page, probs, expected, "the coloured prompt (the probabilities /score gives)")
    assert "Perplexity" in page.locator("#next-score").inner_text(), "the prompt's perplexity is not shown"
    page.locator("#next-prompt textarea").fill("Once upon a time")
    other = client.predict(prompt="Once upon a time", api_name="/score")
    page.wait_for_function("n => document.querySelectorAll('#next-score .sc-tok').length === n"
                           " && document.querySelector('#next-score').innerText.includes('time')",
                           arg=len(other["tokens"]))


def test_drawn_samples_chart_their_counts_and_clear_when_a_setting_changes(page: object, client: object) -> None:
    _open_tab(page, client)
    open_section(page, page.get_by_text("Draw samples: how often does each token come out?"),
                 "#next-samples input[type=number]")
    set_number(page, "next-samples", "400")
    page.locator("#next-draw").click()
    prompt = page.locator("#next-prompt textarea").input_value()
    answer = client.predict(prompt=prompt, top_n=10, samples=400, seed=0, api_name="/next_token")
    drawn = {c["id"]: c["count"] for c in answer["draws"]["counts"]}
    expected = [drawn.get(c["id"], 0) for c in answer["candidates"][:10]]
    counts = "() => Array.from(document.querySelector('#next-draws .js-plotly-plot')?.data?.[1]?.customdata ?? [])"
    wait_for_shown(page, f"() => ({counts})().slice(0, -1)", expected, "the draws chart (the counts /next_token draws)")
    shown = page.evaluate(counts)
    assert sum(shown) == 400, shown
    assert "In 400 draws" in page.locator("#next-draws-note").inner_text()
    set_number(page, "next-temperature", "0.5")
    page.wait_for_function("() => !document.querySelector('#next-draws-note').innerText.includes('400 draws')")
    assert not page.locator("#next-draws .js-plotly-plot").count(), "draws of the old settings stay on screen"


WATCH_FADING = """() => { window.__faded = [];
    const tab = document.querySelector('#next-token-tab');
    const look = (node) => {
        if (!(node instanceof Element)) return;
        for (const el of [node, ...node.querySelectorAll('*')]) {
            const tracker = el.matches('[data-testid=status-tracker]') && !el.classList.contains('hide');
            if (tracker || el.classList.contains('pending'))
                window.__faded.push((el.closest('[id]')?.id ?? '?') + (tracker ? ' shows progress' : ' fades'));
        }
    };
    new MutationObserver((changes) => changes.forEach((change) => look(change.target)))
        .observe(tab, {subtree: true, childList: true, attributes: true, attributeFilter: ['class']});
}"""


def test_typing_in_the_prompt_neither_fades_the_views_nor_shows_progress_on_them(page: object,
                                                                                 client: object) -> None:
    """The views change in place as each answer lands (see ui/progress.py): no output of the tab fades or
    shows a spinner while the prompt is typed, from the first key to the answer for the whole text."""
    _open_tab(page, client)
    page.evaluate(WATCH_FADING)
    box = page.locator("#next-prompt textarea")
    box.click()
    page.keyboard.press("End")
    page.keyboard.type(" night", delay=40)
    raw, final = _truth(client, prompt=box.input_value())
    wait_for_chart(page, "next-chart", raw, final, what="/next_token for the typed prompt")
    assert page.evaluate("window.__faded") == [], "outputs faded or showed progress while the prompt was typed"


def test_an_edit_redraws_the_chart_in_place(page: object, client: object) -> None:
    """A new figure is drawn into the plot on screen (one draw), not into a new plot that replaces it."""
    _open_tab(page, client)
    page.evaluate("() => { document.querySelector('#next-chart .js-plotly-plot').dataset.first = 'yes'; }")
    set_number(page, "next-temperature", "0.5")
    prompt = page.locator("#next-prompt textarea").input_value()
    raw, final = _truth(client, prompt=prompt, temperature=0.5)
    wait_for_chart(page, "next-chart", raw, final, what="/next_token with temperature 0.5")
    kept = page.evaluate("() => document.querySelector('#next-chart .js-plotly-plot').dataset.first")
    assert kept == "yes", "the chart was replaced by a new plot instead of redrawn"
