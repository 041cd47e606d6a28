"""The Next-token tab's numbers: the /next_token endpoint, the UI handler, the reading, the pipeline stages.

The raw and final probabilities are compared with plain transformers (a forward pass, and the scores of
``generate(output_scores=True)``); tests/test_distribution_core.py covers the core on hand-picked settings.
"""

from __future__ import annotations

import html
import inspect
import json
import math
import re
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from stepgen import stepping
from stepgen.distribution import from_logits, next_token
from stepgen.explain import effect, percent, quoted, reading
from stepgen.inputs import check_ids
from stepgen.settings import DecodingSettings
from ui import next_token_tab

PROMPT = "It was a dark and stormy night; the rain the rain"


def _plain_raw(loaded: object, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return torch.softmax(loaded.model(torch.tensor([ids])).logits[0, -1].float(), dim=-1)


def _plain_final(loaded: object, ids: list[int], settings: DecodingSettings) -> torch.Tensor:
    input_ids = torch.tensor([ids])
    out = loaded.model.generate(
        input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=1, output_scores=True,
        return_dict_in_generate=True, pad_token_id=loaded.tokenizer.eos_token_id,
        **settings.generate_kwargs(loaded.tokenizer),
    )
    return torch.softmax(out.scores[0][0].float(), dim=-1)


# --- the endpoint, through gradio_client -----------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{}, {"temperature": 0.7, "top_k": 12, "top_p": 0.9}, {"min_p": 0.02, "repetition_penalty": 1.4},
     {"typical_p": 0.8, "no_repeat_ngram_size": 2, "bad_words": ["rain"]}],
    ids=["raw", "temp-topk-topp", "minp-penalty", "typical-ngram-badwords"],
)
def test_endpoint_equals_plain_transformers(client: object, tiny_gpt2: object, settings: dict) -> None:
    out = client.predict(prompt=PROMPT, top_n=12, api_name="/next_token", **settings)
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    assert out["token_ids"] == ids, f"the endpoint encoded the prompt differently: {out['token_ids']} vs {ids}"
    raw = _plain_raw(tiny_gpt2, ids)
    final = _plain_final(tiny_gpt2, ids, DecodingSettings.from_dict(settings))
    assert len(out["candidates"]) >= 12, f"asked for 12 candidates, got {len(out['candidates'])}"
    for c in out["candidates"]:
        assert {"id", "text", "logit", "prob", "final_prob", "rank"} <= set(c), f"missing keys in {c}"
        assert abs(c["prob"] - float(raw[c["id"]])) < 1e-5, (
            f"raw prob of {c['id']}: {c['prob']} vs {float(raw[c['id']])}")
        assert abs(c["final_prob"] - float(final[c["id"]])) < 1e-5, (
            f"final prob of {c['id']}: {c['final_prob']} vs generate()'s {float(final[c['id']])}")
    assert out["greedy_id"] == int(final.argmax()), (
        f"greedy id {out['greedy_id']} is not the argmax of generate()'s scores")
    entropy = float(-(raw[raw > 0] * raw[raw > 0].log2()).sum())
    assert abs(out["entropy"] - entropy) < 1e-4, f"entropy {out['entropy']} vs {entropy} bits"
    assert out["model"] and isinstance(out["reading"], str) and out["reading"], out["reading"]


def test_endpoint_draws_samples_from_the_final_distribution(client: object, tiny_gpt2: object) -> None:
    out = client.predict(prompt=PROMPT, top_k=3, samples=300, seed=5, api_name="/next_token")
    dist = next_token(tiny_gpt2, out["token_ids"], DecodingSettings(top_k=3))
    expected = stepping.draw(dist, 300, 5)
    assert out["draws"]["n"] == 300 and out["draws"]["seed"] == 5, out["draws"]
    assert [(c["id"], c["count"]) for c in out["draws"]["counts"]] == list(expected.counts), out["draws"]
    assert len(out["draws"]["counts"]) <= 3, "top_k=3: three tokens at most can come out"
    texts = {c["id"]: c["text"] for c in out["candidates"]}
    assert all(c["text"] == texts[c["id"]] for c in out["draws"]["counts"]), "draws name tokens as candidates do"
    assert "draws" not in client.predict(prompt=PROMPT, api_name="/next_token"), "no samples asked, none drawn"
    picked = client.predict(prompt=PROMPT, top_k=3, samples=300, api_name="/next_token")["draws"]
    again = client.predict(prompt=PROMPT, top_k=3, samples=300, seed=picked["seed"], api_name="/next_token")["draws"]
    assert again == picked, "a seed left out is picked at random, and reported so that the draws can be repeated"


