"""The Step-by-step tab: build a text one token at a time, choosing each token yourself.

The text so far (each generated token coloured by the probability it had when
chosen), the next-token candidates as chips where one click appends a token,
buttons for a greedy, sampled or uniform step, auto-stepping with a Stop
button, undo, forcing a typed text, and branches: select a generated token to
see its alternatives, click one to fork. Keyboard: 1-9 pick a candidate, 'u'
or Backspace undoes (``ui/step_keys.js``, loaded by this tab itself).

The ``/step`` endpoint takes one step without session state. This module only
converts between widgets and :mod:`stepgen.stepping`, which does the work; the
session lives in a ``gr.State`` as plain data.

Longer than the ~300-line guide: the layout, the endpoint and the many small
handlers (step, pick, fork, undo, switch, force, auto-step) of one tab; the
work is stepgen.stepping's.
"""

from __future__ import annotations

import html
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import gradio as gr

from stepgen import stepping
from stepgen.autostep import auto_steps
from stepgen.checks import check_seed, pick_seed
from stepgen.explain import percent, quoted
from stepgen.replay import rebuild
from stepgen.inputs import prompt_ids
from stepgen.registry import default_model, get_model
from stepgen.knobs import DECODING
from stepgen.settings import DecodingSettings
from stepgen.tokenize import Group, TokenSpan, detokenize
from stepgen.tokens import hex_bytes, readable, token_bytes, token_text, visible
from ui import progress, runs
from ui.endpoints import knob_endpoint
from ui.errors import as_text, message, user_errors, warn
from ui.controls import control, decoding, echo, parsed
from ui.render import colour, legend_html, running_html, token_html

EXAMPLES = ["It was a dark and stormy", "The quick brown fox jumped over", "Studying AI is", "Once upon a time"]
DEFAULT_TOP_N = 9
AUTO_STEP_INTERVAL = 0.05
"""Seconds between auto-steps at least: a small model would otherwise finish before anyone could watch (or stop) it."""
KEYS_JS = (Path(__file__).with_name("step_keys.js")).read_text(encoding="utf-8")

TEXT_JS = """
element.addEventListener('click', (event) => {
  const token = event.target.closest('[data-pos]');
  if (token) trigger('click', {pos: Number(token.dataset.pos)});
});
"""
CHIPS_JS = """
element.addEventListener('click', (event) => {
  const chip = event.target.closest('[data-token]');
  if (chip) trigger('click', {token_id: Number(chip.dataset.token)});
});
"""


# --- converters: stepgen data -> HTML / Markdown -------------------------------------


def text_html(loaded: Any, session: stepping.Session, selected: int | None) -> str:
    """The text so far: prompt tokens plain, generated tokens coloured by their probability, all selectable.

    Tokens that each hold part of one character (an emoji is often three) show the character on the first of
    them and a ``+`` on the others, so the text reads as text; hovering a token still gives its own bytes.
    """
    prompt_len = len(session.prompt_ids)
    parts = ['<div class="step-text" aria-label="The text so far; select a token to see its alternatives">']
    for group in _groups(loaded, session.ids):
        whole = len(group.tokens) > 1
        for k, token in enumerate(group.tokens):
            pos, token_id = token.index, token.id
            text = (running_html(group.text) if k == 0 else "+") if whole else running_html(token.text)
            part = (f" · part of {group.text!r} (bytes {hex_bytes(token.bytes)})" if whole else "")
            classes = "step-tok" + (" step-cont" if whole and k else "") + (" step-selected" if pos == selected else "")
            if pos < prompt_len:
                parts.append(f'<button type="button" class="{classes} step-prompt-tok" data-pos="{pos}" '
                             f'title="prompt token {pos} · id {token_id}{html.escape(part, quote=True)}">{text}</button>')
                continue
            step = session.steps[pos - prompt_len]
            background, ink = colour(step.prob)
            title = (f"p={step.prob:.3f} · rank {step.rank} · final p={step.final_prob:.3f} · {step.strategy} · "
                     f"id {token_id}{part}")
            parts.append(
                f'<button type="button" class="{classes} step-gen-tok" data-pos="{pos}" data-id="{token_id}" '
                f'style="background:{background};color:{ink}" title="{html.escape(title, quote=True)}">{text}</button>'
            )
    parts.append("</div>")
    parts.append(legend_html("the probability each token had when it was chosen; hover for its rank, select a "
                             "generated token to see its alternatives and fork a branch."))
    return "".join(parts)


