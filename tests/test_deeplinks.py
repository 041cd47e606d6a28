"""Deep links: URL text <-> control values, parsing links, and the links the Share button makes."""

from __future__ import annotations

import html
from urllib.parse import parse_qsl, urlsplit

import gradio as gr
import pytest
from browser_helpers import open_view
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from stepgen.request import GenerationRequest
from stepgen.settings import DecodingSettings
from ui import deeplinks
from ui.deeplinks import DeepLink, decode, encode, field_for, parse_query, share_url, tab_view, to_query

TABS = ["tokenizer", "next-token", "step", "playground", "compare"]


def controls() -> dict[str, gr.components.Component]:
    """One control of every kind a tab may hand over, built without rendering an app."""
    with gr.Blocks():
        return {
            "prompt": gr.Textbox("The capital of France is"),
            "temperature": gr.Slider(0, 2, value=1.0, step=0.05),
            "top_k": gr.Slider(0, 100, value=0, step=1),
            "seed": gr.Number(0, precision=0),
            "greedy": gr.Checkbox(False),
            "preset": gr.Dropdown(["sampling", "greedy", "beam search"], value="sampling"),
            "mode": gr.Radio([("Probabilities", "prob"), ("Logits", "logit")], value="prob"),
            "bad_words": gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True),
            "chart": gr.Plot(),
            "ids": gr.Textbox(interactive=False),
            "path": gr.State([]),
            "run": gr.Button("Run"),
        }


@pytest.mark.parametrize(
    ("name", "value"),
    [("prompt", "Ünïcode, spaces & = signs?\nand a new line"), ("prompt", ""), ("temperature", 0.7),
     ("temperature", 0.0), ("top_k", 5), ("seed", 12345), ("greedy", True), ("greedy", False),
     ("preset", "beam search"), ("mode", "logit"), ("bad_words", ["the", "a b"])],
)
def test_values_survive_the_round_trip_through_a_url(name: str, value: object) -> None:
    spec = field_for(name, controls()[name])
    link = DeepLink(tab="next-token", values=((name, encode(spec, value)),))
    parsed = parse_query(dict(parse_qsl(to_query(link), keep_blank_values=True)), TABS)
    text = dict(parsed.values)[name]
    back = decode(spec, text)
    assert back == value and type(back) is type(value), f"{name}: {value!r} came back as {back!r} (URL text {text!r})"


def test_float_noise_from_slider_steps_stays_out_of_links() -> None:
    spec = field_for("temperature", controls()["temperature"])
    assert encode(spec, 0.1 + 0.2) == "0.3", encode(spec, 0.1 + 0.2)
    assert encode(spec, 2.0) == "2", encode(spec, 2.0)


def test_only_controls_with_a_url_meaning_become_fields() -> None:
    view = tab_view("step", controls())
    assert set(view.fields) == {"prompt", "temperature", "top_k", "seed", "greedy", "preset", "mode", "bad_words"}, (
        f"fields: {sorted(view.fields)}"
    )
    assert view.path is not None, "the path state was not picked up"
    kinds = {name: spec.kind for name, (spec, _) in view.fields.items()}
    assert kinds["top_k"] == "integer" and kinds["temperature"] == "number" and kinds["seed"] == "integer", kinds


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [("temperature", "hot", "`temperature` has to be a number, but is 'hot'"),
     ("temperature", "2.5", "`temperature` has to be between 0 and 2, but is 2.5"),
     ("temperature", "nan", "has to be a finite number"),
     ("top_k", "2.5", "`top_k` has to be a whole number, but is 2.5"),
     ("greedy", "maybe", "`greedy` has to be true or false"),
     ("preset", "contrastive", "`preset` has to be one of sampling, greedy, beam search, but is 'contrastive'"),
     ("mode", "Logits", "`mode` has to be one of prob, logit")],
)
def test_bad_url_values_are_refused_by_name(name: str, text: str, message: str) -> None:
    spec = field_for(name, controls()[name])
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        decode(spec, text)


def test_parse_query_keeps_what_it_can_and_names_the_rest() -> None:
    link = parse_query({"tab": "nowhere", "model": " embedded ", "prompt": "Hi", "path": "1,x"}, TABS)
    assert link.tab is None and link.model == "embedded" and link.path is None, link
    assert dict(link.values) == {"prompt": "Hi"}, link.values
    assert any("`tab` has to be one of tokenizer" in p for p in link.problems), link.problems
    assert any("`path` has to be token IDs" in p for p in link.problems), link.problems
    good = parse_query({"tab": "step", "path": "11, 2232,837"}, TABS)
    assert good.tab == "step" and good.path == (11, 2232, 837) and not good.problems, good