def test_endpoint_takes_token_ids_instead_of_a_prompt(client: object) -> None:
    by_prompt = client.predict(prompt="Studying AI is", top_n=5, api_name="/next_token")
    by_ids = client.predict(token_ids=by_prompt["token_ids"], top_n=5, api_name="/next_token")
    assert by_ids["candidates"] == by_prompt["candidates"], "the same ids must give the same distribution"
    assert by_ids["token_ids"] == by_prompt["token_ids"], (by_ids["token_ids"], by_prompt["token_ids"])


def test_temperature_zero_is_greedy_through_the_endpoint(client: object, tiny_gpt2: object) -> None:
    out = client.predict(prompt="The capital of France is", temperature=0, api_name="/next_token")
    ids = out["token_ids"]
    chosen = tiny_gpt2.model.generate(torch.tensor([ids]), max_new_tokens=1, do_sample=False,
                                      pad_token_id=tiny_gpt2.tokenizer.eos_token_id)[0, -1]
    assert out["greedy_id"] == int(chosen), f"greedy {out['greedy_id']} vs generate()'s {int(chosen)}"
    finals = {c["id"]: c["final_prob"] for c in out["candidates"]}
    assert finals[out["greedy_id"]] == 1.0 and sum(finals.values()) == 1.0, finals
    assert all(c["removed_by"] == "greedy" for c in out["candidates"] if c["id"] != out["greedy_id"]), out["candidates"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"top_p": 0}, "`top_p` has to be a float > 0 and <= 1, but is 0"),
        ({"top_p": 1.5}, "`top_p` has to be a float > 0 and <= 1, but is 1.5"),
        ({"top_k": -3}, "`top_k` has to be 0 (off) or an integer from 1 to 1000, but is -3"),
        ({"temperature": -0.5}, "`temperature` has to be 0 (greedy) or a float >= 0.01 and <= 5, but is -0.5"),
        # JSON has no NaN: a client that sends it as text is told the argument is not a number
        ({"temperature": "nan"}, "`temperature` has to be a number, but is 'nan'"),
        ({"repetition_penalty": 0}, "`repetition_penalty` has to be a float >= 0.01 and <= 3, but is 0"),
        ({"top_n": 0}, "`top_n` has to be an integer from 1 to 200, but is 0"),
        ({"prompt": "", "token_ids": [1, 100000]}, "`token_ids` has to hold ids from 0 to 399"),
        ({"token_ids": [1, 2]}, "Give either `prompt` or `token_ids`, not both"),
        ({"prompt": "a " * 300}, "reads at most 128 tokens (its context window)"),
        ({"prompt": ""}, "There is no token to continue from"),
        ({"samples": -3}, "`samples` has to be a whole number from 1 to 100000, but is -3"),
        ({"samples": 100_001}, "`samples` has to be a whole number from 1 to 100000, but is 100001"),
        ({"seed": -5}, "`seed` has to be an integer from 0 to 4294967295, but is -5"),
    ],
    ids=["top_p-0", "top_p-1.5", "top_k-negative", "temperature-negative", "temperature-nan-text", "penalty-0",
         "top_n-0", "unknown-id", "prompt-and-ids", "too-long", "empty", "samples-negative", "samples-too-many",
         "seed-negative"],
)
def test_invalid_input_gets_a_message_naming_it(client: object, arguments: dict, message: str) -> None:
    arguments = {"prompt": "Studying AI is", **arguments}
    with pytest.raises(Exception, match=re.escape(message)):
        client.predict(api_name="/next_token", **arguments)
    assert client.predict(prompt="Studying AI is", api_name="/next_token")["candidates"], "the app keeps serving"