def _groups(loaded: Any, ids: tuple[int, ...]) -> tuple[Group, ...]:
    """The tokens of ``ids``, those holding parts of one character grouped (see :func:`detokenize`)."""
    try:
        return detokenize(loaded.tokenizer, list(ids)).merged()
    except ValueError:  # an id the tokenizer has no entry for (models may pad their output layer): one by one
        return tuple(Group((TokenSpan(index, token_id, token_text(loaded.tokenizer, token_id), "", b"", None, None,
                                      False),)) for index, token_id in enumerate(ids))


def chips_html(candidates: Any, *, current: int | None = None, numbered: bool = True) -> str:
    """Candidates as buttons with a probability bar (click = choose); the first nine are numbered for the keys."""
    top = max((c.final_prob for c in candidates), default=0.0) or 1.0
    parts = ['<div class="step-chips">']
    for index, c in enumerate(candidates):
        key = f'<kbd>{index + 1}</kbd>' if numbered and index < 9 else ""
        width = 100 * c.final_prob / top if top else 0
        cut = " step-cut" if c.final_prob == 0 else ""
        here = " step-current" if c.id == current else ""
        parts.append(
            f'<button type="button" class="step-chip{cut}{here}" data-token="{c.id}" '
            f'title="id {c.id} · rank {c.rank} · p={c.prob:.4f} · final p={c.final_prob:.4f}">'
            f'{key}<span class="step-chip-text">{token_html(c.text)}</span>'
            f'<span class="step-chip-prob">{percent(c.final_prob)}</span>'
            f'<span class="step-bar" style="width:{width:.1f}%"></span></button>'
        )
    parts.append("</div>")
    return "".join(parts)


def explain(session: stepping.Session, reused: int, computed: int) -> str:
    """What the model had to read for the candidates shown."""
    n = len(session.ids)
    if computed == 0:
        return (f"The model has read **{n}** tokens; the candidates below come straight from the cache "
                "(no token had to go through the model again).")
    if reused == 0:
        return f"The model read all **{n}** tokens once; their keys and values are now cached for the next step."
    return (f"The model saw **{n}** tokens: the cache already held the first **{reused}**, so only **{computed}** "
            f"went through the model (the classic loop would run all {n} again).")


def alternatives_html(loaded: Any, session: stepping.Session, selected: int | None) -> str:
    prompt_len = len(session.prompt_ids)
    if selected is None or not 0 <= selected < len(session.ids):
        return ""  # the legend under the text says how to select one
    if selected < prompt_len:
        return (f'<p class="step-hint">Token {selected} belongs to the prompt: the model did not choose it, so it '
                "has no alternatives. Select a generated (coloured) token.</p>")
    step = session.steps[selected - prompt_len]
    head = (f'<p>At token {selected}, <b>{step.strategy}</b> chose <code>{html.escape(quoted(step.text))}</code> '
            f"with p={step.prob:.3f} (rank {step.rank}; {percent(step.final_prob)} after the settings). "
            "<b>Click another candidate to fork a new branch here</b>; the current one is kept.</p>")
    return head + chips_html(step.alternatives, current=step.token_id, numbered=False)


def branch_choices(loaded: Any, session: stepping.Session) -> list[tuple[str, int]]:
    choices = []
    for index, branch in enumerate(session.branches):
        # the bytes of all its tokens read together: a character split over tokens shows as itself
        tail = readable(b"".join(token_bytes(loaded.tokenizer, t) for t in branch.ids[len(session.prompt_ids):]))[-40:]
        choices.append((f"{index + 1} · {len(branch.ids) - len(session.prompt_ids)} tokens · …{tail}", index))
    return choices


