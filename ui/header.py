"""The header: which model this session talks to, and loading another one.

The session's model name lives in a ``gr.State`` that every tab takes as an
input. A failed load shows why and leaves that state (and so every tab) on the
model it had. ``picker_keys.js`` keeps a Tab through the picker from opening its list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from stepgen.loading import LoadedModel, ModelLoadError
from stepgen.registry import default_model, get_model, get_registry
from ui import progress
from ui.errors import as_text, user_errors

PICKER_KEYS_JS = Path(__file__).with_name("picker_keys.js").read_text(encoding="utf-8")


def describe(loaded: LoadedModel) -> str:
    facts = loaded.info()
    return (
        f"**Serving <code>{as_text(facts['name'])}</code>** · {as_text(facts['architecture'])} · "
        f"{facts['parameters'] / 1e6:.0f} M parameters · "
        f"context {facts['context_length']} tokens · vocabulary {facts['vocab_size']} · {facts['device']}"
    )


def switch_model(name: str, current: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[str, str]:
    """Load ``name`` for this session; on failure keep ``current`` and say why."""
    progress(0, desc=f"Loading {name}")
    try:
        loaded = get_model(name, progress=lambda message: progress(None, desc=message))
    except ModelLoadError as error:  # said once, in the status line under the picker (no second notice)
        return current, f"⚠️ {as_text(error)}  \nStill serving <code>{as_text(current)}</code>."
    return loaded.name, describe(loaded)


def _pick(name: str, current: str, progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[str, str, Any]:
    """The picker's handler: switch, and show in the picker the model really served (the old one on failure)."""
    model, text = switch_model(name, current, progress)
    return model, text, gr.update(value=model)


def show_current(current: str) -> str:
    try:
        return describe(get_model(current))
    except ModelLoadError as error:
        return f"⚠️ {as_text(error)}"


@user_errors
def load_model(model: str = "") -> dict[str, Any]:
    """Load a model and describe it.

    Parameters:
        model: a hub id, a local folder, a .gguf file or 'embedded'; empty means the app's default model.

    Returns {"name", "source", "architecture", "parameters": how many weights, "device", "context_length",
    "vocab_size", "special_tokens": {role: {"id", "text"}}, "has_chat_template", "load_seconds", "from_cache"}.
    """
    return get_model(model or default_model()).info()


def list_models() -> dict[str, Any]:
    """The models offered here, the default one, and those loaded now.

    Returns {"choices": the names the model picker offers, "default": the app's default model, "loaded": the
    models in memory now, "allowed": the only names accepted here, or None when any name is}.
    """
    registry = get_registry()
    return {"choices": registry.choices(), "default": default_model(), "loaded": registry.loaded(),
            "allowed": list(registry.allowed) if registry.allowed is not None else None}


def build_header() -> tuple[gr.State, gr.Markdown, list[Any]]:
    """Render the model picker; return the session state holding the model name, the status line, and the
    events that switch the model (a tab recomputes with ``event.then(...)``: a ``.then`` reads the inputs once
    the switch has landed, where a ``.change`` of the state could read them half-updated)."""
    registry = get_registry()
    start = default_model()
    choices = registry.offered()
    if start not in [name for _, name in choices]:
        choices = [(start, start), *choices]
    model_state = gr.State(start)
    with gr.Row(equal_height=True, elem_id="model-row"):
        picker = gr.Dropdown(
            choices=choices, value=start, allow_custom_value=registry.allowed is None, label="Model",
            info="A hub id, a local folder or a .gguf file; 'embedded' works offline.", scale=3,
            elem_id="model-picker",
        )
        load = gr.Button("Load model", scale=1, elem_id="load-model")
    status = gr.Markdown(elem_id="model-status")
    gr.HTML(elem_id="picker-keys", js_on_load=PICKER_KEYS_JS, padding=False, elem_classes=["stepgen-hidden"])
    switched = [
        load.click(_pick, [picker, model_state], [model_state, status, picker], api_visibility="private",
                   **progress.on(status)),
        picker.select(_pick, [picker, model_state], [model_state, status, picker], api_visibility="private",
                      **progress.on(status)),
    ]
    gr.api(load_model, api_name="load_model")
    gr.api(list_models, api_name="models")
    return model_state, status, switched


def on_page_load(demo: gr.Blocks, model_state: gr.State, status: gr.Markdown) -> Any:
    """Describe the serving model in the status line when a page opens; returns the event, so that what else a
    page load writes to the status line (a link's model) is chained after it and never overwritten by it."""
    return demo.load(show_current, [model_state], [status], api_visibility="private", **progress.on(status))