def test_overlong_paths_are_refused() -> None:
    too_long = ",".join(["1"] * (deeplinks.MAX_PATH + 1))
    assert "at most" in parse_query({"path": too_long}, TABS).problems[0]


def test_view_values_skip_other_tabs_keys_and_report_bad_ones() -> None:
    view = tab_view("next-token", controls())
    link = parse_query({"tab": "next-token", "temperature": "0.5", "top_k": "-3", "max_new_tokens": "9"}, TABS)
    values, problems = deeplinks.view_values(view, link)
    assert values == {"temperature": 0.5}, values
    assert problems == ["`top_k` has to be between 0 and 100, but is -3"], problems


def test_share_url_carries_only_what_differs_from_the_start_and_restores_it() -> None:
    view = tab_view("step", controls())
    current = {name: spec.default for name, (spec, _) in view.fields.items()}
    current.update(prompt="Once upon a time", temperature=0.7, top_k=5)
    url = share_url("https://user-stepgen.hf.space/", "step", "embedded", view, list(current.values()), [11, 2232])
    parts = urlsplit(url)
    assert parts.scheme == "https" and parts.netloc == "user-stepgen.hf.space" and parts.path == "/", url
    query = dict(parse_qsl(parts.query))
    assert query == {"tab": "step", "model": "embedded", "prompt": "Once upon a time", "temperature": "0.7",
                     "top_k": "5", "path": "11,2232"}, query
    link = parse_query(query, TABS)
    values, problems = deeplinks.view_values(view, link)
    assert not problems and values == {"prompt": "Once upon a time", "temperature": 0.7, "top_k": 5}, (values, problems)
    assert link.path == (11, 2232), link.path


def test_the_app_has_a_share_button_and_restores_on_load() -> None:
    import app

    demo = app.build_demo()
    ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
    assert {"share-button", "share-url"} <= ids, "the Share button or its link box is missing"
    tabs, tab_list = deeplinks.find_tabs(demo)
    assert [tab.id for tab in tab_list] == TABS, [tab.id for tab in tab_list]
    loads = {key for key, dep in demo.fns.items() if any(t[1] == "load" for t in dep.targets)}
    on_load = [dep for key, dep in demo.fns.items() if key in loads or dep.trigger_after in loads]  # or chained
    assert any(tabs in dep.outputs for dep in on_load), "no page-load event selects the tab from the URL"


# --- in the browser ---------------------------------------------------------------------------------------------


def open_link(browser: object, url: str) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)  # the whole suite shares two cores with the app it drives
    open_view(page, url)
    return page


def textbox(page: object, elem_id: str) -> object:
    return page.locator(f"#{elem_id} textarea, #{elem_id} input").first


@pytest.mark.browser
def test_a_tokenizer_link_opens_the_tab_with_its_text_and_settings(browser: object, app_url: str,
                                                                    client: object) -> None:
    text = "Deep links, ünïcode & = signs"
    query = to_query(DeepLink(tab="tokenizer", values=(("text", text), ("add_special_tokens", "false"))))
    page = open_link(browser, f"{app_url}/?{query}")
    try:
        page.get_by_role("tab", name="Tokenizer", selected=True).wait_for()
        page.wait_for_function(
            "t => document.querySelector('#tok-text textarea').value === t", arg=text,
        )
        assert not page.locator("#tok-add-special input").is_checked(), "add_special_tokens=false was not restored"
        expected = client.predict(text=text, add_special_tokens=False, api_name="/tokenize")["ids"]
        page.wait_for_function(
            "want => (document.querySelector('#tok-ids-out textarea, #tok-ids-out input')?.value || '')"
            ".replace(/[^0-9]+/g, ' ').trim() === want",
            arg=" ".join(map(str, expected)),
        )
    finally:
        page.context.close()


