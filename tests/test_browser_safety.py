"""In the browser: a value made of HTML and Markdown shows as its characters in notices, status lines and views.

Each test opens a link (or types a value) that the page quotes back, waits for
the notice or the view that quotes it, then looks for any element the value
would have made: a link or image to evil.example, a heading, emphasis. The
page's own headings and emphasis never contain the value's words.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from browser_helpers import wait_until_settled
from test_deeplinks import open_link
from test_safety import ANCHOR, HOSTILE

pytestmark = pytest.mark.browser

MADE = """() => {
    const made = [...document.querySelectorAll('a[href*=evil], img[src*=evil], [src*=evil], [href*=evil]')];
    for (const tag of ['h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'em', 'strong', 'code'])
        for (const element of document.querySelectorAll(tag))
            if (/Head|Sign in|\\bem\\b/.test(element.textContent)) made.push(element);
    return made.map(element => element.outerHTML.slice(0, 200));
}"""
"""The elements the hostile value made anywhere in the page."""
SHORT = ANCHOR + " ![x](https://evil.example/i.png) *em*"
"""A hostile value short enough for the tiny model's 128-token context (its tokenizer reads characters)."""


def notice_quoting(page: object, words: str) -> str:
    """The text of the first notice that contains ``words`` (waiting for it to appear)."""
    page.wait_for_function("words => [...document.querySelectorAll('.toast-body')].some("
                           "toast => toast.innerText.includes(words))", arg=words)
    return next(text for text in page.locator(".toast-body").all_inner_texts() if words in text)


def assert_nothing_made(page: object, where: str) -> None:
    made = page.evaluate(MADE)
    assert not made, f"{where}: the value became page elements: {made}"


def test_a_model_in_a_link_shows_as_text_in_the_status(browser: object, app_url: str) -> None:
    """A model that cannot load is said once, in the status line under the picker."""
    page = open_link(browser, f"{app_url}/?{urlencode({'tab': 'next-token', 'model': HOSTILE})}")
    try:
        page.wait_for_function("words => document.querySelector('#model-status').innerText.includes(words)",
                               arg=ANCHOR)
        status = page.locator("#model-status").inner_text()
        for part in ("![x](https://evil.example/i.png)", "# Head *em*", "`code`"):
            assert part in status, f"the status line does not show {part!r} as its characters: {status!r}"
        assert "Still serving" in status, f"the status must say the old model still serves: {status!r}"
        assert_nothing_made(page, "a model name in a link")
    finally:
        page.context.close()


def test_a_bad_setting_in_a_link_is_quoted_as_text(browser: object, app_url: str) -> None:
    page = open_link(browser, f"{app_url}/?{urlencode({'tab': 'next-token', 'prompt': HOSTILE, 'top_k': HOSTILE})}")
    try:
        notice = notice_quoting(page, "`top_k`")
        assert ANCHOR in notice and "![x](https://evil.example/i.png)" in notice, f"the notice reads {notice!r}"
        wait_until_settled(page)
        assert_nothing_made(page, "a prompt and a setting in a link")
    finally:
        page.context.close()


def test_a_prompt_stop_string_and_banned_word_show_as_text_in_the_playground(browser: object, app_url: str) -> None:
    query = {"tab": "playground", "prompt": SHORT, "stop_strings": HOSTILE, "bad_words": HOSTILE,
             "max_new_tokens": 3}
    page = open_link(browser, f"{app_url}/?{urlencode(query)}")
    try:
        try:
            page.wait_for_function("() => /Done|Stopped/.test(document.querySelector('#pg-status')?.innerText ?? '')")
        except Exception:
            raise AssertionError(f"the linked run did not end: status {page.locator('#pg-status').inner_text()!r}, "
                                 f"notices {page.locator('.toast-body').all_inner_texts()}") from None
        output = page.locator("#pg-output").inner_text()
        assert "Sign in</a>" in output, f"the prompt does not show as its characters: {output!r}"
        wait_until_settled(page)
        assert_nothing_made(page, "a prompt, stop string and banned word in the playground")
    finally:
        page.context.close()


def test_a_typed_model_name_in_an_error_shows_as_text(browser: object, app_url: str) -> None:
    """An error raised by a page's own event (compare with another tokenizer) comes escaped for the page."""
    page = open_link(browser, f"{app_url}/?tab=tokenizer")
    try:
        page.get_by_text("Compare with another tokenizer").click()
        box = page.locator("#tok-compare-model input")
        box.fill(SHORT)
        box.press("Enter")
        page.locator("#tok-compare").click()
        notice = notice_quoting(page, ANCHOR)
        assert "![x](https://evil.example/i.png) *em*" in notice, f"the error reads {notice!r}"
        assert_nothing_made(page, "a typed model name")
    finally:
        page.context.close()