def test_nan_sent_as_json_gets_a_message(app_url: str) -> None:
    """Python's JSON (and so Gradio's server) reads a bare NaN; the settings must refuse it by name."""
    parameters = inspect.signature(next_token_tab.next_token_api).parameters
    data = [parameter.default for parameter in parameters.values()]
    data[list(parameters).index("prompt")] = "Studying AI is"
    data[list(parameters).index("temperature")] = math.nan
    request = urllib.request.Request(
        f"{app_url}/gradio_api/call/next_token", data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/json"},
    )
    event = json.loads(urllib.request.urlopen(request, timeout=30).read())["event_id"]
    answer = urllib.request.urlopen(f"{app_url}/gradio_api/call/next_token/{event}", timeout=60).read().decode()
    assert "event: error" in answer and "`temperature` has to be a finite number, but is nan" in answer, answer


# --- the UI handler: a bad setting leaves the views as they were ---------------------------


def _controls(**changes: object) -> dict[str, object]:
    """The tab's knob controls by name, at their start values but for ``changes``."""
    values = {"top_n": 10, "temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.0, "typical_p": 1.0,
              "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "repetition_penalty": 1.0, "no_repeat_ngram_size": 0,
              "bad_words": ""} | changes
    return values


def test_handler_fills_every_view(tiny_gpt2_dir: Path, tiny_gpt2: object) -> None:
    message, summary, chart, table, pipeline_chart, pipeline_table, code, draws_plot, draws_note = (
        next_token_tab._update(str(tiny_gpt2_dir), "It was a dark and stormy",
                               **_controls(temperature=0.5, top_k=4.0, bad_words="the, rain")))
    assert message == "", f"no message expected, got {message!r}"
    dist = next_token(tiny_gpt2, tiny_gpt2.tokenizer("It was a dark and stormy")["input_ids"],
                      DecodingSettings(temperature=0.5, top_k=4, bad_words=("the", "rain")))
    assert reading(dist) in summary and f"{dist.entropy_bits:.2f} bits" in summary, summary
    shown = list(chart.data[1].y[:-1])
    expected = [c.final_prob for c in dist.candidates]
    assert len(shown) == len(expected) and max(abs(a - b) for a, b in zip(shown, expected)) < 1e-6, (
        f"the chart must show the final probabilities: {shown} vs {expected}")
    assert len(table) == len(dist.candidates) + 1, "one row per candidate and one for the rest"
    assert [row[0] for row in pipeline_table] == ["raw softmax", "bad_words", "temperature", "top_k"], pipeline_table
    assert len(pipeline_chart.data) >= 4, "one panel per stage"
    assert all(part in code for part in ("prompt = 'It was a dark and stormy'", "NoBadWordsLogitsProcessor(",
                                         "TemperatureLogitsWarper(0.5)", "TopKLogitsWarper(top_k=4)")), (
        f"the code of these settings: {code}")
    assert draws_plot is None and draws_note == "", "draws of other settings are cleared, never left beside these"


def test_draw_handler_charts_the_shares_next_to_the_probabilities(tiny_gpt2_dir: Path, tiny_gpt2: object) -> None:
    controls = _controls(temperature=0.7, top_k=6.0)
    figure, note = next_token_tab._draw(str(tiny_gpt2_dir), PROMPT, 500, 11, **controls)
    dist = next_token(tiny_gpt2, tiny_gpt2.tokenizer(PROMPT)["input_ids"], DecodingSettings(temperature=0.7, top_k=6))
    draws = stepping.draw(dist, 500, 11)
    probs, shares = figure.data
    # the handler may reuse cached keys and values of an earlier test: the same numbers up to float rounding
    expected = [c.final_prob for c in dist.candidates]
    assert max(abs(a - b) for a, b in zip(probs.y[:-1], expected)) < 1e-6, ("the probabilities drawn with",
                                                                             list(probs.y), expected)
    assert list(shares.y[:-1]) == [draws.share(c.id) for c in dist.candidates], "the share of each token's draws"
    assert sum(shares.customdata) == 500 and shares.y[-1] == 0, "every draw is one of the six top_k keeps"
    top = max(dist.candidates, key=lambda c: c.final_prob)
    assert f"In 500 draws {quoted(top.text)} came out {dict(draws.counts)[top.id]} times" in note, note


def test_draw_handler_names_a_bad_number_of_samples(tiny_gpt2_dir: Path) -> None:
    with pytest.raises(next_token_tab.gr.Error, match="`samples` has to be a whole number"):
        next_token_tab._draw(str(tiny_gpt2_dir), PROMPT, 0, 0, **_controls())