@pytest.mark.browser
def test_share_gives_a_link_that_reopens_the_same_view(browser: object, app_url: str) -> None:
    page = open_link(browser, app_url)
    try:
        page.get_by_role("tab", name="Tokenizer").click()
        textbox(page, "tok-text").fill("Shared text, 42 tokens?")
        page.locator("#tok-whitespace input").check()
        page.locator("#share-button").click()
        page.wait_for_function("document.querySelector('#share-url textarea, #share-url input').value.includes('?')")
        link = textbox(page, "share-url").input_value()
    finally:
        page.context.close()
    query = dict(parse_qsl(urlsplit(link).query))
    assert link.startswith(app_url + "/?"), f"the link does not point at the app: {link}"
    assert query.get("tab") == "tokenizer" and query.get("text") == "Shared text, 42 tokens?", query
    assert query.get("show_whitespace") == "true" and "add_special_tokens" not in query, query
    again = open_link(browser, link)
    try:
        again.wait_for_function(
            "() => document.querySelector('#tok-text textarea').value === 'Shared text, 42 tokens?'"
        )
        assert again.locator("#tok-whitespace input").is_checked(), "show_whitespace was not restored"
    finally:
        again.context.close()


@pytest.mark.browser
def test_a_link_with_bad_values_opens_the_rest_and_says_what_was_ignored(browser: object, app_url: str) -> None:
    page = open_link(browser, f"{app_url}/?tab=tokenizer&text=Still+here&add_special_tokens=perhaps")
    try:
        page.wait_for_function("() => document.querySelector('#tok-text textarea').value === 'Still here'")
        notice = page.locator(".toast-body").first
        notice.wait_for()
        assert "`add_special_tokens` has to be true or false" in notice.inner_text(), notice.inner_text()
    finally:
        page.context.close()


@pytest.mark.browser
@pytest.mark.parametrize("settings", [
    {"temperature": 0.7, "top_k": 5},
    {"temperature": 1.3, "top_p": 0.8, "repetition_penalty": 1.2, "top_n": 7},
    {"temperature": 0.0, "no_repeat_ngram_size": 2, "min_p": 0.05},
])
def test_a_next_token_link_restores_prompt_and_settings_and_the_chart_follows(browser: object, app_url: str,
                                                                               client: object,
                                                                               settings: dict) -> None:
    prompt = "Once upon a time"
    query = to_query(DeepLink(tab="next-token", values=(("prompt", prompt),
                                                         *((k, format(v, "g")) for k, v in settings.items()))))
    page = open_link(browser, f"{app_url}/?{query}")
    try:
        page.get_by_role("tab", name="Next token", selected=True).wait_for()
        page.wait_for_function("p => document.querySelector('#next-prompt textarea').value === p", arg=prompt)
        for name, value in settings.items():
            shown = page.locator(f"#next-{name.replace('_', '-')} input[type=number]").input_value()
            assert float(shown) == value, f"{name}: the link says {value}, the control shows {shown}"
        truth = client.predict(prompt=prompt, api_name="/next_token", **settings)
        want = [candidate["final_prob"] for candidate in truth["candidates"]]
        try:
            page.wait_for_function(
                "want => { const y = document.querySelector('#next-chart .js-plotly-plot')?.data?.[1]?.y;"
                " return !!y && want.every((p, i) => Math.abs(y[i] - p) < 1e-6) }",
                arg=want,
            )
        except PlaywrightTimeout:  # say what the chart showed instead, so that a failure can be told apart
            shown = page.evaluate("() => { const d = document.querySelector('#next-chart .js-plotly-plot')?.data;"
                                  " return d ? [Array.from(d[1].x), Array.from(d[1].y)] : null }")
            raise AssertionError(f"the chart shows {shown}, the endpoint {truth['candidates']}") from None
        page.locator("#share-button").click()
        page.wait_for_function("document.querySelector('#share-url textarea, #share-url input').value.includes('?')")
        query = dict(parse_qsl(urlsplit(textbox(page, "share-url").input_value()).query))
        assert query == {"tab": "next-token", "model": query.get("model"), "prompt": prompt,
                         **{k: format(v, "g") for k, v in settings.items() if v != DecodingSettings().to_dict()
                            .get(k, 10)}}, f"Share did not give back the link's view: {query}"
    finally:
        page.context.close()


def generated_ids(page: object) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all("#step-text .step-gen-tok", "els => els.map(e => e.dataset.id)")]


