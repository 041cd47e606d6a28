"""Strategies side by side: each column is what /generate returns for the same prompt, seed and settings."""

from __future__ import annotations

from typing import Any

import pytest

from stepgen.compare import DEFAULT_SETTINGS, MAX_COMPARE, compare, first_difference
from stepgen.repetition import distinct
from ui import compare_tab, playground_tab

PROMPT = "It was a dark and stormy night; the"


def without_time(result: dict[str, Any]) -> dict[str, Any]:
    """A result without its wall-clock time, the one number two equal runs do not share."""
    return {key: value for key, value in result.items() if key != "seconds"}


def generate_endpoint(loaded: Any, monkeypatch: pytest.MonkeyPatch, **knobs: Any) -> dict[str, Any]:
    """The final answer of /generate on ``loaded``."""
    monkeypatch.setattr(playground_tab, "get_model", lambda name: loaded)
    return list(playground_tab.generate_api(PROMPT, **knobs))[-1]


def test_each_column_equals_generate(tiny: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = compare(tiny, PROMPT, seed=7, max_new_tokens=6)
    assert len(data["results"]) == len(DEFAULT_SETTINGS), f"{len(data['results'])} columns for 4 settings"
    knobs = [{"do_sample": False, "num_beams": 1},
             {"num_beams": 4, "num_return_sequences": 3, "no_repeat_ngram_size": 2, "early_stopping": True},
             dict(DEFAULT_SETTINGS[2]), dict(DEFAULT_SETTINGS[3])]
    for index, (result, settings) in enumerate(zip(data["results"], knobs)):
        expected = generate_endpoint(tiny, monkeypatch, seed=7, max_new_tokens=6, **settings)
        assert without_time(result) == without_time(expected), f"column {index} differs from /generate"


def test_the_same_seed_gives_the_same_columns(tiny_gpt2: Any) -> None:
    first = compare(tiny_gpt2, PROMPT, seed=3, max_new_tokens=5)
    second = compare(tiny_gpt2, PROMPT, seed=3, max_new_tokens=5)
    texts = [[s["token_ids"] for s in r["sequences"]] for r in first["results"]]
    again = [[s["token_ids"] for s in r["sequences"]] for r in second["results"]]
    assert texts == again, f"seed 3 gave {texts}, then {again}"
    assert [m["first_difference"] for m in first["metrics"]] == [m["first_difference"] for m in second["metrics"]], \
        "the first differences changed with the same seed"


def test_a_random_seed_is_one_for_all_columns(tiny_gpt2: Any) -> None:
    data = compare(tiny_gpt2, PROMPT, ["greedy", dict(DEFAULT_SETTINGS[2])], max_new_tokens=3)
    seeds = {result["seed"] for result in data["results"]}
    assert len(seeds) == 1 and None not in seeds, f"the columns ran with seeds {seeds}"


def test_the_metrics_are_the_sequences_numbers(tiny_gpt2: Any) -> None:
    data = compare(tiny_gpt2, PROMPT, ["greedy", "beam search"], seed=1, max_new_tokens=6)
    for result, numbers in zip(data["results"], data["metrics"]):
        sequence = result["sequences"][0]
        assert numbers["logprob"] == sequence["logprob"], f"{numbers['logprob']} != {sequence['logprob']}"
        assert numbers["perplexity"] == sequence["perplexity"], "the perplexity is not the sequence's"
        assert numbers["tokens"] == len(sequence["token_ids"]), "the token count is not the sequence's"
        assert numbers["distinct_2"] == distinct(sequence["token_ids"]), "distinct 2-grams not of the sequence"
    assert data["metrics"][0]["first_difference"] is None, "the first column differs from itself"
    assert data["labels"] == ["greedy", "beam search"], f"labels: {data['labels']}"


@pytest.mark.parametrize("ids, first, expected", [
    ([1, 2, 3], [1, 2, 3], None), ([1, 2, 3], [1, 5, 3], 1), ([1, 2], [1, 2, 3], 2), ([], [4], 0)])
def test_first_difference(ids: list[int], first: list[int], expected: int | None) -> None:
    assert first_difference(ids, first) == expected, f"{ids} vs {first}: {first_difference(ids, first)}"


def test_distinct_two_grams() -> None:
    """1 2 1 2 has the 2-grams (1 2), (2 1), (1 2): two different of three."""
    assert distinct([1, 2, 1, 2]) == pytest.approx(2 / 3), f"distinct-2 of 1 2 1 2 is {distinct([1, 2, 1, 2])}"
    assert distinct([5]) is None, "one token has no 2-gram"


@pytest.mark.parametrize("settings, message", [
    ([], f"`settings` has to hold from 1 to {MAX_COMPARE} settings, but holds 0"),
    (["greedy"] * (MAX_COMPARE + 1), f"`settings` has to hold from 1 to {MAX_COMPARE} settings, but holds 7"),
    ("greedy", "`settings` has to be a list of settings"),
    ([5], "`settings[0]` has to be a dict of knobs or a preset name, but is int"),
    (["greedy", "fast"], "`settings[1]` has to be a dict of knobs or one of the presets"),
    ([{"top_kk": 3}], "`settings[0]`: Unknown generate() knob(s): top_kk"),
    ([{"": 3}], "`settings[0]`: Unknown generate() knob(s): ''; known"),
    ([{"penalty_alpha": 0.5, "top_k": 1}], "`top_k` has to be an integer from 2"),
    ([{"penalty_alpha": 1.5, "top_k": 4}], "`penalty_alpha` has to be"),
])
def test_bad_settings_are_named(tiny_gpt2: Any, settings: Any, message: str) -> None:
    with pytest.raises(ValueError) as error:
        compare(tiny_gpt2, PROMPT, settings, seed=0, max_new_tokens=3)
    assert message in str(error.value), f"expected {message!r}, got {error.value}"


def test_the_endpoint_reads_settings_and_common_knobs(tiny_gpt2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compare_tab, "get_model", lambda name: tiny_gpt2)
    data = compare_tab.compare_api(PROMPT, ["greedy", {"penalty_alpha": 0.6, "top_k": 4}], max_new_tokens=4, seed=2)
    assert [r["mode"] for r in data["results"]] == ["greedy_search", "contrastive_search"], \
        f"modes: {[r['mode'] for r in data['results']]}"
    assert all(r["request"]["max_new_tokens"] == 4 for r in data["results"]), "max_new_tokens was not common"
    html = compare_tab.columns_html(data)
    assert html.count('class="cmp-col"') == 2, "not one column per settings"
    assert "tab=playground" in html and "penalty_alpha=0.6" in html, "no playground link with the knobs"


@pytest.mark.slow
def test_each_column_equals_generate_on_the_embedded_model(embedded: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    data = compare(embedded, PROMPT, seed=11, max_new_tokens=8)
    expected = generate_endpoint(embedded, monkeypatch, seed=11, max_new_tokens=8, **DEFAULT_SETTINGS[3])
    assert without_time(data["results"][3]) == without_time(expected), "contrastive column differs from /generate"
    assert data["metrics"][0]["first_difference"] is None, "greedy differs from itself"


def test_compare_endpoint_over_the_client(client: Any) -> None:
    data = client.predict(prompt=PROMPT, settings=["greedy", {"do_sample": True, "top_k": 5}], max_new_tokens=3,
                          seed=4, api_name="/compare")
    run = client.predict(prompt=PROMPT, do_sample=True, top_k=5, max_new_tokens=3, seed=4, api_name="/generate")
    assert without_time(data["results"][1]) == without_time(run), "the sampled column differs from /generate"
    with pytest.raises(Exception) as error:
        client.predict(prompt=PROMPT, settings=[{"num_beams": 0}], api_name="/compare")
    assert "`num_beams` has to be" in str(error.value), f"the message does not name num_beams: {error.value}"


def test_open_in_playground_restores_the_columns_knobs(tiny_gpt2: Any) -> None:
    import gradio as gr
    from urllib.parse import parse_qsl

    from ui import deeplinks

    with gr.Blocks():
        view = deeplinks.tab_view("playground", playground_tab.build(gr.State("")))
    data = compare(tiny_gpt2, PROMPT, ["beam search", {"penalty_alpha": 0.6, "top_k": 4}], seed=5, max_new_tokens=3)
    for result in data["results"]:
        link = deeplinks.parse_query(dict(parse_qsl(compare_tab.playground_link(result)[1:])), ["playground"])
        values, problems = deeplinks.view_values(view, link)
        assert not problems, f"the playground refused the link: {problems}"
        restored = playground_tab.request_from_controls({k: v for k, v in values.items()
                                                         if k in playground_tab.KNOBS})
        assert restored.to_dict() == result["request"], f"the link opens {restored.to_dict()}, not {result['request']}"
        assert values["prompt"] == PROMPT, f"the link's prompt is {values['prompt']!r}"


def test_a_link_to_the_compare_tab_sets_its_prompt_and_strategies() -> None:
    import gradio as gr

    from ui import deeplinks

    with gr.Blocks():
        view = deeplinks.tab_view("compare", compare_tab.build(gr.State("")))
    link = deeplinks.parse_query({"tab": "compare", "prompt": "Hi there", "strategies": "greedy,sampling",
                                  "max_new_tokens": "9"}, ["compare"])
    values, problems = deeplinks.view_values(view, link)
    assert not problems, f"the link was refused: {problems}"
    assert values == {"prompt": "Hi there", "strategies": ["greedy", "sampling"], "max_new_tokens": 9}, values