def branch_info(loaded: Any, session: stepping.Session) -> str:
    if len(session.branches) == 1:
        return "One branch. Select a generated token and click one of its alternatives to fork another."
    lines = []
    mine = session.ids
    for index, branch in enumerate(session.branches):
        if index == session.current:
            continue
        at = stepping.divergence(mine, branch.ids)
        theirs = token_text(loaded.tokenizer, branch.ids[at]) if at < len(branch.ids) else "(ends)"
        ours = token_text(loaded.tokenizer, mine[at]) if at < len(mine) else "(ends)"
        lines.append(f"- branch {index + 1} leaves this one at token {at}: <code>{as_text(visible(theirs))}</code> "
                     f"instead of <code>{as_text(visible(ours))}</code>")
    return f"You are on branch **{session.current + 1}**.\n" + "\n".join(lines)


# --- handlers (private glue) ----------------------------------------------------------

SETTING_NAMES = DECODING
"""The decoding settings, by name; handlers take them, and ``top_n``, as keyword arguments."""
KNOB_NAMES = (*DECODING, "top_n")


def _settings(knobs: dict[str, Any]) -> tuple[DecodingSettings, int]:
    """The settings and the number of candidates the knobs (by name, as their controls hold them) describe."""
    return decoding({name: parsed(name, value) for name, value in knobs.items()}, DEFAULT_TOP_N)


def _seed(value: Any) -> int:
    return check_seed(0 if value is None or value == "" else value)


def trail(session: stepping.Session) -> dict[str, Any]:
    """What a link needs to rebuild the session: the current path and every branch (token ids after the
    prompt)."""
    start = len(session.prompt_ids)
    return {"path": list(session.ids[start:]), "branches": [list(branch.ids[start:]) for branch in session.branches]}


def _view(loaded: Any, session: stepping.Session, selected: int | None, settings: DecodingSettings, top_n: int,
          result: stepping.StepResult | None = None, notice: str = "", *,
          knobs: dict[str, Any] | None = None) -> tuple[Any, ...]:
    """Every output of the tab; the last is ``knobs``, the control values the candidates were computed from
    (see :func:`ui.controls.echo`)."""
    if result is None:
        dist, lookup = stepping.distribution(loaded, session.ids, settings, top_n=top_n)
        reused, computed = lookup.reused, lookup.computed
    else:
        dist, reused, computed = result.next, result.reused, result.computed
    return (
        session,
        selected,
        text_html(loaded, session, selected),
        chips_html(dist.candidates),
        (f"⚠️ {as_text(notice)}\n\n" if notice else "") + explain(session, reused, computed),
        alternatives_html(loaded, session, selected),
        gr.Radio(choices=branch_choices(loaded, session), value=session.current),
        branch_info(loaded, session),
        trail(session),
        dict(knobs) if knobs is not None else gr.skip(),
    )


def _session(loaded: Any, session: stepping.Session | None, prompt: str, seed: Any) -> stepping.Session:
    """The session to act on: the current one, or a new one when there is none or the model changed."""
    if session is not None and session.model == loaded.name:
        return session
    return stepping.start(loaded.name, prompt_ids(loaded, prompt), _seed(seed))


@user_errors
def _start(model: str, prompt: str, seed: Any, **knobs: Any) -> tuple[Any, ...]:
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    return _view(loaded, _session(loaded, None, prompt, seed), None, settings, top_n, knobs=knobs)


@user_errors
def restore(model: str, prompt: str, seed: Any, path: Any = None, branches: Any = None,
            **knobs: Any) -> tuple[Any, ...]:
    """Start from the prompt and replay a shared view: every branch (token ids after the prompt), the one on
    ``path`` current. A token the model cannot take ends its branch there, and the view says so."""
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    path = list(path or [])
    every = [list(branch) for branch in branches] if branches else [path]
    session, notice = rebuild(loaded, prompt_ids(loaded, prompt), every, settings=settings, seed=_seed(seed),
                              top_n=top_n)
    start = len(session.prompt_ids)
    current = next((index for index, branch in enumerate(session.branches) if list(branch.ids[start:]) == path),
                   len(session.branches) - 1)
    return _view(loaded, stepping.switch(session, current), None, settings, top_n, notice=notice, knobs=knobs)


