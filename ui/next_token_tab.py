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
"""

from __future__ import annotations

import html
import secrets
from typing import Any

import gradio as gr

from stepgen import stepping
from stepgen.codegen import next_token_code
from stepgen.distribution import Distribution, check_top_n, next_token
from stepgen.explain import SETTING_HELP, percent, quoted, reading
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
from stepgen.settings import DecodingSettings
from stepgen.tokens import token_text
from ui.errors import user_errors
from ui.playground_tab import VIRIDIS, colour, shown

EXAMPLES = [
    "It was a dark and stormy",
    "Studying AI is",
    "The capital of France is",
    "The quick brown fox jumped over",
    "Once upon a time, there was a",
]
DEFAULTS = DecodingSettings()
DEFAULT_TOP_N = 10
PIPELINE_NOTE = (
    "Each panel is the distribution after one of transformers' own `LogitsProcessor`s, in the order `generate()` "
    "applies them: penalties first, then temperature and the cut-offs. *Mass removed* is the probability a step "
    "cut away; *mass moved* is how much changed hands (temperature and penalties reshape without cutting)."
)


def split_words(text: str) -> tuple[str, ...]:
    """``'the, a'`` -> ``('the', 'a')``."""
    return tuple(word.strip() for word in text.split(",") if word.strip())


def summary(dist: Distribution, loaded: Any) -> str:
    """The reading, then the entropy and the facts behind it, as Markdown."""
    greedy = dist.candidate(dist.greedy_id)
    greedy_text = quoted(greedy.text) if greedy else f"id {dist.greedy_id}"
    facts = (
        f"entropy **{dist.entropy_bits:.2f} bits** (model) → **{dist.final_entropy_bits:.2f} bits** (after settings)"
        f" · greedy choice `{greedy_text}` · {dist.n_input_tokens} of {loaded.context_length} context tokens used"
    )
    return f"{reading(dist)}  \n{facts}"


def score_html(scored: TextScore) -> str:
    """The prompt's tokens coloured by the probability the model gave each one; hover for what it expected."""
    spans = []
    for token in scored.tokens:
        if token.prob is None:
            title = f"token {token.position} · id {token.id}\nthe first token: nothing comes before it to predict it"
            spans.append(f'<span class="sc-tok sc-first" title="{html.escape(title, quote=True)}">'
                         f"{shown(token.text)}</span>")
            continue
        background, ink = colour(token.prob)
        title = (f"token {token.position} · id {token.id}\nprobability {token.prob:.4f} (rank {token.rank})\n"
                 f"the model expected {quoted(token.expected_text)} ({percent(token.expected_prob)})\n"
                 f"entropy {token.entropy:.2f} bits")
        spans.append(
            f'<span class="sc-tok" style="background-color:{background};color:{ink}" data-prob="{token.prob:.6f}" '
            f'data-rank="{token.rank}" data-id="{token.id}" title="{html.escape(title, quote=True)}">'
            f"{shown(token.text)}</span>"
        )
    legend = "".join(f'<span style="background-color:{c}"></span>' for c in VIRIDIS)
    if scored.perplexity is None:
        head = "One token: nothing to predict yet. Type a longer prompt."
    else:
        surprised = max(scored.scored, key=lambda token: -token.logprob)
        head = (f"Perplexity <b>{scored.perplexity:.2f}</b> over {len(scored.scored)} predicted tokens: on average "
                f"the model was as unsure as a choice among {scored.perplexity:.1f} equally likely tokens. "
                f"Most surprising: {html.escape(quoted(surprised.text))} ({percent(surprised.prob)}; it expected "
                f"{html.escape(quoted(surprised.expected_text))}).")
    return (f'<div class="sc-head">{head}</div><div class="sc-text">{"".join(spans)}</div>'
            f'<div class="pg-legend">unlikely <span class="pg-scale">{legend}</span> certain · the probability the '
            "model gave each token before reading it; hover a token for what it expected there.</div>")


def _score(model_name: str, prompt: str) -> str | Any:
    """The scored prompt, or the last view when the prompt cannot be scored (the chart's message says why)."""
    if not prompt:
        return ""
    try:
        loaded = get_model(model_name)
        return score_html(score(loaded, prompt_ids(loaded, prompt)))
    except ValueError:
        return gr.skip()


# --- UI handlers (private glue) ----------------------------------------------------


def _distribution(model_name: str, prompt: str, top_n: float, temperature: float, top_k: float, top_p: float,
                  min_p: float, typical_p: float, epsilon_cutoff: float, eta_cutoff: float,
                  repetition_penalty: float, no_repeat_ngram_size: float, bad_words: str,
                  ) -> tuple[Any, DecodingSettings, Distribution]:
    """The model, the settings and the distribution the controls describe (ValueError naming a bad one)."""
    settings = DecodingSettings(
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, typical_p=typical_p,
        epsilon_cutoff=epsilon_cutoff, eta_cutoff=eta_cutoff, repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size, bad_words=split_words(bad_words or ""),
    )
    loaded = get_model(model_name)
    return loaded, settings, next_token(loaded, prompt_ids(loaded, prompt), settings, top_n=check_top_n(top_n))