@pytest.mark.browser
def test_a_step_link_replays_its_path_with_its_settings(browser: object, app_url: str, client: object) -> None:
    prompt = "Once upon a time"
    ids = client.predict(text=prompt, api_name="/tokenize")["ids"]
    path = []
    for strategy in ("greedy", "uniform", "greedy"):  # a uniform step: a path greedy decoding would not take
        answer = client.predict(token_ids=ids, strategy=strategy, seed=7, api_name="/step")
        path.append(answer["chosen"]["id"])
        ids = answer["token_ids"]
    query = to_query(DeepLink(tab="step", values=(("prompt", prompt), ("temperature", "0.7"), ("top_k", "5")),
                              path=tuple(path)))
    page = open_link(browser, f"{app_url}/?{query}")
    try:
        page.get_by_role("tab", name="Step by step", selected=True).wait_for()
        page.wait_for_function(
            "n => document.querySelectorAll('#step-text .step-gen-tok').length === n", arg=len(path)
        )
        assert generated_ids(page) == path, f"the Step tab replayed {generated_ids(page)}, the link says {path}"
        assert textbox(page, "step-prompt").input_value() == prompt
        page.get_by_text("Decoding settings (the same processors").click()  # the settings sit in a closed accordion
        assert page.locator("#step-temperature input[type=number]").input_value() == "0.7"
        assert page.locator("#step-top-k input[type=number]").input_value() == "5"
        # the candidates shown next are those of the restored settings
        truth = client.predict(token_ids=ids, temperature=0.7, top_k=5, api_name="/next_token")
        kept = [c["id"] for c in truth["candidates"] if c["final_prob"] > 0]
        page.wait_for_function(
            "kept => { const shown = Array.from(document.querySelectorAll('#step-candidates .step-chip:not(.step-cut)'))"
            ".map(e => Number(e.dataset.token)); return JSON.stringify(shown) === JSON.stringify(kept) }",
            arg=kept,
        )
        page.locator("#share-button").click()
        page.wait_for_function("document.querySelector('#share-url textarea, #share-url input').value.includes('?')")
        query = dict(parse_qsl(urlsplit(textbox(page, "share-url").input_value()).query))
        assert query.get("path") == ",".join(map(str, path)) and query.get("prompt") == prompt, query
    finally:
        page.context.close()


@pytest.mark.browser
def test_a_step_link_with_branches_reopens_every_branch(browser: object, app_url: str, client: object) -> None:
    prompt = "Once upon a time"
    ids = client.predict(text=prompt, api_name="/tokenize")["ids"]
    first = client.predict(token_ids=ids, strategy="greedy", api_name="/step")["chosen"]["id"]
    branches = ((first, 11, 12), (first, 40), (first, 11, 50, 51))
    query = to_query(DeepLink(tab="step", values=(("prompt", prompt),), path=branches[1], branches=branches))
    page = open_link(browser, f"{app_url}/?{query}")
    try:
        page.get_by_role("tab", name="Step by step", selected=True).wait_for()
        page.wait_for_function("() => document.querySelectorAll('#step-branches input[type=radio]').length === 3")
        page.wait_for_function("n => document.querySelectorAll('#step-text .step-gen-tok').length === n", arg=2)
        assert generated_ids(page) == list(branches[1]), f"the current branch is {generated_ids(page)}"
        checked = page.locator("#step-branches input[type=radio]:checked")
        assert checked.count() == 1 and checked.get_attribute("value") in ("1", 1), checked.get_attribute("value")
        page.locator("#share-button").click()
        page.wait_for_function("document.querySelector('#share-url textarea, #share-url input').value.includes('?')")
        query = dict(parse_qsl(urlsplit(textbox(page, "share-url").input_value()).query))
        assert query.get("branches") == ";".join(",".join(map(str, b)) for b in branches), query
        assert query.get("path") == ",".join(map(str, branches[1])), query
    finally:
        page.context.close()


@pytest.mark.browser
def test_a_playground_link_replays_its_output(browser: object, app_url: str, client: object) -> None:
    """A shared playground view shows what its author saw: the same knobs, the same seed, the same text."""
    knobs = {"prompt": "Once upon a time", "do_sample": True, "temperature": 0.8, "top_k": 20,
             "max_new_tokens": 12, "seed": 5, "num_return_sequences": 2}
    values = tuple((name, str(value).lower() if isinstance(value, bool) else str(value)) for name, value in knobs.items())
    page = open_link(browser, f"{app_url}/?{to_query(DeepLink(tab='playground', values=values))}")
    try:
        page.get_by_role("tab", name="generate() playground", selected=True).wait_for()
        page.locator("#pg-status").get_by_text("Done").wait_for()
        shown = page.eval_on_selector_all(
            "#pg-output .pg-seq", "seqs => seqs.map(s => Array.from(s.querySelectorAll('.pg-tok'))"
            ".map(t => Number(t.dataset.id)))")
        truth = client.predict(api_name="/generate", **knobs)
        want = [sequence["token_ids"] for sequence in truth["sequences"]]
        assert shown == want, f"the link replayed {shown}, /generate gives {want} for the same knobs"
    finally:
        page.context.close()