@user_errors
def _refresh(model: str, session: stepping.Session | None, selected: int | None, prompt: str, seed: Any,
             **knobs: Any) -> tuple[Any, ...]:
    """The same text with candidates for the settings (or the model) now on screen."""
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    current = _session(loaded, session, prompt, seed)
    return _view(loaded, current, selected if current is session else None, settings, top_n, knobs=knobs)


def _stepper(strategy: str) -> Any:
    @user_errors
    def take(model: str, session: stepping.Session | None, selected: int | None, prompt: str, seed: Any,
             **knobs: Any) -> tuple[Any, ...]:
        loaded = get_model(model)
        settings, top_n = _settings(knobs)
        current = _session(loaded, session, prompt, seed)
        moved, result = stepping.advance(loaded, current, settings, strategy, top_n=top_n)
        return _view(loaded, moved, selected, settings, top_n, result, knobs=knobs)

    take.__name__ = f"_step_{strategy}"
    return take


@user_errors
def _pick(event: gr.EventData, model: str, session: stepping.Session | None, selected: int | None, prompt: str,
          seed: Any, **knobs: Any) -> tuple[Any, ...]:
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    current = _session(loaded, session, prompt, seed)
    moved, result = stepping.advance(loaded, current, settings, "token", token_id=int(event.token_id), top_n=top_n)
    return _view(loaded, moved, selected, settings, top_n, result, knobs=knobs)


@user_errors
def _select(event: gr.EventData, model: str, session: stepping.Session | None, selected: int | None, prompt: str,
            seed: Any, **knobs: Any) -> tuple[Any, ...]:
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    current = _session(loaded, session, prompt, seed)
    position = int(event.pos)
    return _view(loaded, current, None if position == selected else position, settings, top_n, knobs=knobs)


@user_errors
def _fork(event: gr.EventData, model: str, session: stepping.Session | None, selected: int | None, prompt: str,
          seed: Any, **knobs: Any) -> tuple[Any, ...]:
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    if session is None or selected is None:
        raise ValueError("Select a generated token first, then click one of its alternatives to fork.")
    forked, result = stepping.fork(loaded, session, int(selected), int(event.token_id), settings, top_n=top_n)
    return _view(loaded, forked, None, settings, top_n, result, knobs=knobs)


@user_errors
def _undo(model: str, session: stepping.Session | None, selected: int | None, prompt: str, seed: Any,
          **knobs: Any) -> tuple[Any, ...]:
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    undone = stepping.undo(_session(loaded, session, prompt, seed))
    keep = selected if selected is not None and selected < len(undone.ids) else None
    return _view(loaded, undone, keep, settings, top_n, knobs=knobs)


@user_errors
def _switch(model: str, session: stepping.Session | None, selected: int | None, prompt: str, seed: Any,
            branch: Any, **knobs: Any) -> tuple[Any, ...]:
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    if session is None or branch is None:
        return _view(loaded, _session(loaded, session, prompt, seed), None, settings, top_n, knobs=knobs)
    return _view(loaded, stepping.switch(session, int(branch)), None, settings, top_n, knobs=knobs)


@user_errors
def _force(model: str, session: stepping.Session | None, selected: int | None, prompt: str, seed: Any, text: str,
           **knobs: Any) -> tuple[Any, ...]:
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    moved, result = stepping.force_text(loaded, _session(loaded, session, prompt, seed), text, settings, top_n=top_n)
    return _view(loaded, moved, selected, settings, top_n, result, knobs=knobs)


def _cleared() -> str:
    return ""


@user_errors
def _reseed(session: stepping.Session | None, seed: Any) -> stepping.Session | None:
    return None if session is None else stepping.reseed(session, _seed(seed))