def _update(model_name: str, prompt: str, *controls: Any) -> tuple[Any, ...]:
    """All views for the current controls; on a bad input, a message and the views left as they were.

    The draws shown belong to the settings they were drawn with, so any change clears them.
    """
    keep = tuple(gr.skip() for _ in range(8))
    if not prompt:
        return ("Type a prompt (or pick an example) to see what comes next.", *keep)
    try:
        loaded, settings, dist = _distribution(model_name, prompt, *controls)
    except ValueError as error:
        gr.Warning(str(error))
        return (f"⚠️ {error}  \nThe views below still show the last valid input.", *keep)
    return (
        "",
        summary(dist, loaded),
        distribution_figure(dist),
        candidate_rows(dist),
        pipeline_figure(dist),
        pipeline_rows(dist),
        next_token_code(loaded, prompt, settings, top_n=check_top_n(controls[0])),
        None,
        "",
    )


@user_errors
def _draw(model_name: str, prompt: str, *values: Any) -> tuple[Any, str]:
    """Draw tokens from the distribution the controls describe: a chart of how often each came out."""
    *controls, samples, seed = values
    _, _, dist = _distribution(model_name, prompt, *controls)
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


def _reset() -> tuple[Any, ...]:
    return (
        DEFAULT_TOP_N, DEFAULTS.temperature, DEFAULTS.top_k, DEFAULTS.top_p, DEFAULTS.min_p, DEFAULTS.typical_p,
        DEFAULTS.epsilon_cutoff, DEFAULTS.eta_cutoff, DEFAULTS.repetition_penalty, DEFAULTS.no_repeat_ngram_size, "",
    )


# --- API ----------------------------------------------------------------------------


@user_errors
def next_token_api(
    prompt: str = "",
    token_ids: list[int] | None = None,
    model: str = "",
    top_n: int = DEFAULT_TOP_N,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    min_p: float = 0.0,
    typical_p: float = 1.0,
    epsilon_cutoff: float = 0.0,
    eta_cutoff: float = 0.0,
    repetition_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    bad_words: list[str] | None = None,
    samples: int = 0,
    seed: int = -1,
) -> dict[str, Any]:
    """The next-token distribution: raw, after each decoding setting in generate()'s order, and final.

    Parameters:
        prompt: the text so far (encoded by the model's tokenizer, special tokens included as it adds them).
        token_ids: the token ids so far, instead of `prompt`.
        model: the model name; empty means the app's default model.
        top_n: how many of the most likely tokens to return (1 to 200).
        temperature: 0 means greedy; otherwise the logits are divided by it.
        top_k: keep the k most likely tokens (0 = off).
        top_p: keep the smallest set of tokens with mass >= top_p (1 = off).
        min_p: drop tokens below min_p times the top probability (0 = off).
        typical_p: locally typical sampling mass (1 = off).
        epsilon_cutoff: drop tokens below this probability (0 = off).
        eta_cutoff: entropy-dependent cut-off (0 = off).
        repetition_penalty: penalise tokens already present (1 = off).
        no_repeat_ngram_size: forbid repeating n-grams of this size (0 = off).
        bad_words: words that may never be written (a list; a single string is one word).
        samples: also draw this many tokens from the final distribution, as generate(do_sample=True) draws one
            (0 = none, at most 100000); they come back as "draws".
        seed: the seed of those draws, from 0 to 2**31-1; -1 picks one at random (returned in "draws").

    Returns {"candidates": [{"id", "text", "logit", "prob", "logprob", "rank", "final_prob", "removed",
    "removed_by"}], "greedy_id", "entropy", "final_entropy", "other_mass", "final_other_mass", "survivors",
    "vocab_size", "stages": [{"name", "processor", "survivors", "removed_mass", "moved_mass", "entropy", "top",
    "shown"}], "settings", "n_input_tokens", "model", "token_ids", "reading"}. `prob` is the model's raw softmax,
    `final_prob` the probability after every setting (what sampling draws from). With `samples`, also
    "draws": {"n", "seed", "counts": [{"id", "text", "count"}]} (the most drawn first).
    """
    settings = DecodingSettings(
        temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p, typical_p=typical_p,
        epsilon_cutoff=epsilon_cutoff, eta_cutoff=eta_cutoff, repetition_penalty=repetition_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size, bad_words=bad_words or (),
    )
    top_n = check_top_n(top_n)
    samples = 0 if samples is None else samples
    if samples != 0:  # 0 asks for none; anything else is checked as the number of draws
        stepping.check_draws(samples)
    seed = secrets.randbelow(stepping.MAX_SEED + 1) if seed is None or seed == -1 else stepping.check_seed(seed)
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


def _slider(
    name: str, minimum: float, maximum: float, step: float, value: float, label: str | None = None
) -> gr.Slider:
    return gr.Slider(
        minimum, maximum, value=value, step=step, label=label or name, info=SETTING_HELP[name],
        elem_id=f"next-{name.replace('_', '-')}",
    )