@pytest.mark.browser
def test_share_after_a_random_seed_gives_a_link_to_the_same_text(browser: object, app_url: str) -> None:
    page = open_link(browser, f"{app_url}/?tab=playground")
    try:
        page.locator("#pg-preset").get_by_text("precise sampling").click()
        page.wait_for_function("() => document.querySelector('#pg-do-sample input').checked")
        box = page.locator("#pg-max-new-tokens input[type=number]")
        box.fill("10")
        box.press("Enter")
        page.locator("#pg-run").click()
        page.locator("#pg-status").get_by_text("Done").wait_for()
        first = page.eval_on_selector_all("#pg-output .pg-seq:first-child .pg-tok", "ts => ts.map(t => t.dataset.id)")
        page.locator("#share-button").click()
        page.wait_for_function("document.querySelector('#share-url textarea, #share-url input').value.includes('?')")
        link = textbox(page, "share-url").input_value()
    finally:
        page.context.close()
    assert dict(parse_qsl(urlsplit(link).query)).get("seed", "").isdigit(), f"the link has no seed: {link}"
    again = open_link(browser, link)
    try:
        again.locator("#pg-status").get_by_text("Done").wait_for()
        replayed = again.eval_on_selector_all("#pg-output .pg-seq:first-child .pg-tok",
                                              "ts => ts.map(t => t.dataset.id)")
        assert replayed == first, f"the link replayed {replayed}, its author saw {first}"
    finally:
        again.context.close()


def test_a_preset_in_a_link_sets_its_knobs_and_the_links_own_values_win() -> None:
    from ui import playground_tab

    with gr.Blocks():
        view = tab_view("playground", playground_tab.build(gr.State("")))
    link = parse_query({"tab": "playground", "preset": "creative sampling", "temperature": "0.5"}, TABS)
    values, problems = deeplinks.view_values(view, link)
    creative = playground_tab.PRESETS["creative sampling"]
    assert not problems, problems
    assert values["do_sample"] is True and values["top_p"] == creative["top_p"], f"the preset was not applied: {values}"
    assert values["temperature"] == 0.5, f"the link's own temperature lost to the preset's: {values['temperature']}"
    assert "max_new_tokens" not in values and "seed" not in values, "a preset must leave length and seed alone"


def test_a_path_with_a_bad_token_keeps_the_steps_before_it_and_says_so(tiny_gpt2: object) -> None:
    from ui import step_tab

    good = [11, 12]
    knobs = {**DecodingSettings().to_dict(), "bad_words": "", "top_n": step_tab.DEFAULT_TOP_N}
    view = step_tab.restore(str(tiny_gpt2.name), "It was", 0, [*good, 10**8, 13], None, **knobs)
    session, explanation, trail = view[0], html.unescape(view[4]), view[-2]  # the text the page shows
    assert trail["path"] == good, f"the steps before the bad token were lost: {trail}"
    assert list(session.ids[-2:]) == good, session.ids
    assert "token 3" in explanation and "left out" in explanation and "`token_id`" in explanation, explanation


def test_every_branch_survives_the_round_trip_through_a_link(tiny_gpt2: object) -> None:
    """A Step view with three branches, shared and reopened: the same branches, the same one current."""
    from stepgen import stepping
    from ui import step_tab

    knobs = {**DecodingSettings().to_dict(), "bad_words": "", "top_n": step_tab.DEFAULT_TOP_N}
    settings = DecodingSettings()
    session = stepping.start(tiny_gpt2.name, tiny_gpt2.tokenizer("It was")["input_ids"])
    for token in (11, 12, 13, 14):
        session, _ = stepping.advance(tiny_gpt2, session, settings, "token", token_id=token)
    start = len(session.prompt_ids)
    session, _ = stepping.fork(tiny_gpt2, session, start + 1, 40, settings)  # 11, 40
    session, _ = stepping.advance(tiny_gpt2, session, settings, "token", token_id=41)  # 11, 40, 41
    session, _ = stepping.fork(tiny_gpt2, stepping.switch(session, 0), start + 3, 50, settings)  # 11, 12, 13, 50
    session = stepping.switch(session, 1)
    trail = step_tab.trail(session)
    url = share_url("http://127.0.0.1:7860", "step", "tiny", None, [], trail["path"], trail["branches"])
    link = parse_query(dict(parse_qsl(urlsplit(url).query)), TABS)
    assert link.path == (11, 40, 41) and link.branches == ((11, 12, 13, 14), (11, 40, 41), (11, 12, 13, 50)), link
    view = step_tab.restore(str(tiny_gpt2.name), "It was", 0, list(link.path), [list(b) for b in link.branches],
                            **knobs)
    rebuilt = view[0]
    assert [b.ids for b in rebuilt.branches] == [b.ids for b in session.branches], "the branches differ"
    assert rebuilt.current == 1, f"branch {rebuilt.current + 1} is current, the link was on branch 2"
    assert [b.parent for b in rebuilt.branches] == [None, 0, 0], [b.parent for b in rebuilt.branches]
    assert [s.prob for s in rebuilt.branches[2].steps] == pytest.approx(
        [s.prob for s in session.branches[2].steps], abs=1e-6), "the replayed steps lost their numbers"