@user_errors
def _auto(request: gr.Request, model: str, session: stepping.Session | None, selected: int | None, prompt: str,
          seed: Any, count: Any, mode: str, **knobs: Any) -> Any:
    """Step ``count`` times, streaming the text; stops at the end-of-text token or when Stop is pressed.

    Stop sets this run's flag rather than cancelling the event: the step under way is shown before the run
    ends, so the text on screen is the session's (a cancelled event could keep a step it never showed)."""
    loaded = get_model(model)
    settings, top_n = _settings(knobs)
    current = _session(loaded, session, prompt, seed)
    with runs.running(request, "auto-step") as stop:
        for current, result in auto_steps(loaded, current, settings, mode, count, interval=AUTO_STEP_INTERVAL,
                                          top_n=top_n, stop=stop):
            yield _view(loaded, current, selected, settings, top_n, result, knobs=knobs)


def _stop(request: gr.Request) -> None:
    """End this session's auto-step run after the step it is in."""
    runs.stop(request, "auto-step")


# --- API ----------------------------------------------------------------------------------


def _step_api(
    token_ids: list[int] | None = None,
    prompt: str = "",
    strategy: str = "greedy",
    token_id: int = -1,
    seed: int = -1,
    model: str = "",
    **knobs: Any,
) -> dict[str, Any]:
    """Append one token to a text and return the whole sequence, the chosen token and the next distribution.

    Parameters:
        token_ids: the token ids so far (or give `prompt`).
        prompt: the text so far, encoded by the model's tokenizer, used when `token_ids` is empty.
        strategy: "greedy" (most likely after the settings), "sample" (drawn from the final distribution, as
            generate(do_sample=True) draws), "uniform" (any vocabulary token, equally likely), "token" (the id in
            `token_id`), or a token id written as a number.
        token_id: the token to append with strategy "token" (or any strategy when >= 0).
        seed: sampling seed from 0 to 2**32-1; -1 picks one at random (returned as `seed`). Without session state,
            a fresh torch.Generator is seeded with seed * 2**32 + len(token_ids), so the same request always draws
            the same token.
        model: the model name; empty means the app's default model.
        {knobs}

    Returns {"token_ids": the whole sequence (one token longer), "text": its decoding, "chosen": {"id", "text",
    "strategy", "prob", "final_prob", "logprob", "rank", "alternatives"}, "next": the next distribution (as
    /next_token returns it), "seed", "model", "reused_tokens", "computed_tokens"} where the last two say how many
    tokens of the cached prefix the next distribution reused and how many went through the model.
    """
    settings, top_n = decoding(knobs, DEFAULT_TOP_N)
    loaded = get_model(model or default_model())
    ids = prompt_ids(loaded, prompt, token_ids)
    if not isinstance(strategy, str):
        raise ValueError(f"`strategy` has to be one of greedy, sample, uniform, token (or a token id), "
                         f"but is {strategy!r}")
    strategy = strategy.strip() or "greedy"
    token_id = -1 if token_id is None else token_id
    if isinstance(token_id, float) and token_id.is_integer():
        token_id = int(token_id)
    if isinstance(token_id, bool) or not isinstance(token_id, int):
        raise ValueError(f"`token_id` has to be a token id (or -1 for none), but is {token_id!r}")
    if strategy.isdigit():
        strategy, token_id = "token", int(strategy)
    elif token_id >= 0:
        strategy = "token"
    if strategy not in ("greedy", "sample", "uniform", "token"):
        raise ValueError(f"`strategy` has to be one of greedy, sample, uniform, token (or a token id), but is {strategy!r}")
    seed = pick_seed(seed)
    generator = stepping.new_generator(0, loaded.device).manual_seed(stepping.api_seed(seed, len(ids)))
    result = stepping.step(loaded, ids, settings, strategy, generator=generator,
                           token_id=token_id if strategy == "token" else None, top_n=top_n)
    return {
        "token_ids": list(result.ids),
        "text": loaded.tokenizer.decode(list(result.ids)),
        "chosen": result.step.to_dict(),
        "next": result.next.to_dict(),
        "seed": seed,
        "model": loaded.name,
        "reused_tokens": result.reused,
        "computed_tokens": result.computed,
    }


