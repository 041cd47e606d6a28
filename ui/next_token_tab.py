"""The Next-token tab: what the model thinks comes next, and what each decoding setting does to that.

A prompt, the decoding settings under their transformers names, and three
views of one :class:`~stepgen.distribution.Distribution`: a one-line reading,
the top-N chart (raw next to final, cut tokens greyed) with its table, and the
processor pipeline in ``generate()``'s order. Every control updates the views
live; an invalid setting shows a message naming it and leaves the views on
their last good state. The ``/next_token`` endpoint returns the same numbers
as JSON.

This module only converts between widgets and stepgen: tokenizing the prompt
is transformers' job, the numbers come from :mod:`stepgen.distribution`, the
figures from :mod:`stepgen.plots`, the words from :mod:`stepgen.explain`.

Longer than the ~300-line guide: the layout, the endpoint and the handlers of
one tab; its numbers, figures and words live in stepgen.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import gradio as gr

from stepgen import stepping
from stepgen.codegen import next_token_code
from stepgen.checks import pick_seed
from stepgen.distribution import Distribution, check_top_n, next_token
from stepgen.explain import effect, percent, quoted, reading
from stepgen.inputs import prompt_ids
from stepgen.plots import (
    CANDIDATE_HEADERS,
    PIPELINE_HEADERS,
    candidate_rows,
    distribution_figure,
    draws_figure,
    pipeline_figure,
    pipeline_rows,
)
from stepgen.registry import default_model, get_model
from stepgen.scoring import TextScore, score
from stepgen.knobs import DECODING, knob
from stepgen.settings import DecodingSettings
from stepgen.tokens import token_text
from ui import progress
from ui.chart import Chart
from ui.controls import control, controls, decoding, echo, joined, parsed
from ui.endpoints import knob_endpoint
from ui.errors import as_text, user_errors, warn
from ui.render import colour, legend_html, running_html

EXAMPLES = [
    "It was a dark and stormy",
    "Studying AI is",
    "The capital of France is",
    "The quick brown fox jumped over",
    "Once upon a time, there was a",
]
DEFAULT_TOP_N = 10
PIPELINE_NOTE = (
    "Each panel is the distribution after one of transformers' own `LogitsProcessor`s, in the order `generate()` "
    "applies them: penalties first, then temperature and the cut-offs. *Mass removed* is the probability a step "
    "cut away; *mass moved* is how much changed hands (temperature and penalties reshape without cutting)."
)




def summary(dist: Distribution, loaded: Any) -> str:
    """The reading, then the entropy and the facts behind it, as Markdown."""
    greedy = dist.candidate(dist.greedy_id)
    greedy_text = quoted(greedy.text) if greedy else f"id {dist.greedy_id}"
    facts = (
        f"entropy **{dist.entropy_bits:.2f} bits** (model) → **{dist.final_entropy_bits:.2f} bits** (after settings)"
        f" · greedy choice <code>{as_text(greedy_text)}</code> · {dist.n_input_tokens} of {loaded.context_length} "
        "context tokens used"
    )
    return f"{reading(dist)}  \n{facts}  \n{_literal(effect(dist))}"


_MARKDOWN = str.maketrans({char: f"&#{ord(char)};" for char in "\\`*_[]<>&~|#"})


def _literal(text: str) -> str:
    """``text`` shown as it is in Markdown: every character Markdown or HTML would read as markup, an entity."""
    return text.translate(_MARKDOWN)


def score_html(scored: TextScore) -> str:
    """The prompt's tokens coloured by the probability the model gave each one; hover for what it expected."""
    spans = []
    for token in scored.tokens:
        if token.prob is None:
            title = f"token {token.position} · id {token.id}\nthe first token: nothing comes before it to predict it"
            spans.append(f'<span class="sc-tok sc-first" title="{html.escape(title, quote=True)}">'
                         f"{running_html(token.text)}</span>")
            continue
        background, ink = colour(token.prob)
        title = (f"token {token.position} · id {token.id}\nprobability {token.prob:.4f} (rank {token.rank})\n"
                 f"the model expected {quoted(token.expected_text)} ({percent(token.expected_prob)})\n"
                 f"entropy {token.entropy:.2f} bits")
        spans.append(
            f'<span class="sc-tok" style="background-color:{background};color:{ink}" data-prob="{token.prob:.6f}" '
            f'data-rank="{token.rank}" data-id="{token.id}" title="{html.escape(title, quote=True)}">'
            f"{running_html(token.text)}</span>"
        )
    if scored.perplexity is None:
        head = "One token: nothing to predict yet. Type a longer prompt."
    else:
        surprised = max(scored.scored, key=lambda token: -token.logprob)
        head = (f"Perplexity <b>{scored.perplexity:.2f}</b> over {len(scored.scored)} predicted tokens: on average "
                f"the model was as unsure as a choice among {scored.perplexity:.1f} equally likely tokens. "
                f"Most surprising: {html.escape(quoted(surprised.text))} ({percent(surprised.prob)}; it expected "
                f"{html.escape(quoted(surprised.expected_text))}).")
    legend = legend_html("the probability the model gave each token before reading it; hover a token for what it "
                         "expected there.")
    return f'<div class="sc-head">{head}</div><div class="sc-text">{"".join(spans)}</div>{legend}'