def test_bad_branches_in_a_link_are_named() -> None:
    link = parse_query({"tab": "step", "branches": "1,2;x"}, TABS)
    assert link.branches is None and any("`branches` has to be token IDs" in p for p in link.problems), link
    many = ";".join(["1"] * (deeplinks.MAX_BRANCHES + 1))
    assert any("at most" in p for p in parse_query({"branches": many}, TABS).problems)


def test_a_failed_load_puts_the_served_model_back_in_the_picker(tiny_gpt2_dir: object) -> None:
    from ui import header

    served = str(tiny_gpt2_dir)
    model, status, picker = header._pick("./missing-folder", served, progress=lambda *a, **k: None)
    assert model == served and picker["value"] == served, f"the picker shows {picker!r}, the session uses {model!r}"
    assert "Still serving" in status, status


def test_an_empty_prompt_is_refused_before_the_playground_says_generating(tiny_gpt2: object) -> None:
    from ui import playground_tab

    knobs = {**GenerationRequest().to_dict(), "bad_words": "", "stop_strings": "", "seed": ""}
    run = playground_tab._run(None, model=tiny_gpt2.name, prompt="", **{name: knobs[name] for name in playground_tab.KNOBS})
    with pytest.raises(gr.Error, match="type a prompt"):
        next(run)



def test_every_beam_tree_node_links_to_the_step_tab_at_exactly_its_tokens(tiny_gpt2: object) -> None:
    """A node of the beam tree opens the Step tab with the run's prompt and the hypothesis's token ids as
    ``path``, so the Step tab shows that prefix token for token (no text is tokenised again)."""
    import html
    import re

    from stepgen.generation import generate
    from ui import step_tab
    from ui.beamtree_view import beam_tree_html

    prompt = "It was a dark and stormy"
    result = generate(tiny_gpt2, prompt, GenerationRequest.from_dict(
        {"max_new_tokens": 6, "num_beams": 3, "num_return_sequences": 2}))
    page = beam_tree_html(result.beam_tree, prompt, result.model)
    links = [parse_query(dict(parse_qsl(urlsplit(html.unescape(href)).query)), TABS)
             for href in re.findall(r'<a class="bt-chip[^"]*" href="([^"]*)"', page)]
    beams = sum(len(step.beams) for step in result.beam_tree)
    assert len(links) >= beams, f"{len(links)} linked nodes for {beams} live beams"
    assert all(link.tab == "step" and link.model == result.model and dict(link.values).get("prompt") == prompt
               for link in links), f"a node links elsewhere: {links[0]}"
    paths = {link.path for link in links}
    for sequence in result.sequences:
        assert tuple(sequence.token_ids) in paths, f"no node links to returned sequence {sequence.token_ids}"
    prefixes = {tuple(sequence.token_ids[:n]) for sequence in result.sequences
                for n in range(1, len(sequence.token_ids) + 1)}
    assert prefixes <= paths, f"the returned paths' nodes {sorted(prefixes - paths)} have no link"
    knobs = {**DecodingSettings().to_dict(), "bad_words": "", "top_n": step_tab.DEFAULT_TOP_N}
    longest = max(paths, key=len)
    view = step_tab.restore(result.model, prompt, 0, list(longest), None, **knobs)
    session, explanation = view[0], view[4]
    assert list(session.ids) == [*result.prompt_ids, *longest], (
        f"the Step tab shows {list(session.ids)}, the node is {[*result.prompt_ids, *longest]}: {explanation}")
