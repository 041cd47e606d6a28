"""The Compare strategies tab: one prompt, one seed, several decoding settings side by side, and ``/compare``.

Each column is one run of :func:`stepgen.compare.compare`, exactly what
``/generate`` returns for the same prompt, seed and settings: its text with
each token coloured by its model probability (:mod:`ui.render`), the sequence
log-probability, perplexity, distinct 2-grams, token count, time taken, where
it first leaves the first column, a link that opens it in the playground and
the Python that reproduces it.

This module only converts between widgets and stepgen; it imports no other tab
(the playground link is a URL, built with :mod:`ui.deeplinks`).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

import gradio as gr

from stepgen.compare import DEFAULT_SETTINGS, MAX_COMPARE, compare
from stepgen.presets import PRESETS
from stepgen.registry import default_model, get_model
from ui import progress
from ui.controls import control
from ui.deeplinks import DeepLink, to_query
from ui.endpoints import knob_endpoint
from ui.errors import user_errors
from ui.render import colour, legend_html, running_html

EXAMPLE = "It was a dark and stormy night; the"
CHOICES = {"greedy": "greedy", "beam search": "beam search", "sampling": DEFAULT_SETTINGS[2],
           "contrastive search": DEFAULT_SETTINGS[3], **{name: name for name in PRESETS}}
"""The strategies offered as checkboxes: the default four, then the other presets."""
DEFAULT_CHOICES = ["greedy", "beam search", "sampling", "contrastive search"]


def _compare_api(prompt: str, settings: list[Any] | None = None, model: str = "", **knobs: Any) -> dict[str, Any]:
    """Run several decoding settings on one prompt with one seed; return one /generate result per settings.

    Parameters:
        prompt: the text to continue.
        settings: a list (at most 6) of settings, each a dict of knobs by their transformers names or a preset
            name (greedy, beam search, creative sampling, precise sampling); empty means greedy, beam search,
            sampling and contrastive search.
        model: the model name; empty means the app's default model.
        {knobs}

    Returns {"results": [...], "metrics": [{"logprob", "perplexity", "distinct_2", "tokens", "seconds",
    "first_difference"}], "labels": [...]}: `results[i]` is what /generate returns for the prompt, the seed and
    settings[i] with the common knobs; `first_difference` is the first token index where the column's first
    sequence leaves the first column's (null when they are the same).
    """
    if isinstance(settings, str):  # a JSON text from a client that cannot send lists
        try:
            settings = json.loads(settings)
        except json.JSONDecodeError:
            settings = [settings]
    loaded = get_model(model or default_model())
    return compare(loaded, prompt, settings or None, **knobs)


compare_api = user_errors(knob_endpoint(_compare_api, ("max_new_tokens", "seed")))
"""``/compare``: settings, then the knobs common to every column."""


def playground_link(result: dict[str, Any]) -> str:
    """A link that opens a column's run in the playground (its knobs, its seed, its prompt)."""
    values: list[tuple[str, str]] = [("prompt", result["prompt"])]
    for name, value in result["request"].items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list):
            text = ",".join(str(part) for part in value)
        else:
            text = str(value)
        values.append((name, text))
    return "?" + to_query(DeepLink(tab="playground", model=result["model"], values=tuple(values)))