step_api = user_errors(knob_endpoint(_step_api, ("top_n", *DECODING)))


# --- layout -------------------------------------------------------------------------------


def build(model_state: gr.State, switched: Sequence[Any] = ()) -> dict[str, Any]:
    """Render the tab; return its main components by name."""
    session = gr.State(None)
    selected = gr.State(None)
    with gr.Column(elem_id="step-tab"):
        gr.Markdown(
            "Write a text the way the model does: one token at a time. Click a candidate (or press **1**–**9**) to "
            "append it, or let a strategy choose. **u** or **Backspace** undoes."
        )
        with gr.Row(equal_height=True):
            prompt = gr.Textbox(value=EXAMPLES[0], label="Prompt", lines=1, max_lines=6, scale=4,
                                elem_id="step-prompt", placeholder="Type a start and press Enter")
            reset = gr.Button("Start over", scale=1, elem_id="step-reset")
        gr.Examples([[text] for text in EXAMPLES], inputs=[prompt], label="Classic prompts")
        explanation = gr.Markdown(elem_id="step-explain")
        text = gr.HTML(elem_id="step-text", js_on_load=TEXT_JS, padding=False)
        # right under the text, so the alternatives of a selected token (and the fork) appear next to it
        alternatives = gr.HTML(elem_id="step-alts", js_on_load=CHIPS_JS, padding=False)
        gr.Markdown("**Next token**: click one to append it (its bar is the probability after your settings).")
        candidates = gr.HTML(elem_id="step-candidates", js_on_load=CHIPS_JS, padding=False)
        with gr.Row():
            greedy = gr.Button("Greedy step", elem_id="step-greedy", variant="primary")
            sample = gr.Button("Sample a step", elem_id="step-sample")
            uniform = gr.Button("Uniform step (ignores the model)", elem_id="step-uniform")
            undo = gr.Button("Undo", elem_id="step-undo")
        with gr.Row(equal_height=True):
            # no minimum/maximum here: Gradio's own range message does not name the box; _auto's does
            count = gr.Number(value=20, label="Auto-step N tokens", precision=0, elem_id="step-n", scale=1)
            mode = gr.Radio(["sample", "greedy", "uniform"], value="sample", label="Auto-step chooses by",
                            elem_id="step-auto-mode", scale=2)
            auto = gr.Button("Auto-step", elem_id="step-auto", scale=1)
            stop = gr.Button("Stop", elem_id="step-stop", variant="stop", scale=1)
        with gr.Row(equal_height=True):
            force = gr.Textbox(label="Force text: append the tokens of any text", scale=4, elem_id="step-force",
                               placeholder="e.g. ' and then' (mind the leading space)")
            force_button = gr.Button("Append text", scale=1, elem_id="step-force-button")
        branches = gr.Radio(label="Branches (switch between them)", elem_id="step-branches")
        branch_notes = gr.Markdown(elem_id="step-branch-info")
        with gr.Accordion("Decoding settings (the same processors as the Next-token tab) and seed", open=False):
            knobs: dict[str, Any] = {}
            for row in (DECODING[:4], DECODING[4:7], DECODING[7:]):
                with gr.Row():
                    knobs.update({name: control(name, "step") for name in row})
            with gr.Row():
                knobs["top_n"] = control("top_n", "step", label="candidates shown")
                seed = gr.Number(value=0, precision=0, label=f"seed (0 to {stepping.MAX_SEED}; sampling is "
                                 "reproducible per session)", elem_id="step-seed")
            knobs["top_n"].value = DEFAULT_TOP_N
        path = gr.JSON(value=[], elem_id="step-path", elem_classes=["step-hidden"], label="path")
        gr.HTML(elem_id="step-keys", js_on_load=KEYS_JS, padding=False, elem_classes=["step-hidden"])

    settings = [knobs[name] for name in KNOB_NAMES]
    common = {"model": model_state, "session": session, "selected": selected, "prompt": prompt, "seed": seed,
              **knobs}
    shown = gr.State(None)
    """The control values the candidates were computed from, by name (see :func:`ui.controls.echo`)."""
    outputs = [session, selected, text, candidates, explanation, alternatives, branches, branch_notes, path, shown]
    quiet: dict[str, Any] = {"api_visibility": "private", **progress.quiet(text)}
    # Every click counts, in order: quick key presses queue up instead of being dropped while a step runs, and
    # one step runs at a time, so that each reads the session the one before it wrote (on a small CPU two steps
    # at once would not be faster anyway).
    queued: dict[str, Any] = {**quiet, "outputs": outputs, "trigger_mode": "multiple", "concurrency_limit": 1,
                              "concurrency_id": "step-session"}
    # A setting changed: the same text with new candidates, in the same line as the steps (it writes the
    # session too). A value the program set (a link's, computed by render() below) is an echo, skipped; raw
    # values, so that a number typed beyond a slider gets the knob's own message.
    refresh: dict[str, Any] = {**queued, "trigger_mode": "always_last"}

    def _edited(event: gr.EventData, showing: dict[str, Any] | None, **values: Any) -> tuple[Any, ...]:
        if echo(event.target, values, knobs, showing):
            return tuple(gr.skip() for _ in outputs)
        try:
            return _refresh(**values)
        except gr.Error as error:  # no candidate of the old settings may stay beside the message
            warn(message(error))
            cleared = {candidates: "", explanation: f"⚠️ {as_text(message(error))}", alternatives: "",
                       shown: {name: values[name] for name in knobs}}
            return tuple(cleared.get(component, gr.skip()) for component in outputs)

    gr.on([control.change for control in settings], _edited, inputs_kwargs={**common, "showing": shown},
          preprocess=False, **refresh)
    for event in switched:  # chained: it reads the controls once the new model has landed
        event.then(_refresh, inputs_kwargs=common, **refresh)
    start = {"model": model_state, "prompt": prompt, "seed": seed, **knobs}
    gr.on([reset.click, prompt.submit], _start, inputs_kwargs=start, **queued)
    for button, strategy in ((greedy, "greedy"), (sample, "sample"), (uniform, "uniform")):
        button.click(_stepper(strategy), inputs_kwargs=common, **queued)
    candidates.click(_pick, inputs_kwargs=common, **queued)
    text.click(_select, inputs_kwargs=common, **queued)
    alternatives.click(_fork, inputs_kwargs=common, **queued)
    undo.click(_undo, inputs_kwargs=common, **queued)
    branches.input(_switch, inputs_kwargs={**common, "branch": branches}, **queued)
    forced = gr.on([force_button.click, force.submit], _force, inputs_kwargs={**common, "text": force}, **queued)
    forced.success(_cleared, None, [force], **quiet)  # appended: the box is ready for the next text
    seed.change(_reseed, [session, seed], [session], **quiet)
    # its own queue slot: Stop must get through while the run it stops holds one
    auto.click(_auto, inputs_kwargs={**common, "count": count, "mode": mode}, outputs=outputs,
               api_visibility="private", show_progress="minimal", **progress.on(text))
    stop.click(_stop, None, None, api_visibility="private", concurrency_limit=None, queue=False)
    gr.api(step_api, api_name="step")

    def render(model_name: str, shown: dict[str, Any]) -> dict[Any, Any]:
        """The view for a prompt, settings, a path and branches of token ids (missing ones at their start)."""
        values = {name: shown.get(name, component.value) for name, component in knobs.items()}
        view = restore(model_name, shown.get("prompt", prompt.value), shown.get("seed", seed.value),
                       shown.get("path"), shown.get("branches"), **values)
        return dict(zip(outputs, view, strict=True))

    return {"prompt": prompt, **knobs, "seed": seed, "path": path, "text": text, "candidates": candidates,
            "render": (render, outputs)}