@pytest.mark.parametrize(("name", "value"), [("top_p", 0.0), ("temperature", -1.0), ("top_k", -2), ("min_p", 1.5)])
def test_handler_empties_the_views_on_a_bad_setting(tiny_gpt2_dir: Path, name: str, value: float,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(next_token_tab.gr, "Warning", lambda text, *a, **k: warnings.append(text))
    message, *views = next_token_tab._update(str(tiny_gpt2_dir), "Studying AI is", **_controls(**{name: value}))
    message, warnings = html.unescape(message), [html.unescape(text) for text in warnings]  # the text shown
    assert f"`{name}`" in message and str(value) in message, f"the message must name {name}: {message!r}"
    assert warnings and f"`{name}`" in warnings[0], f"a warning toast naming {name}: {warnings}"
    # no number may stand beside the error: the last good chart was for other settings
    assert all(view in (None, "", []) for view in views), f"every view must be emptied: {views}"


def test_handler_asks_for_a_prompt_without_a_toast_and_shows_no_old_numbers(tiny_gpt2_dir: Path) -> None:
    message, *views = next_token_tab._update(str(tiny_gpt2_dir), "", **_controls())
    assert "Type a prompt" in message, message
    assert all(view in (None, "", []) for view in views), f"an empty prompt shows no old numbers: {views}"


# --- the distribution's pipeline facts -------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "expected"),
    [(DecodingSettings(temperature=0.8, top_k=30, top_p=0.7, min_p=0.01, repetition_penalty=1.2),
      ["repetition_penalty", "temperature", "top_k", "top_p", "min_p"]),
     # so cold that most probabilities underflow to 0 without any setting cutting them: they cannot be drawn
     (DecodingSettings(temperature=0.02, top_k=300, repetition_penalty=1.2),
      ["repetition_penalty", "temperature", "top_k"])],
    ids=["cuts", "underflow"],
)
def test_stages_follow_generate_and_end_at_the_final_distribution(tiny: object, settings: DecodingSettings,
                                                                  expected: list[str]) -> None:
    ids = tiny.tokenizer(PROMPT)["input_ids"]
    dist = next_token(tiny, ids, settings, top_n=12)
    names = [stage.name for stage in dist.stages]
    assert names == expected, names
    survivors = [stage.survivors for stage in dist.stages]
    assert survivors == sorted(survivors, reverse=True), f"survivors can only shrink: {survivors}"
    last = dist.stages[-1]
    assert last.survivors == dist.survivors, (
        f"the last stage leaves {last.survivors} tokens but the final distribution {dist.survivors}")
    final = _plain_final(tiny, ids, settings)
    assert dist.survivors == int((final > 0).sum()), (
        f"{dist.survivors} tokens left, but generate()'s distribution gives {int((final > 0).sum())} a chance")
    underflowed = [c for c in dist.candidates if c.final_prob == 0 and not c.removed_by]
    assert last.shown == tuple(c.final_prob for c in dist.candidates), "the last stage is what sampling draws from"
    assert abs(last.entropy_bits - dist.final_entropy_bits) < 1e-5, (last.entropy_bits, dist.final_entropy_bits)
    for stage in dist.stages:
        assert len(stage.shown) == len(dist.candidates), f"{stage.name}: one value per candidate"
        assert -1e-6 <= stage.removed_mass <= stage.moved_mass + 1e-6, (
            f"{stage.name}: removed {stage.removed_mass} cannot exceed moved {stage.moved_mass}")
    temperature = dist.stages[1]
    assert temperature.removed_mass == 0 and temperature.moved_mass > 0, "temperature reshapes without cutting"
    for c in dist.candidates:
        if c.removed_by:
            cut_at = names.index(c.removed_by)
            assert dist.stages[cut_at].shown[dist.candidates.index(c)] == 0.0, f"{c} still has mass where it was cut"
            if cut_at > 0:
                assert dist.stages[cut_at - 1].shown[dist.candidates.index(c)] > 0.0, f"{c} was cut earlier"
        else:
            assert c.final_prob > 0 or c in underflowed, f"{c} has no mass but nothing cut it"
    if settings.temperature < 0.1:
        assert dist.stages[1].survivors < tiny.vocab_size and dist.stages[1].removed_mass == 0, (
            f"temperature {settings.temperature} cuts nothing, yet leaves only {dist.stages[1].survivors} tokens")


