"""Contrastive search in real Chromium on the embedded model: every token's candidates, as /generate reports them.

The playground is opened by a link that runs contrastive search; the
candidates it shows for each token (id, probability, penalty, score) must be
those ``/generate`` returns for the same settings, and the overruled tokens
marked. It saves ``docs/contrastive.png`` (the README shows it).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

import pytest
from browser_helpers import wait_for_shown, wait_until_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = Path(__file__).resolve().parent.parent / "docs"
PROMPT = "The best thing about AI is"
KNOBS = {"penalty_alpha": 0.6, "top_k": 4, "max_new_tokens": 24}

SHOWN = """() => Array.from(document.querySelectorAll('#pg-output .cs-row')).map(row => [
    row.classList.contains('cs-overruled'),
    Array.from(row.querySelectorAll('.cs-cand')).map(cell => [Number(cell.dataset.id), cell.classList.contains('cs-taken')])])"""


def test_the_playground_shows_what_contrastive_search_weighed(browser: object, app_url: str, client: object,
                                                              embedded_cache_dir: Path) -> None:
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(180_000)  # the first load of the embedded model dequantises it
    page.goto(f"{app_url}/?{urlencode({'tab': 'playground', 'model': 'embedded', 'prompt': PROMPT, **KNOBS})}")
    page.wait_for_function("() => /Serving embedded/.test(document.querySelector('#model-status')?.innerText ?? '')")
    page.wait_for_function("() => /^Done/.test(document.querySelector('#pg-status')?.innerText.trim() ?? '')")
    page.set_default_timeout(60_000)
    truth = client.predict(prompt=PROMPT, model="embedded", api_name="/generate", **KNOBS)
    tokens = truth["sequences"][0]["tokens"]
    want = [[token["overruled"], [[c["id"], c["id"] == token["id"]] for c in token["candidates"]]] for token in tokens]
    wait_for_shown(page, SHOWN, want, "the contrastive view")
    numbers = page.eval_on_selector_all("#pg-output .cs-cand", "els => els.map(e => "
                                        "[Number(e.dataset.prob), Number(e.dataset.penalty), Number(e.dataset.score)])")
    every = [c for token in tokens for c in token["candidates"]]
    for shown, candidate in zip(numbers, every, strict=True):
        assert all(abs(a - b) < 1e-6 for a, b in zip(shown, (candidate["prob"], candidate["penalty"],
                                                             candidate["score"]))), f"{shown} vs {candidate}"
    page.locator("#pg-output .cs-view").scroll_into_view_if_needed()
    wait_until_settled(page)
    page.mouse.move(0, 0)
    page.locator("#pg-output .cs-view").screenshot(path=str(DOCS / "contrastive.png"))
    errors = page.locator(".toast-body").all_inner_texts()
    context.close()
    assert not errors, f"the run raised notices: {errors}"
