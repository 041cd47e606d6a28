"""docs/embed.html, served next to a running app, shows the app inside it: as an iframe and as a web component.

The page is served as it is in the repository. Offline, the web component's
script comes from the running app itself (the very bundle Gradio's CDN serves
as gradio.js for this version) instead of the CDN, through the page's
``gradio_js`` parameter.
"""

from __future__ import annotations

import functools
import re
import threading
import urllib.request
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

DOCS = Path(__file__).resolve().parent.parent / "docs"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass


@pytest.fixture(scope="module")
def docs_url() -> Iterator[str]:
    """docs/ served over HTTP on a free local port, as a docs site would serve it."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(DOCS)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def local_gradio_js(app_url: str) -> str:
    """The app's own front-end bundle, which defines the <gradio-app> element."""
    with urllib.request.urlopen(app_url + "/", timeout=10) as response:
        start_page = response.read().decode()
    match = re.search(r'src="\.?/?(assets/index-[^"]+\.js)"', start_page)
    assert match, "the app's start page names no front-end bundle"
    return f"{app_url}/{match.group(1)}"


@pytest.fixture
def embed_page(browser: object, app_url: str, docs_url: str) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    query = urlencode({"app": app_url, "gradio_js": local_gradio_js(app_url), "tab": "step"})
    page.goto(f"{docs_url}/embed.html?{query}")
    yield page
    context.close()


def test_the_iframe_shows_the_app_opened_on_its_deep_link(embed_page: object) -> None:
    frame = embed_page.frame_locator("#stepgen-iframe")
    frame.locator("#model-status :text('Serving')").wait_for()
    assert "GPT2LMHeadModel" in frame.locator("#model-status").inner_text(), "the iframe's app shows no model"
    # the tab comes from the link, restored after the page loads: wait for the restore to select it
    expect(frame.get_by_role("tab", selected=True), "the iframe's deep link did not open Next token").to_have_text(
        "Next token")


def test_the_web_component_renders_the_app_inside_the_page(embed_page: object) -> None:
    element = embed_page.locator("gradio-app")
    element.locator("#model-status :text('Serving')").wait_for()
    assert element.get_by_role("tab", name="Tokenizer").is_visible(), "the web component shows no tabs"
    # the web component reads the deep link from the page's own URL (tab=step above)
    expect(element.get_by_role("tab", selected=True), "the web component did not open Step by step").to_have_text(
        "Step by step")
    heading = embed_page.locator("#web-component-heading").bounding_box()
    app_box = element.bounding_box()
    assert heading and app_box and app_box["y"] > heading["y"] and app_box["height"] > 200, (
        f"the app is not rendered in place below its heading: {heading}, {app_box}"
    )