def _score(model: str, prompt: str) -> str | Any:
    """The scored prompt, or the last view when the prompt cannot be scored (the chart's message says why)."""
    if not prompt:
        return ""
    try:
        loaded = get_model(model)
        return score_html(score(loaded, prompt_ids(loaded, prompt)))
    except ValueError:
        return gr.skip()


# --- views (private glue) ------------------------------------------------------------

VIEW_NAMES = ("message", "reading", "chart", "table", "pipeline_chart", "pipeline_table", "code", "draws",
              "draws_note")
"""The outputs of :func:`views`, in order."""
KNOB_NAMES = ("top_n", *DECODING)
"""The tab's knobs, by name, in the order of the table."""
MORE_CUTOFFS = ("epsilon_cutoff", "eta_cutoff")
"""Knobs folded into the "More cut-offs" accordion; every other knob of the table is shown open."""


def _distribution(model_name: str, prompt: str, knobs: dict[str, Any]) -> tuple[Any, DecodingSettings, Distribution]:
    """The model, the settings and the distribution the knobs describe (ValueError naming a bad one)."""
    settings, top_n = decoding(knobs, DEFAULT_TOP_N)
    loaded = get_model(model_name)
    return loaded, settings, next_token(loaded, prompt_ids(loaded, prompt), settings, top_n=top_n)


def views(model_name: str, prompt: str, knobs: dict[str, Any]) -> tuple[Any, ...]:
    """Every view (:data:`VIEW_NAMES`) for exactly this prompt and these knobs.

    No view ever shows numbers for anything else: without a prompt, or on a bad input (a message names it),
    the views are emptied rather than left on an earlier result. The draws belong to the settings they were
    drawn with, so any change clears them.
    """
    empty = ("", None, [], None, [], "", None, "")
    if not prompt:
        return ("Type a prompt (or pick an example) to see what comes next.", *empty)
    try:
        loaded, settings, dist = _distribution(model_name, prompt, knobs)
    except ValueError as error:
        warn(str(error))
        return (f"⚠️ {as_text(error)}", *empty)
    return (
        "",
        summary(dist, loaded),
        distribution_figure(dist),
        candidate_rows(dist),
        pipeline_figure(dist),
        pipeline_rows(dist),
        next_token_code(loaded, prompt, settings, top_n=check_top_n(knobs.get("top_n", DEFAULT_TOP_N))),
        None,
        "",
    )


@user_errors
def draw(model_name: str, prompt: str, knobs: dict[str, Any], samples: Any, seed: Any) -> tuple[Any, str]:
    """Draw tokens from the distribution the knobs describe: a chart of how often each came out."""
    _, _, dist = _distribution(model_name, prompt, knobs)
    draws = stepping.draw(dist, samples, 0 if seed in (None, "") else seed)
    top = max(dist.candidates, key=lambda c: c.final_prob)
    if dist.settings.greedy:
        note = (f"With `temperature` 0 nothing is random: all {draws.n:,} draws are the greedy token "
                f"{quoted(top.text)}, as `generate(do_sample=False)` picks it.")
    else:
        note = (f"In {draws.n:,} draws {quoted(top.text)} came out {dict(draws.counts).get(top.id, 0):,} times "
                f"({percent(draws.share(top.id))}), for a probability of {percent(top.final_prob)}. "
                f"{len(draws.counts):,} different tokens came out. Draw more to see the shares settle on the "
                "probabilities; a new seed gives another run of draws.")
    return draws_figure(dist, draws), note


