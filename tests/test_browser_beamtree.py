"""The beam-search tree in real Chromium: an 8-beam, 40-step search on the embedded model, as a learner sees it.

The playground is opened by a link that runs the search; the tree it draws is
compared node for node with the ``beam_tree`` that ``/generate`` returns for
the same settings, the returned paths must be the outlined ones, the final
scores ``sequences_scores``, and a node's link must open the Step-by-step tab
with exactly that hypothesis's tokens. It saves ``docs/beam_tree.png`` (the
README shows it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from browser_helpers import wait_for_shown, wait_until_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = Path(__file__).resolve().parent.parent / "docs"
PROMPT = "The best thing about learning to cook is"
KNOBS = {"num_beams": 8, "max_new_tokens": 40, "min_new_tokens": 40, "num_return_sequences": 3}

BEAMS = """() => Array.from(document.querySelectorAll('#pg-output .bt-tree tbody tr'))
    .filter(row => row.querySelector('.bt-row')?.innerText.startsWith('beam'))
    .map(row => Array.from(row.querySelectorAll('td')).map(cell => {
        const chip = cell.querySelector('.bt-beam'); return chip ? Number(chip.dataset.id) : null }))"""
"""The token id of every live-beam chip, by row (beam), then column (step); null where a step has fewer beams."""


@pytest.fixture
def tree_page(browser: object, app_url: str, embedded_cache_dir: Path) -> Iterator[tuple[object, object]]:
    """The playground opened by a link that runs the 8-beam search on the embedded model, once it is done."""
    context = browser.new_context(viewport={"width": 1800, "height": 1100}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(240_000)  # the first load of the embedded model dequantises it; then 320 beam steps
    query = urlencode({"tab": "playground", "model": "embedded", "prompt": PROMPT, **KNOBS})
    page.goto(f"{app_url}/?{query}")
    page.wait_for_function("() => /Serving embedded/.test(document.querySelector('#model-status')?.innerText ?? '')")
    page.wait_for_function("() => /^Done/.test(document.querySelector('#pg-status')?.innerText.trim() ?? '')")
    page.wait_for_selector("#pg-output .bt-view")
    page.set_default_timeout(60_000)
    yield context, page
    context.close()


def test_the_tree_of_an_8_beam_40_step_search_is_generates_and_links_to_the_step_tab(
        tree_page: tuple[object, object], client: object) -> None:
    context, page = tree_page
    truth = client.predict(prompt=PROMPT, model="embedded", api_name="/generate", **KNOBS)
    tree = truth["beam_tree"]
    assert len(tree) == 40, f"/generate's tree has {len(tree)} steps"
    # every live beam of every step, in generate()'s beam order
    want = [[step["beams"][beam]["token_id"] if beam < len(step["beams"]) else None for step in tree]
            for beam in range(8)]
    wait_for_shown(page, BEAMS, want, "the tree's beams")
    assert page.locator("#pg-output .bt-tree thead th").count() == 41, "one column per step and the row labels"

    # the returned paths are the outlined nodes: a node is outlined exactly when its hypothesis starts a returned one
    returned = [sequence["token_ids"] for sequence in truth["sequences"]]
    prefixes = {tuple(ids[:n]) for ids in returned for n in range(1, len(ids) + 1)}
    nodes = page.eval_on_selector_all(
        "#pg-output .bt-tree a.bt-beam",
        "els => els.map(e => [e.getAttribute('href'), e.classList.contains('bt-path')])")
    assert len(nodes) == sum(len(step["beams"]) for step in tree), f"{len(nodes)} linked beams"
    for href, outlined in nodes:
        path = tuple(int(t) for t in dict(parse_qsl(urlsplit(href).query))["path"].split(","))
        assert outlined == (path in prefixes), f"the node {path[-3:]} (at step {len(path)}) is outlined={outlined}"

    # the final scores shown are generate()'s sequences_scores
    shown = page.eval_on_selector_all("#pg-output .bt-end[data-returned]",
                                      "els => els.map(e => [Number(e.dataset.returned), Number(e.dataset.score)])")
    assert sorted(row for row, _ in shown) == [0, 1, 2], f"returned sequences in the tree: {shown}"
    for row, score in shown:
        assert abs(score - truth["sequences"][row]["beam_score"]) < 1e-5, (
            f"sequence {row + 1}: the tree shows {score}, sequences_scores {truth['sequences'][row]['beam_score']}")

    # the small zoom fits more steps in the picture
    size = "() => parseFloat(getComputedStyle(document.querySelector('#pg-output .bt-tree')).fontSize)"
    normal = page.evaluate(size)
    page.locator("#pg-output .bt-zoom-small").check()
    page.wait_for_function(f"normal => ({size})() < normal", arg=normal)
    page.locator("#pg-output .bt-view").scroll_into_view_if_needed()
    # the last steps: where the hypotheses finish and the returned paths part
    page.eval_on_selector("#pg-output .bt-scroll", "box => { box.scrollLeft = box.scrollWidth }")
    wait_until_settled(page)
    page.mouse.move(0, 0)
    page.locator("#pg-output .bt-view").screenshot(path=str(DOCS / "beam_tree.png"))

    # a node on the best path, half-way, opens the Step tab with exactly its tokens
    target = tuple(returned[0][:12])
    node = next(i for i, (href, _) in enumerate(nodes)
                if dict(parse_qsl(urlsplit(href).query))["path"] == ",".join(map(str, target)))
    with context.expect_page() as opened:
        page.locator("#pg-output .bt-tree a.bt-beam").nth(node).click()
    step = opened.value
    step.set_default_timeout(120_000)
    step.wait_for_function("() => /Serving embedded/.test(document.querySelector('#model-status')?.innerText ?? '')")
    wait_for_shown(step, "() => Array.from(document.querySelectorAll('#step-text .step-gen-tok'))"
                         ".map(e => Number(e.dataset.id))", list(target), "the Step tab opened from the node")
    prompt = step.locator("#step-prompt textarea, #step-prompt input").first.input_value()
    assert prompt == PROMPT, f"the Step tab opened on the prompt {prompt!r}"
    errors = page.locator(".toast-body").all_inner_texts() + step.locator(".toast-body").all_inner_texts()
    assert not errors, f"the run raised notices: {errors}"
