"""The generate() playground in a real browser (streaming, colouring, Stop) and through gradio_client (/generate)."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import open_view, set_number, wait_until_settled

from stepgen.generation import GenerationRequest, generate


def _open(page: object) -> None:
    # through a link to the tab, as a shared link would open it
    open_view(page, page.url.split("?")[0].rstrip("/") + "/?tab=playground")
    page.wait_for_selector("#pg-run")
    # nothing the page does on load (restoring a link into the knobs) still covers the controls
    wait_until_settled(page, "#playground-tab", timeout=60_000)


def _code(page: object) -> str:
    """The text of the (folded) Copy-as-code block."""
    if not page.locator("#pg-code").is_visible():
        page.get_by_text("Copy as code").click()
    page.wait_for_function("() => document.querySelector('#pg-code')?.innerText.includes('generate(')")
    return page.locator("#pg-code").inner_text()


@pytest.mark.browser
def test_streamed_coloured_text_and_a_real_stop(page: object, long_tiny_dir: Path) -> None:
    _open(page)
    page.locator("#model-picker input").fill(str(long_tiny_dir))
    page.locator("#load-model").click()
    page.wait_for_function("() => document.querySelector('#model-status').innerText.includes('context 2048')")
    page.locator("#pg-preset").get_by_text("precise sampling").click()
    page.wait_for_function("() => document.querySelector('#pg-do-sample input').checked")
    set_number(page, "pg-max-new-tokens", "1000")
    set_number(page, "pg-min-new-tokens", "1000")
    page.locator("#pg-run").click()
    # streamed: tokens appear while the status still says it is generating
    page.wait_for_function("() => document.querySelectorAll('#pg-output .pg-tok').length >= 5")
    assert "Generating" in page.locator("#pg-status").inner_text(), page.locator("#pg-status").inner_text()
    first = page.locator("#pg-output .pg-tok").first
    assert "background-color" in (first.get_attribute("style") or ""), "a token is not coloured"
    assert 0 <= float(first.get_attribute("data-prob")) <= 1 and "rank" in first.get_attribute("title")
    page.locator("#pg-stop").click()
    page.wait_for_function("() => /Stopped|Done/.test(document.querySelector('#pg-status').innerText)", timeout=60_000)
    status = page.locator("#pg-status").inner_text()
    assert "Stopped" in status and "you pressed Stop" in status, f"the UI does not say it was stopped: {status}"
    tokens = page.locator("#pg-output .pg-tok").count()
    assert 0 < tokens < 1000, f"{tokens} tokens: the run was not stopped half-way"
    assert page.locator("#pg-output .pg-seq").first.get_attribute("data-finish") == "stopped"
    assert "torch.manual_seed(" in _code(page), "the code of a sampled run has its seed"


@pytest.mark.browser
def test_beam_preset_shows_several_sequences_config_and_code(page: object) -> None:
    _open(page)
    page.locator("#pg-preset").get_by_text("beam search").click()
    page.wait_for_function("() => document.querySelector('#pg-num-beams input[type=number]').value === '4'")
    set_number(page, "pg-temperature", "0.5")
    page.locator("#pg-run").click()
    page.locator("#pg-status").get_by_text("Done").wait_for()
    page.wait_for_function("() => document.querySelectorAll('#pg-output .pg-seq').length > 0")
    assert page.locator("#pg-output .pg-seq").count() == 3, "the beam preset returns 3 sequences"
    effective = page.locator("#pg-effective").inner_text()
    assert "`temperature` = 0.5 does nothing" in effective and "cannot stream" in effective, effective
    assert "num_beams=4" in _code(page)
    page.wait_for_selector("#pg-entropy .js-plotly-plot")


@pytest.mark.browser
def test_an_invalid_combination_is_refused_and_keeps_the_text(page: object) -> None:
    _open(page)
    page.locator("#pg-run").click()
    page.locator("#pg-status").get_by_text("Done").wait_for()
    ids = "() => Array.from(document.querySelectorAll('#pg-output .pg-tok')).map(span => span.dataset.id)"
    before = page.evaluate(ids)
    assert before, "the greedy run wrote no tokens"
    set_number(page, "pg-num-return-sequences", "3")
    page.locator("#pg-run").click()
    page.get_by_text("Greedy decoding returns one sequence").first.wait_for()
    assert page.evaluate(ids) == before, "a refused run must leave the last output alone"


def test_generate_endpoint_equals_the_library(client: object, tiny_gpt2: object) -> None:
    knobs = {"max_new_tokens": 8, "do_sample": True, "seed": 31, "top_k": 20, "num_return_sequences": 2,
             "bad_words": ["the"]}
    data = client.predict(prompt="Once upon a time", api_name="/generate", **knobs)
    expected = generate(tiny_gpt2, "Once upon a time", GenerationRequest.from_dict(knobs))
    assert [s["token_ids"] for s in data["sequences"]] == [list(s.token_ids) for s in expected.sequences]
    first = data["sequences"][0]
    assert first["text"] == expected.sequences[0].text and "logprob" in first
    assert {"id", "text", "prob", "final_prob"} <= set(first["tokens"][0]), first["tokens"][0]
    assert "torch.manual_seed(31)" in data["code"] and data["seed"] == 31


def test_generate_endpoint_refuses_bad_combinations(client: object) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="num_return_sequences"):
        client.predict(prompt="Once", num_beams=2, num_return_sequences=3, api_name="/generate")


@pytest.mark.browser
def test_a_classic_experiment_fills_prompt_and_knobs_and_says_what_to_look_at(page: object, app_url: str) -> None:
    _open(page)
    page.locator("#pg-experiment input").click()
    page.get_by_role("option", name="Low temperature: safe and samey").click()
    page.get_by_text("What to look at.").wait_for()
    assert page.locator("#pg-prompt textarea").input_value() == "It was a dark and stormy night; the"
    page.wait_for_function("() => document.querySelector('#pg-do-sample input').checked")
    assert page.locator("#pg-temperature input[type=number]").input_value() == "0.3"
    assert page.locator("#pg-seed input, #pg-seed textarea").first.input_value() == "7", "the experiment's seed"
    page.locator("#pg-run").click()
    page.locator("#pg-status").get_by_text("Done").wait_for()
    assert page.locator("#pg-output .pg-seq").count() == 3, "the experiment draws three texts"
    # the same experiment through a link: knobs and note, the link's own temperature winning
    page.goto(f"{app_url}/?tab=playground&experiment=Low+temperature%3A+safe+and+samey&temperature=0.5")
    page.get_by_text("What to look at.").wait_for()
    page.wait_for_function("() => document.querySelector('#pg-temperature input[type=number]').value === '0.5'")
    assert page.locator("#pg-num-return-sequences input[type=number]").input_value() == "3"


@pytest.mark.browser
def test_the_note_says_what_the_preset_on_screen_does(page: object) -> None:
    """Picked by a link or by a click, a preset's note is the one shown; an experiment's note replaces it."""
    from stepgen.presets import PRESET_NOTES

    note = "() => document.querySelector('#pg-experiment-note')?.innerText ?? ''"
    page.goto(page.url.split("?")[0].rstrip("/") + "/?tab=playground&preset=beam+search")
    page.wait_for_function(f"want => ({note})().includes(want)", arg=PRESET_NOTES["beam search"][:60])
    page.locator("#pg-preset").get_by_text("greedy").click()
    page.wait_for_function(f"want => ({note})().includes(want)", arg=PRESET_NOTES["greedy"][:60])
