"""The generate() playground tab: every knob that works offline, streamed, with each token's probability.

A prompt, presets, and the knobs under their transformers names; Generate
streams the text token by token (beam search shows its result at the end),
coloured by each token's probability (contrastive search: with the candidates
each token was chosen from), with the sequence log-probability and
perplexity, an entropy-per-step chart, the effective configuration with
warnings, and the Python that reproduces the run. Stop sets this session's
``threading.Event``, which :mod:`stepgen.generation` checks at every step, so
the server really stops working. The ``/generate`` endpoint returns the same
result as JSON.

This module only converts between widgets and stepgen: the run and its numbers
are :mod:`stepgen.generation`, the script :mod:`stepgen.codegen`. Every piece of
text that reaches the page goes through ``html.escape``.

Longer than the ~300-line guide: the layout, the endpoint and the streaming
handler of one tab; the run, presets and experiments live in stepgen.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Iterator, Sequence
from typing import Any

import gradio as gr
import plotly.graph_objects as go

from stepgen.codegen import python_code
from stepgen.effective import EffectiveConfig, effective_config
from stepgen.generation import run_ids, stream
from stepgen.presets import EXPERIMENTS, PRESET_NOTES, PRESETS, experiment, experiment_knobs, preset_knobs
from stepgen.checks import given_seed
from stepgen.knobs import DECODING, GENERATE_ONLY, knob
from stepgen.request import MAX_BEAMS, MAX_NEW_TOKENS, MAX_RETURN_SEQUENCES, GenerationRequest
from stepgen.results import GeneratedSequence, GenerationResult
from stepgen.registry import default_model, get_model
from stepgen.repetition import NGRAM, repeats
from ui import progress
from ui.chart import Chart
from ui.beamtree_view import beam_tree_html
from ui.contrastive_view import contrastive_html
from ui.controls import control
from ui.endpoints import knob_endpoint
from ui.errors import user_errors
from ui import runs
from ui.render import colour, legend_html, running_html

EXAMPLE = "It was a dark and stormy night; the"
SEED_HELP = (f"{knob('seed').meaning} Empty = a new random seed each run (shown after it; 'Use last seed' puts it "
             "here to repeat or share that text).")
_ORDER = ("max_new_tokens", "min_new_tokens", "do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p",
          "epsilon_cutoff", "eta_cutoff", "repetition_penalty", "no_repeat_ngram_size", "bad_words", "num_beams",
          "length_penalty", "early_stopping", "num_return_sequences", "stop_strings", "seed", "penalty_alpha")
KNOBS = (*_ORDER, *(name for name in (*DECODING, *GENERATE_ONLY) if name not in _ORDER))
"""The knob controls, in the order the handlers and ``/generate``'s positional callers take them: the order they
were added in, then any knob of the table not named here yet (so a new one goes last and needs no edit here)."""
_LAID_OUT = ("max_new_tokens", "min_new_tokens", "stop_strings", "do_sample", "seed", "temperature", "top_k",
             "penalty_alpha", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff", "repetition_penalty",
             "no_repeat_ngram_size", "bad_words", "num_beams", "length_penalty", "early_stopping",
             "num_return_sequences")
"""The knobs the column below places by hand; the others follow at its end, in the table's order."""
FINISH = {"eos": "the model wrote its end-of-sequence token", "stop_string": "a stop string",
          "length": "max_new_tokens", "stopped": "you pressed Stop", "running": "still writing"}
LINE_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")

# --- knobs -> request ------------------------------------------------------------