def _tokens_html(sequence: dict[str, Any]) -> str:
    spans = []
    for index, token in enumerate(sequence["tokens"]):
        background, ink = colour(token["prob"])
        title = f"token {index + 1} · id {token['id']}\nmodel probability {token['prob']:.4f} (rank {token['rank']})"
        spans.append(f'<span class="cmp-tok" style="background-color:{background};color:{ink}" '
                     f'data-prob="{token["prob"]:.6f}" data-id="{token["id"]}" '
                     f'title="{html.escape(title, quote=True)}">{running_html(token["text"])}</span>')
    return "".join(spans)


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def columns_html(data: dict[str, Any]) -> str:
    """Every column side by side: label, metrics, first difference, text, links."""
    if not data.get("results"):
        return '<div class="cmp-empty">No comparison yet.</div>'
    columns = []
    for index, (name, result, numbers) in enumerate(zip(data["labels"], data["results"], data["metrics"])):
        sequence = result["sequences"][0] if result["sequences"] else {"tokens": [], "text": ""}
        diff = numbers["first_difference"]
        note = ("the first column" if index == 0 else "same tokens as column 1" if diff is None
                else f"leaves column 1 at token {diff + 1}")
        columns.append(
            f'<div class="cmp-col" data-index="{index}">'
            f'<div class="cmp-head"><b>{html.escape(name)}</b></div>'
            f'<div class="cmp-metrics">log-prob {_number(numbers["logprob"])} · perplexity '
            f'{_number(numbers["perplexity"])} · distinct 2-grams {_number(numbers["distinct_2"])} · '
            f'{numbers["tokens"]} tokens · {numbers["seconds"]:.2f} s</div>'
            f'<div class="cmp-diff">{html.escape(note)}</div>'
            f'<div class="cmp-text"><span class="pg-prompt">{html.escape(result["prompt"])}</span>'
            f'{_tokens_html(sequence)}</div>'
            f'<div class="cmp-links"><a href="{html.escape(playground_link(result), quote=True)}" target="_blank" '
            f'class="cmp-open">Open in playground</a></div>'
            f'<details class="cmp-code"><summary>Copy as code</summary><pre><code>'
            f'{html.escape(result["code"])}</code></pre></details></div>')
    legend = legend_html("Colour: the model's probability of each token. Hover a token for its numbers.")
    return (f'<div class="cmp-cols" style="display:grid;grid-template-columns:repeat({len(columns)},minmax(0,1fr));'
            f'gap:0.75rem">{"".join(columns)}</div>{legend}')


def settings_list(chosen: Sequence[str], extra: str) -> list[Any]:
    """The settings of the ticked strategies, then those in the JSON box (one dict, or a list of them)."""
    settings: list[Any] = [CHOICES[name] for name in chosen or ()]
    if extra and extra.strip():
        try:
            added = json.loads(extra)
        except json.JSONDecodeError as error:
            raise ValueError(f"`add settings` has to be a JSON dict of knobs (or a list of them), but is not: "
                             f"{error.msg}") from None
        settings.extend(added if isinstance(added, list) else [added])
    if not settings:
        raise ValueError(f"`settings` has to hold from 1 to {MAX_COMPARE} settings, but holds 0: tick a strategy")
    return settings


def _run(model: str, prompt: str, chosen: list[str], extra: str, seed: Any, max_new_tokens: int) -> str:
    data = compare(get_model(model or default_model()), prompt, settings_list(chosen, extra), seed=seed,
                   max_new_tokens=max_new_tokens)
    return columns_html(data)


def build(model_state: gr.State, switched: Sequence[Any] = ()) -> dict[str, Any]:
    """Render the tab; return its main components by name."""
    with gr.Column(elem_id="compare-tab"):
        prompt = gr.Textbox(value=EXAMPLE, label="Prompt", lines=2, max_lines=8, elem_id="cmp-prompt")
        with gr.Row(equal_height=True):
            chosen = gr.CheckboxGroup(list(CHOICES), value=DEFAULT_CHOICES, label="Strategies",
                                      elem_id="cmp-strategies", scale=3)
            seed = gr.Number(value=0, precision=0, label="seed", info="One seed for every column.",
                             elem_id="cmp-seed", scale=1)
            max_new_tokens = control("max_new_tokens", "cmp")
        extra = gr.Textbox(label="add settings", lines=2, placeholder='{"do_sample": true, "temperature": 0.7}',
                           info=f"A JSON dict of knobs (or a list of them), such as a saved playground setting; at "
                                f"most {MAX_COMPARE} columns in all.", elem_id="cmp-extra")
        run = gr.Button("Run", variant="primary", elem_id="cmp-run")
        output = gr.HTML(columns_html({}), elem_id="cmp-output")
    gr.on([run.click, prompt.submit], user_errors(_run), [model_state, prompt, chosen, extra, seed, max_new_tokens],
          [output], api_visibility="private", **progress.on(output))
    gr.api(compare_api, api_name="compare")
    return {"prompt": prompt, "strategies": chosen, "seed": seed, "max_new_tokens": max_new_tokens,
            "run_button": run, "output": output}
