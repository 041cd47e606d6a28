"""stepgen: watch a language model write one token at a time, and take the wheel.

Run ``python app.py`` (``--model`` or ``STEPGEN_MODEL`` pick the start-up model;
host and port come from ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT``).
``build_demo()`` assembles the Blocks app without starting a server, for tests.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

import gradio as gr

from stepgen.registry import get_model
from ui import (chart, compare_tab, deeplinks, endpoints, header, next_token_tab, playground_tab, progress, step_tab,
                tokenizer_tab)

HERE = Path(__file__).resolve().parent
TITLE = "stepgen: how a language model writes, one token at a time"


def build_demo() -> gr.Blocks:
    """The whole app: a header with the model picker, then one tab per view."""
    # the quick events' status: one spot, the first of the page (ui/progress.py says why)
    with gr.Blocks(title=TITLE) as demo, progress.one_spot():
        gr.Markdown(f"# {TITLE}")
        model_state, status, switched = header.build_header()
        # plotly.js (about a second of the browser's time) loads with the page, so that opening a tab with
        # charts does not freeze it
        chart.preload()
        views: dict[str, dict[str, Any]] = {}  # each tab's components by name, for deep links
        with gr.Tabs(elem_id="tabs", overflow_behavior="wrap"):  # a phone shows every tab, none behind "..."
            with gr.Tab("Tokenizer", id="tokenizer"):
                views["tokenizer"] = tokenizer_tab.build(model_state, switched)
            with gr.Tab("Next token", id="next-token"):
                views["next-token"] = next_token_tab.build(model_state, switched)
            with gr.Tab("Step by step", id="step"):
                views["step"] = step_tab.build(model_state, switched)
            with gr.Tab("generate() playground", id="playground"):
                views["playground"] = playground_tab.build(model_state, switched)
            with gr.Tab("Compare strategies", id="compare"):
                views["compare"] = compare_tab.build(model_state, switched)
        loaded = header.on_page_load(demo, model_state, status)
        deeplinks.wire(demo, model_state, status, views, after=loaded)
        endpoints.document(demo)
    return demo


QUEUE_SIZE = 32
"""Events that may wait in the queue at once (``STEPGEN_QUEUE_SIZE``); beyond it a user is told the app is busy."""


def queue_kwargs() -> dict[str, Any]:
    """What ``queue()`` needs: four runs of an event at once, and a bounded wait (never a silent hang)."""
    raw = os.environ.get("STEPGEN_QUEUE_SIZE", "").strip()
    if raw and not (raw.isdigit() and int(raw) >= 1):
        raise ValueError(f"`STEPGEN_QUEUE_SIZE` has to be a whole number from 1, but is {raw!r}")
    return {"default_concurrency_limit": 4, "max_size": int(raw) if raw else QUEUE_SIZE}


def launch_kwargs() -> dict[str, Any]:
    """What ``launch()`` needs besides the address (theme and style go here in Gradio 6)."""
    return {
        # Soft's subdued grey (#9ca3af) is 2.4:1 on its light background: too faint for hints and legends
        # on a projector; a darker grey meets WCAG AA (the dark theme's stays as it is)
        "theme": gr.themes.Soft().set(body_text_color_subdued="*neutral_600",
                                      body_text_color_subdued_dark="*neutral_400"),
        "css_paths": [HERE / "ui" / "style.css"],
        "ssr_mode": False,
        "show_error": True,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=TITLE)
    parser.add_argument("--model", help="start-up model: 'embedded', a hub id, a folder or a .gguf file")
    parser.add_argument("--host", default=None, help="address to listen on (default: GRADIO_SERVER_NAME or 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: GRADIO_SERVER_PORT or 7860)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.model:
        os.environ["STEPGEN_MODEL"] = args.model
    if args.host:  # the registry reads where the app listens: beyond loopback, only the offered models load
        os.environ["GRADIO_SERVER_NAME"] = args.host
    from stepgen.registry import default_model

    get_model(default_model())  # load before serving, with progress in the console
    demo = build_demo()
    demo.queue(**queue_kwargs()).launch(server_name=args.host, server_port=args.port, **launch_kwargs())


if __name__ == "__main__":
    main()