def _knobs(values: dict[str, Any]) -> dict[str, Any]:
    return {name: parsed(name, value) for name, value in values.items()}


def _update(model: str, prompt: str, **knobs: Any) -> tuple[Any, ...]:
    return views(model, prompt, _knobs(knobs))


def _draw(model: str, prompt: str, samples: Any, seed: Any, **knobs: Any) -> tuple[Any, str]:
    return draw(model, prompt, _knobs(knobs), samples, seed)


def _reset(model: str, prompt: str) -> tuple[Any, ...]:
    """Every knob back to its start, and the views for that."""
    start = {name: knob(name).default for name in KNOB_NAMES}
    return (*(joined(name, value) for name, value in start.items()), *views(model, prompt, start))


# --- API ----------------------------------------------------------------------------


def _next_token_api(
    prompt: str = "",
    token_ids: list[int] | None = None,
    model: str = "",
    samples: int = 0,
    seed: int = -1,
    **knobs: Any,
) -> dict[str, Any]:
    """The next-token distribution: raw, after each decoding setting in generate()'s order, and final.

    Parameters:
        prompt: the text so far (encoded by the model's tokenizer, special tokens included as it adds them).
        token_ids: the token ids so far, instead of `prompt`.
        model: the model name; empty means the app's default model.
        {knobs}
        samples: also draw this many tokens from the final distribution, as generate(do_sample=True) draws one
            (0 = none, at most 100000); they come back as "draws".
        seed: the seed of those draws, from 0 to 2**32-1; -1 picks one at random (returned in "draws").

    Returns {"candidates": [{"id", "text", "logit", "prob", "logprob", "rank", "final_prob", "removed",
    "removed_by"}], "greedy_id", "entropy", "final_entropy", "other_mass", "final_other_mass", "survivors",
    "vocab_size", "stages": [{"name", "processor", "survivors", "removed_mass", "moved_mass", "entropy", "top",
    "shown"}], "settings", "n_input_tokens", "model", "token_ids", "reading"}. `prob` is the model's raw softmax,
    `final_prob` the probability after every setting (what sampling draws from). With `samples`, also
    "draws": {"n", "seed", "counts": [{"id", "text", "count"}]} (the most drawn first).
    """
    settings, top_n = decoding(knobs, DEFAULT_TOP_N)
    samples = 0 if samples is None else samples
    if samples != 0:  # 0 asks for none; anything else is checked as the number of draws
        stepping.check_draws(samples)
    seed = pick_seed(seed)
    loaded = get_model(model or default_model())
    ids = prompt_ids(loaded, prompt, token_ids)
    dist = next_token(loaded, ids, settings, top_n=top_n)
    answer = {**dist.to_dict(), "model": loaded.name, "token_ids": ids, "reading": reading(dist)}
    if samples:
        draws = stepping.draw(dist, samples, seed)
        answer["draws"] = {"n": draws.n, "seed": draws.seed, "counts": [
            {"id": token_id, "text": token_text(loaded.tokenizer, token_id), "count": count}
            for token_id, count in draws.counts]}
    return answer


next_token_api = user_errors(knob_endpoint(_next_token_api, KNOB_NAMES, last=("samples", "seed")))


@user_errors
def score_api(prompt: str = "", token_ids: list[int] | None = None, model: str = "") -> dict[str, Any]:
    """How likely the model found each token of a text: its prediction at every position, from one pass.

    Parameters:
        prompt: the text (encoded by the model's tokenizer, special tokens included as it adds them).
        token_ids: the token ids, instead of `prompt` (at most 2048).
        model: the model name; empty means the app's default model.

    Returns {"tokens": [{"position", "id", "text", "prob", "logprob", "rank", "entropy", "expected_id",
    "expected_text", "expected_prob"}], "ids", "scored", "logprob", "perplexity", "model"}. `prob` is the
    model's raw softmax probability of the token given the tokens before it (None for the first token, which
    nothing predicts); `expected_*` is the token it found most likely there; `perplexity` is exp of the mean
    negative log-probability of the scored tokens.
    """
    loaded = get_model(model or default_model())
    return {**score(loaded, prompt_ids(loaded, prompt, token_ids)).to_dict(), "model": loaded.name}


