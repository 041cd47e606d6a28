"""The Compare strategies tab in real Chromium on the embedded model: four strategies, each column what /compare
returns; saves ``docs/compare.png`` for the README."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import open_embedded
from browser_helpers import set_number, wait_for_shown, wait_until_settled

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DOCS = Path(__file__).resolve().parent.parent / "docs"
PROMPT = "It was a dark and stormy night; the"
COLUMN_IDS = """() => Array.from(document.querySelectorAll('#cmp-output .cmp-col'))
    .map(col => Array.from(col.querySelectorAll('.cmp-tok')).map(tok => Number(tok.dataset.id)))"""


@pytest.fixture
def app_page(browser: object, app_url: str, embedded_cache_dir: Path) -> Iterator[object]:
    """The app opened on the embedded model by a deep link, in a window as wide as a laptop's."""
    yield from open_embedded(browser, app_url, height=1100)


def test_four_strategies_side_by_side_equal_compare(app_page: object, client: object) -> None:
    page = app_page
    page.get_by_role("tab", name="Compare strategies").click()
    page.locator("#cmp-prompt textarea").fill(PROMPT)
    set_number(page, "cmp-max-new-tokens", "20")
    truth = client.predict(prompt=PROMPT, model="embedded", settings=[], max_new_tokens=20, seed=0,
                           api_name="/compare")
    want = [result["sequences"][0]["token_ids"] for result in truth["results"]]
    assert len(want) == 4, f"/compare ran {len(want)} default settings, not 4"
    page.locator("#cmp-run").click()
    wait_for_shown(page, COLUMN_IDS, want, "the four columns")
    DOCS.mkdir(exist_ok=True)
    wait_until_settled(page)
    page.mouse.move(0, 0)
    page.screenshot(path=str(DOCS / "compare.png"), full_page=False)