def build(model_state: gr.State) -> dict[str, gr.Component]:
    """Render the tab; return its main components by name."""
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
            chart = gr.Plot(show_label=False, elem_id="next-chart", elem_classes=["stepgen-plot"])
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
                    draw = gr.Button("Draw", elem_id="next-draw", scale=1)
                draws_note = gr.Markdown(elem_id="next-draws-note")
                draws_plot = gr.Plot(show_label=False, elem_id="next-draws", elem_classes=["stepgen-plot"])
            with gr.Accordion("Every position: how likely was each token of the prompt?", open=False,
                              elem_id="next-score-box"):
                gr.Markdown("The model predicts the next token at every position of its input, not only at the "
                            "end. Each token below is coloured by the probability the model gave it, having read "
                            "only the tokens before it.")
                scored = gr.HTML(elem_id="next-score")
        with gr.Column(scale=1, min_width=280, elem_id="next-settings"):
            top_n = gr.Slider(1, 50, value=DEFAULT_TOP_N, step=1, label="top N shown", info=SETTING_HELP["top_n"],
                              elem_id="next-top-n")
            temperature = _slider("temperature", 0.0, 2.0, 0.05, DEFAULTS.temperature, "temperature (0 = greedy)")
            top_k = _slider("top_k", 0, 100, 1, DEFAULTS.top_k)
            top_p = _slider("top_p", 0.0, 1.0, 0.01, DEFAULTS.top_p)
            min_p = _slider("min_p", 0.0, 1.0, 0.01, DEFAULTS.min_p)
            typical_p = _slider("typical_p", 0.0, 1.0, 0.01, DEFAULTS.typical_p)
            repetition_penalty = _slider("repetition_penalty", 0.0, 3.0, 0.05, DEFAULTS.repetition_penalty)
            no_repeat_ngram_size = _slider("no_repeat_ngram_size", 0, 6, 1, DEFAULTS.no_repeat_ngram_size)
            bad_words = gr.Textbox(label="bad words (bad_words_ids)", info=SETTING_HELP["bad_words"],
                                   placeholder="e.g. night, day", elem_id="next-bad-words")
            with gr.Accordion("More cut-offs", open=False):
                epsilon_cutoff = _slider("epsilon_cutoff", 0.0, 0.05, 0.0005, DEFAULTS.epsilon_cutoff)
                eta_cutoff = _slider("eta_cutoff", 0.0, 0.05, 0.0005, DEFAULTS.eta_cutoff)
            reset = gr.Button("Reset settings", size="sm", elem_id="next-reset")
    with gr.Accordion("The processor pipeline, in generate()'s order", open=True, elem_id="next-pipeline"):
        gr.Markdown(PIPELINE_NOTE)
        pipeline_chart = gr.Plot(show_label=False, elem_id="next-pipeline-chart", elem_classes=["stepgen-plot"])
        pipeline_table = gr.Dataframe(headers=PIPELINE_HEADERS, interactive=False, elem_id="next-pipeline-table")
    with gr.Accordion("Copy as code: the Python that shows the same numbers", open=False):
        code = gr.Code(language="python", interactive=False, elem_id="next-code")

    controls = [top_n, temperature, top_k, top_p, min_p, typical_p, epsilon_cutoff, eta_cutoff, repetition_penalty,
                no_repeat_ngram_size, bad_words]
    drawing = draw.click(_draw, [model_state, prompt, *controls, samples, draw_seed], [draws_plot, draws_note],
                         api_visibility="private", show_progress="minimal")
    gr.on(
        triggers=None,  # on page load and whenever any input changes (the model too)
        fn=_update,
        inputs=[model_state, prompt, *controls],
        outputs=[message, summary_box, chart, table, pipeline_chart, pipeline_table, code, draws_plot, draws_note],
        trigger_mode="always_last",
        show_progress="minimal",
        api_visibility="private",
        cancels=[drawing],  # draws still running belong to the old settings: they never land beside the new ones
    )
    reset.click(_reset, outputs=controls, api_visibility="private")
    # on page load and whenever the prompt or the model changes (the settings do not touch a written text)
    gr.on(None, _score, [model_state, prompt], [scored], trigger_mode="always_last", show_progress="hidden",
          api_visibility="private")
    gr.api(next_token_api, api_name="next_token")
    gr.api(score_api, api_name="score")
    return {
        "prompt": prompt, "top_n": top_n, "temperature": temperature, "top_k": top_k, "top_p": top_p,
        "min_p": min_p, "typical_p": typical_p, "epsilon_cutoff": epsilon_cutoff, "eta_cutoff": eta_cutoff,
        "repetition_penalty": repetition_penalty, "no_repeat_ngram_size": no_repeat_ngram_size,
        "bad_words": bad_words, "chart": chart, "table": table, "reading": summary_box, "message": message,
        "pipeline_chart": pipeline_chart, "pipeline_table": pipeline_table,
    }