def _words(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _stop_strings(text: str | None) -> list[str]:
    out = []
    for part in (text or "").split(","):
        part = part.strip().replace("\\n", "\n").replace("\\t", "\t")
        if part:
            out.append(part)
    return out


def request_from_controls(values: dict[str, Any]) -> GenerationRequest:
    """The request the controls describe (text fields parsed, an empty seed meaning 'pick one')."""
    knobs = dict(values)
    knobs["bad_words"] = _words(knobs.get("bad_words"))
    knobs["stop_strings"] = _stop_strings(knobs.get("stop_strings"))
    knobs["seed"] = given_seed(knobs.get("seed"))
    return GenerationRequest.from_dict(knobs)


def _controls(knobs: dict[str, Any]) -> dict[str, Any]:
    """Control values for plain knob values, by knob name: word lists comma-joined, no seed as an empty box."""
    controls = {knob: knobs[knob] for knob in KNOBS if knob in knobs}
    for knob in ("bad_words", "stop_strings"):
        if knob in controls:
            controls[knob] = ", ".join(controls[knob])
    if "seed" in controls:
        controls["seed"] = "" if controls["seed"] is None else str(controls["seed"])
    return controls


def preset_values(name: str) -> list[Any]:
    """The control values of a preset, in :data:`KNOBS` order (the knobs it keeps are left alone)."""
    knobs = _controls(preset_knobs(name))
    return [knobs[knob] if knob in knobs else gr.skip() for knob in KNOBS]


def experiment_controls(name: str) -> dict[str, Any]:
    """The prompt and every knob of a classic experiment, by control name."""
    return {"prompt": experiment(name).prompt, **_controls(experiment_knobs(name))}


def _experiment_values(name: str) -> list[Any]:
    """The prompt, the knobs in :data:`KNOBS` order, and no preset (the experiment set every knob)."""
    controls = experiment_controls(name)
    return [controls["prompt"], *(controls[knob] for knob in KNOBS), None]


def preset_note(name: str | None) -> str:
    return f"**What this preset does.** {PRESET_NOTES[name]}" if name in PRESET_NOTES else ""


def _preset_note(name: str | None) -> Any:
    """The note of the preset now picked (by a person or a link); none picked (an experiment was): its note stays."""
    return preset_note(name) if name in PRESET_NOTES else gr.skip()


def experiment_note(name: str | None) -> str:
    return f"**What to look at.** {EXPERIMENTS[name].note}" if name in EXPERIMENTS else ""


def link_values(values: dict[str, Any]) -> dict[str, Any]:
    """A link's control values with its ``experiment`` or ``preset`` filled in, then the link's own values."""
    filled: dict[str, Any] = {}
    if values.get("experiment") in EXPERIMENTS:
        filled.update(experiment_controls(values["experiment"]))
    if values.get("preset") in PRESETS:
        filled.update(_controls(preset_knobs(values["preset"])))
    return {**filled, **values}


# --- result -> HTML ----------------------------------------------------------------


def token_spans(sequence: GeneratedSequence, sampling: bool, repeated: Sequence[bool] = ()) -> str:
    """The sequence's tokens as coloured spans (hover: probabilities and rank); ``repeated`` marks loops."""
    spans = []
    final_word = "drawn with" if sampling else "after the processors"
    for index, token in enumerate(sequence.tokens):
        background, ink = colour(token.prob)
        under, _ = colour(token.final_prob)
        loop = index < len(repeated) and repeated[index]
        title = (f"token {index + 1} · id {token.id}\nmodel probability {token.prob:.4f} (rank {token.rank})\n"
                 f"{final_word} {token.final_prob:.4f}\nentropy {token.entropy:.2f} bits"
                 + (f"\nrepeats: the {NGRAM} tokens ending here came before" if loop else ""))
        spans.append(
            f'<span class="pg-tok{" pg-rep" if loop else ""}" style="background-color:{background};color:{ink};'
            f'border-bottom-color:{under if sampling else background}" data-prob="{token.prob:.6f}" '
            f'data-final-prob="{token.final_prob:.6f}" data-rank="{token.rank}" data-id="{token.id}" '
            f'title="{html.escape(title, quote=True)}">{running_html(token.text)}</span>'
        )
    return "".join(spans)


def _summary(index: int, sequence: GeneratedSequence, repeated: Sequence[bool]) -> str:
    parts = [f"<b>Sequence {index + 1}</b>", f"{len(sequence.tokens)} tokens"]
    if sequence.tokens:
        parts += [f"log-prob {sequence.logprob:.2f}", f"perplexity {sequence.perplexity:.2f}"]
    if sequence.beam_score is not None:
        parts.append(f"beam score {sequence.beam_score:.3f}")
    parts.append(f"ended: {html.escape(FINISH.get(sequence.finish, sequence.finish))}")
    loop = next((position for position, mark in enumerate(repeated) if mark), None)
    if loop is not None:
        share = sum(repeated) / len(repeated)
        parts.append(f'<span class="pg-rep-note">repeats itself from token {loop + 1} ({share:.0%} of its tokens)</span>')
    return " · ".join(parts)


def sequences_html(prompt: str, sequences: tuple[GeneratedSequence, ...], sampling: bool,
                   prompt_ids: Sequence[int] = ()) -> str:
    """Every sequence, one under another, the prompt greyed in front; tokens that repeat an earlier run
    (the prompt's included) are marked."""
    if not sequences:
        return '<div class="pg-empty">No text yet.</div>'
    blocks = []
    for index, sequence in enumerate(sequences):
        repeated = repeats([*prompt_ids, *sequence.token_ids])[len(prompt_ids):]
        blocks.append(
            f'<div class="pg-seq" data-finish="{html.escape(sequence.finish)}">'
            f'<div class="pg-seq-head">{_summary(index, sequence, repeated)}</div>'
            f'<div class="pg-text"><span class="pg-prompt">{html.escape(prompt)}</span>'
            f"{token_spans(sequence, sampling, repeated)}</div></div>"
        )
    note = ("Colour: the model's probability of each token; the underline: the probability it was drawn with."
            if sampling else "Colour: the model's probability of each token.")
    legend = legend_html(f"{note} A bar on top: the token completes a run of {NGRAM} tokens written before (a "
                         "loop). Hover a token for its numbers.")
    return f'<div class="pg-seqs">{"".join(blocks)}{legend}</div>'


def effective_html(effective: EffectiveConfig) -> str:
    """The effective configuration as a table, with the warnings above it."""
    warnings = "".join(f"<li>{html.escape(w)}</li>" for w in effective.warnings)
    rows = "".join(
        f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(repr(value))}</td>"
        f"<td>{html.escape(repr(default))}</td><td>{html.escape(source)}</td></tr>"
        for name, value, default, source in effective.rows
    )
    return (
        (f'<ul class="pg-warnings">{warnings}</ul>' if warnings else '<p class="pg-ok">No setting is idle.</p>')
        + '<table class="pg-effective"><thead><tr><th>knob</th><th>generate() uses</th><th>model default</th>'
        f"<th>from</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def entropy_figure(result: GenerationResult) -> go.Figure:
    """Entropy of the model's distribution at each step, one line per sequence (dashed: after the settings)."""
    fig = go.Figure()
    for index, sequence in enumerate(result.sequences):
        steps = list(range(1, len(sequence.tokens) + 1))
        line_colour = LINE_COLOURS[index % len(LINE_COLOURS)]
        texts = [t.text for t in sequence.tokens]
        fig.add_scatter(x=steps, y=[t.entropy for t in sequence.tokens], mode="lines+markers",
                        name=f"sequence {index + 1}: model", line={"color": line_colour}, text=texts,
                        hovertemplate="step %{x} · %{text}<br>%{y:.2f} bits<extra></extra>")
        if result.request.do_sample:
            fig.add_scatter(x=steps, y=[t.final_entropy for t in sequence.tokens], mode="lines",
                            name=f"sequence {index + 1}: after settings",
                            line={"color": line_colour, "dash": "dash"},
                            hovertemplate="step %{x}<br>%{y:.2f} bits after the settings<extra></extra>")
    fig.update_layout(
        height=280, margin={"l": 10, "r": 10, "t": 30, "b": 10}, paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)", title={"text": "Entropy per step (bits): how unsure the model was", "x": 0},
        xaxis={"title": "generated token", "rangemode": "tozero"}, yaxis={"title": "bits", "rangemode": "tozero"},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def _status(result: GenerationResult) -> str:
    tokens = sum(len(s.tokens) for s in result.sequences)
    seed = f" · seed {result.request.seed}" if result.request.do_sample else ""
    mode = result.request.mode.replace("_", " ")
    if result.stopped:
        return f"**Stopped** after {tokens} tokens: you pressed Stop ({mode}{seed}, {result.seconds:.1f} s)."
    return (f"Done: {len(result.sequences)} sequence(s), {tokens} tokens, {mode}{seed}, "
            f"{result.seconds:.1f} s.")


def _contrastive(sequences: Sequence[GeneratedSequence], request: GenerationRequest) -> str:
    """What contrastive search weighed at each token (nothing for the other strategies)."""
    if request.penalty_alpha <= 0 or not sequences:
        return ""
    return contrastive_html(sequences[0].tokens, request.penalty_alpha)


# --- handlers -------------------------------------------------------------------------


def beam_status(steps: int, max_new_tokens: int) -> str:
    """What a beam search is doing while the user waits: how far it got, and why no text shows yet."""
    return (f"Beam search is running: step {steps} of at most {max_new_tokens}. Its texts appear when it is done: "
            "until the last step any beam can still be overtaken and dropped, so there is no text to stream.")


@user_errors
def _run(request: gr.Request, model: str, prompt: str, **controls: Any) -> Iterator[tuple[Any, ...]]:
    """Stream one run into (status, text, chart, effective config, code, last seed); the knobs come by name."""
    knobs = request_from_controls(controls)  # a bad knob stops here, before any work
    loaded = get_model(model)
    ids = run_ids(loaded, prompt, knobs)  # an empty or too long prompt too, before the page shows "Generating…"
    sampling = knobs.do_sample
    skip = gr.skip()
    # the flag is also set when Gradio closes this generator: the worker stops at its next step
    with runs.running(request, "generate") as stop:
        yield ("Generating…" if knobs.streams else beam_status(0, knobs.max_new_tokens),
               sequences_html(prompt, (), sampling), None,
               effective_html(effective_config(loaded, knobs)), "", skip)
        for update in stream(loaded, prompt, knobs, stop=stop):
            if update.result is not None:
                result = update.result
                yield (_status(result), sequences_html(prompt, result.sequences, sampling, ids)
                       + beam_tree_html(result.beam_tree, prompt, result.model)
                       + _contrastive(result.sequences, knobs), entropy_figure(result),
                       effective_html(result.effective), python_code(result),
                       result.request.seed if sampling else skip)
                return
            if update.status == "waiting":
                yield ("Waiting: another session is sampling. Sampling runs take turns so that a seed always "
                       "gives the same text.", skip, skip, skip, skip, skip)
                continue
            # stream() itself sends at most ten updates a second
            written = sum(len(s.tokens) for s in update.sequences)
            yield (f"Generating… {written} tokens so far." if knobs.streams else
                   beam_status(update.steps, knobs.max_new_tokens),
                   sequences_html(prompt, update.sequences, sampling, ids) + _contrastive(update.sequences, knobs),
                   skip, skip, skip, skip)


def _shared_values(values: dict[str, Any], last_seed: int | None) -> dict[str, Any]:
    """A shared link replays the text on screen: with an empty seed box, it carries the seed the last sampled
    run drew."""
    if values.get("do_sample") and not str(values.get("seed") or "").strip() and last_seed is not None:
        return {**values, "seed": str(last_seed)}
    return values


def _last_seed(seed: int | None) -> str | Any:
    """The seed of the last sampled run, for the seed box (nothing to do before the first one)."""
    return gr.skip() if seed is None else str(seed)


def _stop(request: gr.Request) -> None:
    """Stop this session's run (if any) at its next step."""
    runs.stop(request, "generate")


def _generate_api(prompt: str, model: str = "", **knobs: Any) -> Iterator[dict[str, Any]]:
    """Run model.generate() on a prompt with the given knobs; return every sequence with per-token probabilities.

    Streams: `predict` returns the final result; `submit` also yields the sequences while they grow (with
    "status": "running"; beam search shows its sequences only at the end, and its running updates carry
    "steps", the steps done so far, of at most "max_new_tokens"). Cancelling the job stops the work on the server.

    Parameters:
        prompt: the text to continue (encoded by the model's tokenizer as `tokenizer(prompt)` does).
        model: the model name; empty means the app's default model.
        {knobs}

    Returns {"status": "done", "sequences": [{"text", "token_ids", "tokens": [{"id", "text", "prob", "final_prob", "rank",
    "entropy", "final_entropy", "logprob"}], "logprob", "perplexity", "finish", "beam_score"}], "code", "mode", "seed",
    "effective": {"settings", "warnings"}, "generate_kwargs", "prompt_ids", "stopped", "seconds", ...}.
    `text` and `token_ids` are the continuation only; `prob` is the model's softmax probability of the token,
    `final_prob` its probability after every processor (what sampling drew it with); `code` is the Python that
    reproduces the run with plain transformers.
    """
    knobs = GenerationRequest.from_dict({**knobs, "seed": given_seed(knobs["seed"])})
    loaded = get_model(model or default_model())
    # closing() ends the run when Gradio closes this generator (a cancelled or dropped job): no orphan work
    with contextlib.closing(stream(loaded, prompt, knobs)) as updates:
        for update in updates:
            if update.result is not None:
                yield {"status": "done", **update.result.to_dict(), "code": python_code(update.result)}
            elif update.status == "running":
                running = {"status": "running", "sequences": [sequence.to_dict() for sequence in update.sequences]}
                if not knobs.streams:  # beam search shows no text before the end: how far it got instead
                    running.update(steps=update.steps, max_new_tokens=knobs.max_new_tokens)
                yield running


generate_api = user_errors(knob_endpoint(_generate_api, KNOBS))
"""``/generate``: the knobs in the order the endpoint has always listed them (positional callers keep working)."""


# --- layout -----------------------------------------------------------------------------


def build(model_state: gr.State, switched: Sequence[Any] = ()) -> dict[str, Any]:
    """Render the tab; return its main components by name."""
    with gr.Row(elem_id="playground-tab"):
        with gr.Column(scale=3):
            prompt = gr.Textbox(value=EXAMPLE, label="Prompt", lines=2, max_lines=8, elem_id="pg-prompt")
            with gr.Row(equal_height=True):
                experiment = gr.Dropdown(list(EXPERIMENTS), value=None, label="Classic experiments",
                                         info="Fills in a prompt and the knobs that show one idea; then Generate.",
                                         elem_id="pg-experiment", scale=1)
                preset = gr.Radio(list(PRESETS), value="greedy", label="Preset (fills in the knobs)",
                                  elem_id="pg-preset", scale=1)
            note = gr.Markdown(preset_note(preset.value), elem_id="pg-experiment-note")
            with gr.Row():
                run = gr.Button("Generate", variant="primary", elem_id="pg-run")
                stop = gr.Button("Stop", variant="stop", elem_id="pg-stop")
            status = gr.Markdown(elem_id="pg-status")
            output = gr.HTML(sequences_html("", (), False), elem_id="pg-output")
            chart = Chart(elem_id="pg-entropy")
            with gr.Accordion("Effective configuration: what generate() will actually use", open=True):
                effective = gr.HTML(elem_id="pg-effective")
            with gr.Accordion("Copy as code: the Python that reproduces this output", open=False):
                code = gr.Code(language="python", interactive=False, elem_id="pg-code")
        with gr.Column(scale=2, min_width=300, elem_id="pg-knobs"):
            controls: dict[str, Any] = {}
            for name in ("max_new_tokens", "min_new_tokens", "stop_strings", "do_sample"):
                controls[name] = control(name, "pg")
            with gr.Row(equal_height=True):
                controls["seed"] = gr.Textbox(label="seed", info=SEED_HELP, placeholder="random", scale=3,
                                              elem_id="pg-seed")
                reuse_seed = gr.Button("Use last seed", size="sm", scale=1, elem_id="pg-reuse-seed")
            for name in ("temperature", "top_k", "penalty_alpha", "top_p", "min_p"):
                controls[name] = control(name, "pg")
            with gr.Accordion("More sampling cut-offs", open=False):
                for name in ("typical_p", "epsilon_cutoff", "eta_cutoff"):
                    controls[name] = control(name, "pg")
            for name in ("repetition_penalty", "no_repeat_ngram_size", "bad_words", "num_beams", "length_penalty",
                         "early_stopping", "num_return_sequences",
                         *(name for name in KNOBS if name not in _LAID_OUT)):
                controls[name] = control(name, "pg")
    controls = {name: controls[name] for name in KNOBS}
    seed = controls["seed"]
    knob_inputs = [controls[name] for name in KNOBS]
    last_seed = gr.State(None)
    # no Gradio progress here (the status line says what runs); it is tracked on the status line (ui.progress)
    quick: dict[str, Any] = {"api_visibility": "private", **progress.quiet(status)}
    preset.input(user_errors(preset_values), [preset], knob_inputs, **quick)
    preset.change(_preset_note, [preset], [note], **quick)
    experiment.input(user_errors(_experiment_values), [experiment], [prompt, *knob_inputs, preset], **quick)
    experiment.change(experiment_note, [experiment], [note], **quick)
    run_inputs = {"model": model_state, "prompt": prompt, **controls}
    run_outputs = [status, output, chart, effective, code, last_seed]
    gr.on([run.click, prompt.submit], _run, inputs_kwargs=run_inputs, outputs=run_outputs, **quick)
    reuse_seed.click(_last_seed, [last_seed], [seed], **quick)
    # its own queue slot: Stop must get through while the run it stops holds one
    stop.click(_stop, None, None, api_visibility="private", concurrency_limit=None, queue=False)
    gr.api(generate_api, api_name="generate")
    # a link to this tab re-runs its generation once the knobs are restored (same seed, same text)
    return {"prompt": prompt, "experiment": experiment, "preset": preset, "generate_button": run, "stop": stop,
            "output": output, **controls, "expand": link_values, "replay": (_run, run_inputs, run_outputs),
            "share": (_shared_values, [last_seed])}