# --- layout -------------------------------------------------------------------------


def build(model_state: gr.State, switched: Sequence[Any] = ()) -> dict[str, Any]:
    """Render the tab; return its main components by name, and ``render``: the views for given knob values
    (what a deep link shows on page load)."""
    with gr.Row(elem_id="next-token-tab"):
        with gr.Column(scale=3):
            prompt = gr.Textbox(
                value=EXAMPLES[0], label="Prompt", lines=2, max_lines=8, elem_id="next-prompt",
                placeholder="Type the start of a text; the chart shows what the model expects next.",
            )
            gr.Examples([[text] for text in EXAMPLES], inputs=[prompt], label="Classic prompts")
            message = gr.Markdown(elem_id="next-message")
            summary_box = gr.Markdown(elem_id="next-reading")
            # the caption is Markdown, not the plot's label: Gradio draws a label over the top of the plot,
            # where plotly puts the legend
            gr.Markdown("**Top tokens**: the model's probability and the probability after your settings",
                        elem_id="next-chart-caption")
            chart = Chart(elem_id="next-chart")
            table = gr.Dataframe(headers=CANDIDATE_HEADERS, interactive=False, elem_id="next-table", max_height=420,
                                 label="The same numbers (log-prob is the natural log of the raw probability)")
            with gr.Accordion("Draw samples: how often does each token come out?", open=False,
                              elem_id="next-draws-box"):
                gr.Markdown("Sampling draws one token at random, each with its probability after your settings. "
                            "Draw many at once and count: the shares come close to the probabilities.")
                with gr.Row(equal_height=True):
                    samples = gr.Slider(1, 10_000, value=100, step=1, label="samples", elem_id="next-samples",
                                        scale=3)
                    draw_seed = gr.Number(value=0, precision=0, label="seed", elem_id="next-draw-seed", scale=1)
                    draw_button = gr.Button("Draw", elem_id="next-draw", scale=1)
                draws_note = gr.Markdown(elem_id="next-draws-note")
                draws_plot = Chart(elem_id="next-draws")
            with gr.Accordion("Every position: how likely was each token of the prompt?", open=False,
                              elem_id="next-score-box"):
                gr.Markdown("The model predicts the next token at every position of its input, not only at the "
                            "end. Each token below is coloured by the probability the model gave it, having read "
                            "only the tokens before it.")
                scored = gr.HTML(elem_id="next-score")
        with gr.Column(scale=1, min_width=280, elem_id="next-settings"):
            # the table's knobs in its order, the rarely used cut-offs folded away; a new knob shows up on its own
            first = KNOB_NAMES.index(MORE_CUTOFFS[0])
            knobs: dict[str, Any] = controls(KNOB_NAMES[:first], "next")
            with gr.Accordion("More cut-offs", open=False):
                knobs.update(controls(MORE_CUTOFFS, "next"))
            knobs.update(controls([name for name in KNOB_NAMES if name not in knobs], "next"))
            knobs = {name: knobs[name] for name in KNOB_NAMES}  # the table's order
            reset = gr.Button("Reset settings", size="sm", elem_id="next-reset")
    with gr.Accordion("The processor pipeline, in generate()'s order", open=True, elem_id="next-pipeline"):
        gr.Markdown(PIPELINE_NOTE)
        pipeline_chart = Chart(elem_id="next-pipeline-chart")
        pipeline_table = gr.Dataframe(headers=PIPELINE_HEADERS, interactive=False, elem_id="next-pipeline-table")
    with gr.Accordion("Copy as code: the Python that shows the same numbers", open=False):
        code = gr.Code(language="python", interactive=False, elem_id="next-code")

    outputs = [message, summary_box, chart, table, pipeline_chart, pipeline_table, code, draws_plot, draws_note]
    named = {"model": model_state, "prompt": prompt, **knobs}
    shown = gr.State(None)
    """The control values the views were computed from, by name (see :func:`ui.controls.echo`)."""
    # quick events: no spinner, no fading; a draw is slower and shows a spinner on its note
    quiet: dict[str, Any] = {"api_visibility": "private", **progress.quiet(message)}
    drawing = draw_button.click(_draw, inputs_kwargs={**named, "samples": samples, "seed": draw_seed},
                                outputs=[draws_plot, draws_note], **{**quiet, "show_progress": "minimal",
                                                                     **progress.on(draws_note)})

    def _edited(event: gr.EventData, model: str, prompt: str, showing: dict[str, Any] | None,
                **values: Any) -> tuple[Any, ...]:
        """The views for what is on screen, after an edit (an echo of a value the program set is skipped); the
        scored prompt too when the prompt changed (the settings do not touch a written text)."""
        if echo(event.target, {"prompt": prompt, **values}, named, showing):
            return tuple(gr.skip() for _ in range(len(outputs) + 2))
        return _fresh(model, prompt, showing, values)

    def _fresh(model: str, prompt: str, showing: dict[str, Any] | None, values: dict[str, Any]) -> tuple[Any, ...]:
        rescored = _score(model, prompt) if showing is None or showing.get("prompt") != prompt else gr.skip()
        return (*_update(model, prompt, **values), rescored, {"prompt": prompt, **values})

    def _settle(model: str, prompt: str, *rest: Any) -> tuple[Any, ...] | None:
        """The views again if the page's first view, landing after an edit, shows other values than the controls."""
        *on_screen, showing = rest
        values = dict(zip(knobs, on_screen, strict=True))
        if showing == {"prompt": prompt, **values}:
            return None
        return _fresh(model, prompt, showing, values)

    def _switched(model: str, prompt: str, **values: Any) -> tuple[Any, ...]:
        """Every view and the scored prompt for the model just loaded."""
        return _fresh(model, prompt, None, values)

    # One event for every control, so that the last edit's views always land last, and one answer per edit:
    # each answer costs the page a walk over its components, each chart draws in a task of its own (ui/chart).
    # Raw values (preprocess=False): a number typed beyond a slider's range gets the knob's own message, naming
    # it, instead of Gradio's. Draws still running belong to the old settings: they never land beside the new.
    gr.on([prompt.change, *(component.change for component in knobs.values())], _edited,
          inputs_kwargs={**named, "showing": shown}, outputs=[*outputs, scored, shown], trigger_mode="always_last",
          cancels=[drawing], preprocess=False, **quiet)
    for event in switched:  # chained: it reads the controls once the new model has landed; one answer
        event.then(_switched, inputs_kwargs=named, outputs=[*outputs, scored, shown], trigger_mode="always_last",
                   cancels=[drawing], **quiet)
    def _reset_all(model: str, prompt: str) -> tuple[Any, ...]:
        start = {name: joined(name, knob(name).default) for name in KNOB_NAMES}
        return (*_reset(model, prompt), {"prompt": prompt, **start})

    reset.click(_reset_all, inputs_kwargs={"model": model_state, "prompt": prompt},
                outputs=[*knobs.values(), *outputs, shown], cancels=[drawing], **quiet)
    gr.api(next_token_api, api_name="next_token")
    gr.api(score_api, api_name="score")

    def render(model_name: str, values: dict[str, Any]) -> dict[Any, Any]:
        """The views for these control values (a prompt and knobs by name; missing ones at their start)."""
        text = values.get("prompt", prompt.value)
        start = {name: parsed(name, values.get(name, knob(name).default)) for name in KNOB_NAMES}
        return {**dict(zip(outputs, views(model_name, text, start), strict=True)), scored: _score(model_name, text),
                shown: {"prompt": text, **{name: values.get(name, component.value)
                                           for name, component in knobs.items()}}}

    return {"prompt": prompt, **knobs, "chart": chart, "table": table, "reading": summary_box, "message": message,
            "pipeline_chart": pipeline_chart, "pipeline_table": pipeline_table, "render": (render, [*outputs, scored, shown]),
            "settle": (_settle, [model_state, prompt, *knobs.values(), shown], [*outputs, scored, shown])}