def test_bad_words_cut_and_report_the_word(tiny_gpt2: object) -> None:
    ids = tiny_gpt2.tokenizer("Studying AI is")["input_ids"]
    raw = next_token(tiny_gpt2, ids, top_n=50)
    # ban a word whose own token is among the likely ones, so that the cut shows among the candidates
    target = next(c for c in raw.candidates if c.text.strip().isalpha()
                  and [c.id] in DecodingSettings(bad_words=(c.text.strip(),)).bad_words_ids(tiny_gpt2.tokenizer))
    settings = DecodingSettings(bad_words=(target.text.strip(),))
    dist = next_token(tiny_gpt2, ids, settings, top_n=50)
    final = _plain_final(tiny_gpt2, ids, settings)
    cut = dist.candidate(target.id)
    assert cut is not None and cut.removed and cut.removed_by == "bad_words", cut
    assert float(final[target.id]) == 0.0, "generate() cuts it too"
    assert [stage.name for stage in dist.stages] == ["bad_words"], dist.stages
    assert dist.stages[0].removed_mass >= target.prob, f"it removed at least the banned token's mass: {dist.stages}"


def test_a_cut_tail_has_exactly_no_final_mass(tiny: object) -> None:
    ids = tiny.tokenizer("Studying AI is")["input_ids"]
    dist = next_token(tiny, ids, DecodingSettings(top_k=3), top_n=5)
    assert dist.final_other_mass == 0.0, f"top_k=3 leaves nothing outside the top 5, not {dist.final_other_mass}"
    assert dist.other_mass > 0.0, "the raw tail is still there"
    wide = next_token(tiny, ids, DecodingSettings(top_k=50), top_n=5)
    expected = float(wide.final_probs.sum()) - sum(c.final_prob for c in wide.candidates)
    assert abs(wide.final_other_mass - expected) < 1e-6, (wide.final_other_mass, expected)


def test_check_ids_names_the_bad_id(tiny_gpt2: object) -> None:
    assert check_ids(tiny_gpt2, [1.0, 2]) == [1, 2], "whole floats are accepted as ids"
    for bad, text in [([-1], "but holds -1"), ([1, "x"], "but holds 'x'"), ("12", "has to be a list of integers"),
                      ([True], "but holds True")]:
        with pytest.raises(ValueError, match=re.escape(text)):
            check_ids(tiny_gpt2, bad)


# --- the reading ------------------------------------------------------------------------------


def _fake(loaded: object) -> SimpleNamespace:
    return SimpleNamespace(tokenizer=loaded.tokenizer)


def test_reading_of_a_confident_model(tiny_gpt2: object) -> None:
    """One token gets logit a, the other V-1 get 0: p = e^a / (e^a + V - 1); a is chosen so that p = 0.97."""
    vocab = tiny_gpt2.vocab_size
    favourite = tiny_gpt2.tokenizer(" night", add_special_tokens=False)["input_ids"][-1]
    logits = torch.zeros(vocab)
    logits[favourite] = math.log(0.97 * (vocab - 1) / 0.03)
    dist = from_logits(_fake(tiny_gpt2), [0], logits, DecodingSettings())
    text = dist.candidate(favourite).text
    assert reading(dist).startswith(f"The model is confident: 97% on {quoted(text)}."), reading(dist)


def test_reading_of_an_unsure_model_counts_equally_likely_choices(tiny_gpt2: object) -> None:
    """Nearly uniform logits: entropy ~log2(V) bits, like choosing among all V tokens.

    (Not exactly uniform: top_k keeps ties, so equal logits would all survive top_k=7.)
    """
    vocab = tiny_gpt2.vocab_size
    dist = from_logits(_fake(tiny_gpt2), [0], torch.linspace(0, 1e-3, vocab), DecodingSettings(top_k=7))
    assert f"~{vocab:,} equally likely tokens" in reading(dist), reading(dist)
    assert "leave 7 of" in reading(dist), reading(dist)


