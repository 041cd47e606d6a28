"""The app shell in a real browser: it renders, shows the model and its tabs."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_app_renders_with_model_status_and_tabs(page: object) -> None:
    status = page.locator("#model-status").inner_text()
    assert "GPT2LMHeadModel" in status, status
    for label in ["Tokenizer", "Next token", "Step by step", "generate() playground"]:
        assert page.get_by_role("tab", name=label).is_visible(), f"tab {label!r} is not visible"
