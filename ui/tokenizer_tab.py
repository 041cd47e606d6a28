"""The Tokenizer tab: text as token chips, ids back to text, two tokenizers side by side, chat templates.

Every piece of text that reaches the page goes through ``html.escape``; the
chips carry only an index, and a click sends that index back so the details
panel is built here in Python. The tokenizing itself is :mod:`stepgen.tokenize`;
this module only converts its results to HTML and wires the events and the
JSON endpoints (``/tokenize``, ``/detokenize``, ``/compare_tokenizers``,
``/chat_template``).

Longer than the ~300-line guide: one tab with four views of tokens (text, ids,
two tokenizers, chat template) and their endpoints; the tokenizing is
stepgen.tokenize's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any

import gradio as gr

from stepgen import tokenize as tk
from stepgen.chat import chat
from stepgen.loading import LoadedModel
from stepgen.registry import default_model, get_model, get_registry
from stepgen.tokens import visible
from ui import progress
from ui.controls import echo
from ui.errors import user_errors, warn
from ui.render import token_html

EXAMPLES = {
    "Preposterous": "Preposterous, I'm flabbergasted!",
    "Dark and stormy": "It was a dark and stormy",
    "Studying AI": "Studying AI is",
    "Emoji": "I 💜 tokens! 👩‍💻🦀 e\u0301 café",
    "Japanese": "日本語の文章もトークンに分かれます。",
    "Arabic": "مرحبا بالعالم",
}

_CLICK_JS = """
const pick = (chip) => {
  element.querySelectorAll('.tok-selected').forEach((c) => c.classList.remove('tok-selected'));
  chip.classList.add('tok-selected');
  trigger('click', {index: Number(chip.dataset.index)});
};
element.addEventListener('click', (event) => {
  const chip = event.target.closest('.tok-chip');
  if (chip) pick(chip);
});
element.addEventListener('keydown', (event) => {
  const chip = event.target.closest('.tok-chip');
  if (chip && (event.key === 'Enter' || event.key === ' ')) { event.preventDefault(); pick(chip); }
});
"""

_NO_DETAILS = '<p class="tok-hint">Select a token to see its details.</p>'


# --- HTML from plain data --------------------------------------------------------


def _shown(text: str, show_whitespace: bool) -> str:
    return token_html(text, keep_newlines=True) if show_whitespace else html.escape(text)


def chip_html(chip: dict[str, Any], position: int, *, show_whitespace: bool) -> str:
    """One chip: its readable text, alternating colour, special/partial/added marks, and an accessible label."""
    classes = ["tok-chip", "tok-a" if position % 2 == 0 else "tok-b"]
    text = chip["text"]
    label_text = text
    if chip["special"]:
        classes.append("tok-special")
    if chip["partial"]:
        classes.append("tok-partial")
    if chip["added"]:
        classes.append("tok-added")
    body = ""
    if chip.get("added_space") and text.startswith(" "):
        body = '<span class="tok-mark" title="a space the tokenizer adds; it is not in the text">▁</span>'
        text = text[1:]
        label_text = "▁" + text
    body += _shown(text, show_whitespace)
    ids = ", ".join(str(i) for i in chip["ids"])
    label = f"token {chip['index']}: id {ids}, {visible(label_text)!r}" + (" (special)" if chip["special"] else "")
    return (
        f'<span class="{" ".join(classes)}" role="button" tabindex="0" data-index="{position}" '
        f'title="id {html.escape(ids)}" aria-label="{html.escape(label)}">{body}</span>'
    )


def chips_html(
    chips: list[dict[str, Any]], *, show_whitespace: bool, segments: list[dict[str, Any]] | None = None
) -> str:
    """The chip row; ``segments`` (token ranges of chat messages) put a role label before each message."""
    if not chips:
        return '<div class="tok-chips tok-empty">No tokens.</div>'
    starts = {segment["start"]: segment["role"] for segment in segments or []}
    parts = []
    for position, chip in enumerate(chips):
        first = chip["index"]
        if first in starts:
            parts.append(f'<span class="tok-role">{html.escape(starts[first])}</span>')
        parts.append(chip_html(chip, position, show_whitespace=show_whitespace))
    return f'<div class="tok-chips">{"".join(parts)}</div>'


def counts_html(counts: dict[str, Any], *, context_length: int | None = None) -> str:
    per_token = counts["chars_per_token"]
    items = [
        ("tokens", "tokens", counts["count"]), ("characters", "characters", counts["characters"]),
        ("bytes", "bytes", counts["bytes"]),
        ("ratio", "characters per token", "–" if per_token is None else f"{per_token:.2f}"),
    ]
    shown = " · ".join(
        f'<span class="tok-count" data-kind="{kind}"><strong>{html.escape(str(value))}</strong> {label}</span>'
        for kind, label, value in items
    )
    if context_length is not None and counts["count"] > context_length:
        shown += f' · <span class="tok-warning">more than the model\'s context of {context_length} tokens</span>'
    return f'<div class="tok-counts">{shown}</div>'


def details_html(chip: dict[str, Any], text: str) -> str:
    """Everything about one chip: ids, readable text, vocabulary pieces, bytes, character span, special."""
    start, end = chip["start"], chip["end"]
    if start is None:
        span = "unknown (the text does not hold these bytes)"
    elif start == end:
        span = f"{start}–{end}: covers no character of the text"
    else:
        span = f"{start}–{end}: “{_shown(text[start:end], True)}”"
    notes = []
    if chip["added"]:
        notes.append("added by the tokenizer, not typed in the text")
    if chip.get("added_space"):
        notes.append("its leading ▁ is a space the tokenizer adds; it is not in the text")
    if chip["partial"]:
        notes.append("holds only part of a UTF-8 character, so it is shown as its bytes")
    last = chip["index"] + len(chip["ids"]) - 1
    rows = [
        ("Position", str(chip["index"]) + (f"–{last}" if last > chip["index"] else "")),
        ("ID" if len(chip["ids"]) == 1 else "IDs", html.escape(", ".join(str(i) for i in chip["ids"]))),
        ("Text", f"<code>{_shown(chip['text'], True)}</code>"),
        ("Vocabulary piece" if len(chip["pieces"]) == 1 else "Vocabulary pieces",
         " ".join(f"<code>{html.escape(p)}</code>" for p in chip["pieces"])),
        ("Bytes", f"<code>{html.escape(chip['bytes'])}</code>"),
        ("Characters", span),
        ("Special", "yes" if chip["special"] else "no"),
    ]
    if notes:
        rows.append(("Note", html.escape("; ".join(notes))))
    body = "".join(f"<dt>{html.escape(name)}</dt><dd>{value}</dd>" for name, value in rows)
    return f'<dl class="tok-details">{body}</dl>'


# --- JSON endpoints ------------------------------------------------------------------


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` has to be true or false, but is {value!r}")
    return value


def _model(model: str) -> LoadedModel:
    return get_model(model or default_model())


@user_errors
def tokenize_text(text: str, model: str = "", add_special_tokens: bool = True, merge: bool = False) -> dict[str, Any]:
    """Split ``text`` into the tokens ``model`` reads.

    Parameters:
        text: the text to split (at most 10000 characters).
        model: the model name; empty means the app's default model.
        add_special_tokens: add BOS/EOS as the tokenizer does by default (true or false).
        merge: also return ``merged``: tokens holding parts of one character grouped (true or false).

    Returns ``model``, ``ids``, ``tokens`` (``id``, ``text`` readable with ``<F0 9F>`` hex for partial
    characters, ``piece`` as stored in the vocabulary, ``bytes`` in hex, ``start``/``end`` character span,
    ``special``, ``partial``, ``added``, ``added_space``), ``count``, ``characters``, ``bytes``,
    ``chars_per_token``.
    """
    return _tokenized(text, model, add_special_tokens, merge)


def _tokenized(text: str, model: str, add_special_tokens: bool, merge: bool = False) -> dict[str, Any]:
    add_special_tokens, merge = _flag("add_special_tokens", add_special_tokens), _flag("merge", merge)
    loaded = _model(model)
    result = tk.tokenize(loaded.tokenizer, text, add_special_tokens=add_special_tokens)
    return {"model": loaded.name, "context_length": loaded.context_length, **result.to_dict(merge=merge)}


@user_errors
def detokenize_ids(ids: list[int], model: str = "") -> dict[str, Any]:
    """Turn token ``ids`` back into text with ``model``'s tokenizer (special tokens kept).

    Parameters:
        ids: at most 10000 token ids from the vocabulary, as a list or as text like "1, 2, 3".
        model: the model name; empty means the app's default model.

    Returns the same fields as ``/tokenize``; ``text`` is the tokenizer's own decoding of the ids.
    """
    if isinstance(ids, str):
        ids = tk.parse_ids(ids)
    if not isinstance(ids, (list, tuple)):
        raise ValueError(f"`ids` has to be a list of integers like [1, 2, 3], but is {ids!r}")
    loaded = _model(model)
    return {"model": loaded.name, **tk.detokenize(loaded.tokenizer, list(ids)).to_dict(merge=True)}


@user_errors
def compare_tokenizers(text: str, other: str, model: str = "", add_special_tokens: bool = True) -> dict[str, Any]:
    """The same ``text`` through two tokenizers: ``model`` (empty: the default) and ``other``.

    Parameters:
        text: the text to split (at most 10000 characters).
        other: the second model's name, whose tokenizer is compared with ``model``'s.
        model: the first model's name; empty means the app's default model.
        add_special_tokens: add BOS/EOS as each tokenizer does by default (true or false).

    Returns ``results`` (one ``/tokenize`` answer per model) and ``counts`` ([{"model", "count"}], in the same
    order: ``model`` first, then ``other``).
    """
    results = [_tokenized(text, name, add_special_tokens) for name in (model, other)]
    return {"text": text, "results": results,
            "counts": [{"model": result["model"], "count": result["count"]} for result in results]}


@user_errors
def chat_template(
    messages: list[dict[str, str]], model: str = "", add_generation_prompt: bool = False
) -> dict[str, Any]:
    """Render ``messages`` with ``model``'s chat template and tokenize the result.

    Parameters:
        messages: the conversation, each message ``{"role": "system"|"user"|"assistant", "content": str}``.
        model: the model name; empty means the app's default model.
        add_generation_prompt: end with the assistant's opening, where the model's answer would start (true or
            false).

    Returns the rendered ``text``, its ``tokens`` and counts as ``/tokenize`` does, and ``segments``: the token range [start, end)
    each message produced (role ``template`` for tokens the template adds on its own, such as a default
    system prompt).
    """
    loaded = _model(model)
    result = chat(loaded.tokenizer, messages, add_generation_prompt=add_generation_prompt)
    return {"model": loaded.name, **result.to_dict()}


# --- UI handlers ----------------------------------------------------------------------


@dataclass(frozen=True)
class _ChipView:
    chips: gr.HTML
    counts: gr.HTML
    details: gr.HTML
    state: gr.State


def _view(
    tokenization: tk.Tokenization, *, show_whitespace: bool, merge: bool, context_length: int | None = None,
    segments: list[dict[str, Any]] | None = None,
) -> tuple[str, str, str, dict[str, Any]]:
    """Chips, counts, an empty details panel, and the state a chip click reads."""
    groups = tokenization.merged() if merge else tokenization.singles()
    chips = [group.to_dict() for group in groups]
    return (
        chips_html(chips, show_whitespace=show_whitespace, segments=segments),
        counts_html(tokenization.counts(), context_length=context_length),
        _NO_DETAILS,
        {"text": tokenization.text, "chips": chips},
    )


def _chip_view(prefix: str) -> _ChipView:
    counts = gr.HTML(elem_id=f"{prefix}-counts", js_on_load=None)
    chips = gr.HTML(elem_id=f"{prefix}-chips", js_on_load=_CLICK_JS)
    details = gr.HTML(_NO_DETAILS, elem_id=f"{prefix}-details", js_on_load=None)
    state = gr.State({"text": "", "chips": []})

    def show_details(view: dict[str, Any], evt: gr.EventData) -> str:
        index = evt._data.get("index") if isinstance(evt._data, dict) else None
        chips_now = view.get("chips", [])
        if not isinstance(index, int) or not 0 <= index < len(chips_now):
            return _NO_DETAILS
        return details_html(chips_now[index], view.get("text", ""))

    chips.click(show_details, [state], [details], api_visibility="private", **progress.quiet(details))
    return _ChipView(chips, counts, details, state)


@user_errors
def _show_text(text: str, add_special: bool, show_whitespace: bool, merge: bool, model: str) -> tuple[Any, ...]:
    loaded = _model(model)
    result = tk.tokenize(loaded.tokenizer, text, add_special_tokens=add_special)
    chips, counts, details, state = _view(result, show_whitespace=show_whitespace, merge=merge,
                                          context_length=loaded.context_length)
    other = tk.tokenize(loaded.tokenizer, text, add_special_tokens=not add_special)
    if text and other.ids == result.ids:  # the checkbox would change nothing: say why
        counts += ('<p class="tok-note" data-kind="no-special">This tokenizer adds no special tokens (no BOS or '
                   "EOS) to a text, so “Add special tokens” changes nothing here.</p>")
    return (chips, counts, details, state, str(result.ids))


def _refused(error: ValueError) -> str:
    """A bad input said once, as a notice, and in place of the view it leaves empty: raising instead would mark
    every output "Error" while they still show the previous, valid answer."""
    warn(str(error))
    return f'<p class="tok-warning">⚠️ {html.escape(str(error))}</p>'


def _show_ids(raw: str, show_whitespace: bool, merge: bool, model: str) -> tuple[Any, ...]:
    try:
        loaded = _model(model)
        result = tk.detokenize(loaded.tokenizer, tk.parse_ids(raw))
    except ValueError as error:
        return "", _refused(error), _NO_DETAILS, {"text": "", "chips": []}, ""
    return (*_view(result, show_whitespace=show_whitespace, merge=merge), result.text)


def _show_compare(text: str, add_special: bool, show_whitespace: bool, merge: bool, model: str, other: str) -> str:
    try:
        return _compared(text, add_special, show_whitespace, merge, model, other)
    except ValueError as error:
        return _refused(error)


def _compared(text: str, add_special: bool, show_whitespace: bool, merge: bool, model: str, other: str) -> str:
    if not (other or "").strip():  # the default model against itself would compare nothing
        raise ValueError("Pick the other model to compare with (`other` is empty).")
    rows = []
    results = []
    for name in (model, other):
        loaded = _model(name)
        result = tk.tokenize(loaded.tokenizer, text, add_special_tokens=add_special)
        results.append((loaded.name, result))
    base = results[0][1].counts()["count"]
    for name, result in results:
        groups = result.merged() if merge else result.singles()
        count = result.counts()["count"]
        change = "" if name == results[0][0] or not base else f" ({(count - base) / base:+.0%})"
        rows.append(
            f'<div class="tok-compare-row"><div class="tok-compare-head"><code>{html.escape(name)}</code>: '
            f'<strong class="tok-compare-count">{count}</strong> tokens{html.escape(change)}</div>'
            f"{chips_html([g.to_dict() for g in groups], show_whitespace=show_whitespace)}</div>"
        )
    return "".join(rows)


@user_errors
def _show_chat(system: str, user: str, assistant: str, generation_prompt: bool, show_whitespace: bool, merge: bool,
               model: str) -> tuple[Any, ...]:
    messages = [{"role": role, "content": content} for role, content in
                (("system", system), ("user", user), ("assistant", assistant)) if content.strip()]
    loaded = _model(model)
    result = chat(loaded.tokenizer, messages, add_generation_prompt=generation_prompt)
    segments = [{"role": s.role, "start": s.start, "end": s.end} for s in result.segments]
    view = _view(result.tokenization, show_whitespace=show_whitespace, merge=merge,
                 context_length=loaded.context_length, segments=segments)
    return (*view, result.tokenization.text)


def _setter(value: str) -> Any:
    def put_example() -> str:
        return value

    return put_example


def _choices() -> list[tuple[str, str]]:
    return get_registry().offered()


def build(model_state: gr.State, switched: Sequence[Any] = ()) -> dict[str, Any]:
    """Render the Tokenizer tab; return its main components by name, and ``render``: its first view for given
    values (what a link shows on page load)."""
    gr.Markdown(
        "Type text and see exactly what the model reads: one chip per token, neighbours in alternating colours. "
        "Select a chip for its ID, its vocabulary piece and its bytes. A token that holds only part of a "
        "character is shown as its bytes (`<F0 9F>`)."
    )
    with gr.Row():
        with gr.Column(scale=3):
            text = gr.Textbox(label="Text", lines=4, max_lines=12, value=EXAMPLES["Preposterous"],
                              elem_id="tok-text")
            with gr.Row():
                example_buttons = {name: gr.Button(name, size="sm", elem_classes=["tok-example"])
                                   for name in EXAMPLES}
        with gr.Column(scale=1, min_width=220):
            add_special = gr.Checkbox(True, label="Add special tokens (BOS/EOS)", elem_id="tok-add-special")
            show_whitespace = gr.Checkbox(False, label="Show whitespace (· ↵ →)", elem_id="tok-whitespace")
            merge = gr.Checkbox(False, label="Merge partial UTF-8 into characters", elem_id="tok-merge")
    main = _chip_view("tok")
    ids_out = gr.Textbox(label="Token IDs", interactive=False, buttons=["copy"], elem_id="tok-ids-out")

    with gr.Accordion("From IDs to text", open=False):
        with gr.Row():
            ids_in = gr.Textbox(label="Token IDs", placeholder="[15496, 995] or 15496 995", scale=4,
                                elem_id="tok-ids-in")
            decode = gr.Button("Decode", scale=1, elem_id="tok-decode")
        decoded = gr.Textbox(label="Decoded text", interactive=False, elem_id="tok-decoded")
        from_ids = _chip_view("tok-ids")

    with gr.Accordion("Compare with another tokenizer", open=False):
        with gr.Row():
            other = gr.Dropdown(choices=_choices(), value=None, allow_custom_value=get_registry().allowed is None,
                                label="Other model", scale=4, elem_id="tok-compare-model")
            compare = gr.Button("Compare", scale=1, elem_id="tok-compare")
        compared = gr.HTML(elem_id="tok-compare-out")

    with gr.Accordion("Chat template", open=False):
        gr.Markdown("For models with a chat template: the text the template builds and its tokens, "
                    "special tokens included. Empty boxes are left out.")
        system = gr.Textbox("You are a helpful assistant.", label="System", elem_id="tok-chat-system")
        user = gr.Textbox("What is a token?", label="User", elem_id="tok-chat-user")
        assistant = gr.Textbox("A piece of text the model reads as one unit.", label="Assistant",
                               elem_id="tok-chat-assistant")
        with gr.Row():
            generation_prompt = gr.Checkbox(False, label="Add generation prompt", elem_id="tok-chat-generation")
            render = gr.Button("Apply chat template", elem_id="tok-chat-apply")
        rendered = gr.Textbox(label="Rendered template", interactive=False, lines=4, elem_id="tok-chat-text")
        chat_view = _chip_view("tok-chat")

    main_outputs = [main.chips, main.counts, main.details, main.state, ids_out]
    shown = gr.State(None)
    """The control values the chips were computed from, by name (see _edited and _settle)."""

    def _values(text_value: str, add: bool, whitespace: bool, merged: bool) -> dict[str, Any]:
        return {"text": text_value, "add_special_tokens": add, "show_whitespace": whitespace, "merge": merged}

    def _showing(text_value: str, add: bool, whitespace: bool, merged: bool, model: str) -> tuple[Any, ...]:
        return (*_show_text(text_value, add, whitespace, merged, model), _values(text_value, add, whitespace, merged))

    def _settle(text_value: str, add: bool, whitespace: bool, merged: bool, model: str,
                showing: dict[str, Any] | None) -> tuple[Any, ...] | None:
        """The chips again if the page's first view, landing after an edit, shows other values than the boxes."""
        if showing == _values(text_value, add, whitespace, merged):
            return None
        return _showing(text_value, add, whitespace, merged, model)

    def _edited(event: gr.EventData, text_value: str, add: bool, whitespace: bool, merged: bool, model: str,
                showing: dict[str, str] | None) -> tuple[Any, ...]:
        """The chips for what is on screen, after a person's edit. A text box reports deletions and pastes
        only as .change, which a value set by the program (a link) fires too, possibly before the boxes are
        set: a change to the very text the chips already show is skipped."""
        if echo(event.target, {"text": text_value}, {"text": text}, showing):
            return tuple(gr.skip() for _ in range(len(main_outputs) + 1))
        return _showing(text_value, add, whitespace, merged, model)

    inputs = [text, add_special, show_whitespace, merge, model_state]
    quiet: dict[str, Any] = {"api_visibility": "private", "trigger_mode": "always_last", **progress.quiet(main.counts)}
    gr.on([text.change, add_special.input, show_whitespace.input, merge.input], _edited, [*inputs, shown],
          [*main_outputs, shown], **quiet)
    for event in switched:  # chained: it reads the boxes once the new model has landed
        event.then(_showing, inputs, [*main_outputs, shown], **quiet)
    for name, button in example_buttons.items():
        button.click(_setter(EXAMPLES[name]), None, [text], api_visibility="private", **progress.on(main.counts))
    decode_outputs = [from_ids.chips, from_ids.counts, from_ids.details, from_ids.state, decoded]
    gr.on([decode.click, ids_in.submit], _show_ids, [ids_in, show_whitespace, merge, model_state], decode_outputs,
          api_visibility="private", **progress.on(from_ids.counts))
    gr.on([compare.click, other.select], _show_compare,
          [text, add_special, show_whitespace, merge, model_state, other], [compared], api_visibility="private",
          **progress.on(compared))
    chat_outputs = [chat_view.chips, chat_view.counts, chat_view.details, chat_view.state, rendered]
    render.click(_show_chat, [system, user, assistant, generation_prompt, show_whitespace, merge, model_state],
                 chat_outputs, api_visibility="private", **progress.on(chat_view.counts))

    gr.api(tokenize_text, api_name="tokenize")
    gr.api(detokenize_ids, api_name="detokenize")
    gr.api(compare_tokenizers, api_name="compare_tokenizers")
    gr.api(chat_template, api_name="chat_template")

    def render(model_name: str, values: dict[str, Any]) -> dict[Any, Any]:
        """The chips of a text and its settings (missing ones at their start)."""
        start = [values.get(name, component.value) for name, component in
                 (("text", text), ("add_special_tokens", add_special), ("show_whitespace", show_whitespace),
                  ("merge", merge))]
        return {**dict(zip(main_outputs, _show_text(*start, model_name), strict=True)), shown: _values(*start)}

    return {
        "render": (render, [*main_outputs, shown]), "settle": (_settle, [*inputs, shown], [*main_outputs, shown]),
        "text": text, "add_special_tokens": add_special, "show_whitespace": show_whitespace, "merge": merge,
        "chips": main.chips, "counts": main.counts, "details": main.details, "ids": ids_out, "ids_in": ids_in,
        "compare_model": other, "system": system, "user": user, "assistant": assistant,
    }