def test_reading_says_greedy_at_temperature_zero(tiny_gpt2: object) -> None:
    logits = torch.linspace(-3, 3, tiny_gpt2.vocab_size)
    dist = from_logits(_fake(tiny_gpt2), [0], logits, DecodingSettings(temperature=0))
    best = dist.candidate(tiny_gpt2.vocab_size - 1)
    assert f"greedy decoding always writes {quoted(best.text)}" in reading(dist), reading(dist)


def test_effect_says_what_the_settings_cut_and_moved(tiny_gpt2: object) -> None:
    """Logits 3 for one token, 1 for four more, 0 for the rest: top_k=5 keeps those five and cuts the rest, whose
    raw mass is (V - 5) / (e^3 + 4e + V - 5); the favourite's share grows from e^3 / that sum to e^3 / (e^3 + 4e)."""
    vocab = tiny_gpt2.vocab_size
    logits = torch.zeros(vocab)
    logits[0], logits[1:5] = 3.0, 1.0
    total = math.exp(3) + 4 * math.e + vocab - 5
    dist = from_logits(_fake(tiny_gpt2), [0], logits, DecodingSettings(top_k=5))
    favourite = quoted(dist.candidate(0).text)
    want = (f"top_k=5 cut {percent((vocab - 5) / total)} of the mass; {favourite} {percent(math.exp(3) / total)} → "
            f"{percent(math.exp(3) / (math.exp(3) + 4 * math.e))}.")
    assert effect(dist) == want, f"the effect line is {effect(dist)!r}, expected {want!r}"
    assert dist.cut_mass == pytest.approx((vocab - 5) / total), f"the cut mass is {dist.cut_mass}"
    warmer = effect(from_logits(_fake(tiny_gpt2), [0], logits, DecodingSettings(temperature=2.0)))
    assert warmer.startswith("temperature=2 cut nothing but reshaped the rest;"), warmer
    plain = effect(from_logits(_fake(tiny_gpt2), [0], logits, DecodingSettings()))
    assert plain.startswith("Your settings leave the model's distribution as it is"), plain


def test_the_effect_line_shows_token_text_literally() -> None:
    """A token made of Markdown's marks (``*``, ``_``) reads as itself in the reading, not as emphasis."""
    line = next_token_tab._literal("top_k=5 cut 3% of the mass; '**x**' 50% → 60%.")
    assert "*" not in line and "_" not in line, f"Markdown marks reach the reading: {line!r}"


@pytest.mark.parametrize(("prob", "text"), [(0.97, "97%"), (0.999, "99.9%"), (1.0, "100%"), (0.032, "3.2%"),
                                            (0.0004, "<0.1%"), (0.0, "0%"), (0.9994, "99.9%"), (0.9995, ">99.9%"),
                                            (0.9996, ">99.9%"), (0.99999, ">99.9%"), (1e-12, "<0.1%")])
def test_percent(prob: float, text: str) -> None:
    assert percent(prob) == text, (prob, percent(prob))


def test_quoted_keeps_spaces_and_shows_newlines() -> None:
    assert quoted(" night") == "' night'" and quoted("\n") == "'↵'" and quoted("\t") == "'→'", quoted("\n")


# --- the embedded model ------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompt", "settings"),
    [("It was a dark and stormy", {"temperature": 0.7, "top_k": 20}),
     ("The capital of France is", {"top_p": 0.9, "repetition_penalty": 1.3})],
    ids=["stormy", "france"],
)
def test_embedded_endpoint_equals_plain_transformers(embedded: object, monkeypatch: pytest.MonkeyPatch,
                                                     prompt: str, settings: dict) -> None:
    monkeypatch.setattr(next_token_tab, "get_model", lambda name: embedded)
    out = next_token_tab.next_token_api(prompt=prompt, model="embedded", **settings)
    ids = embedded.tokenizer(prompt)["input_ids"]
    raw = _plain_raw(embedded, ids)
    final = _plain_final(embedded, ids, DecodingSettings.from_dict(settings))
    for c in out["candidates"]:
        assert abs(c["prob"] - float(raw[c["id"]])) < 1e-5, (c, float(raw[c["id"]]))
        assert abs(c["final_prob"] - float(final[c["id"]])) < 1e-5, (c, float(final[c["id"]]))
    top = max(out["candidates"], key=lambda c: c["prob"])
    assert top["rank"] == 1 and quoted(top["text"]) in out["reading"], (top, out["reading"])
