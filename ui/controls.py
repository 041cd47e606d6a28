"""Controls built from the table of knobs, and the values read back from them, for every tab.

A tab asks for a knob by name (:func:`control`) and gets the widget that knob
has everywhere: a slider over exactly the range the core accepts, a checkbox,
or a text box of comma-separated words; its label, help line and step come
from :mod:`stepgen.knobs`. Handlers read their inputs one way: as a dict of
components (gradio passes such a dict when ``inputs`` is a set), turned into
knob values by name with :func:`values`.

The ids stay ``<tab prefix>-<knob name with dashes>``, so links, tests and
style rules keep working. This module builds widgets and parses their values;
it computes nothing a tab shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import gradio as gr

from stepgen.distribution import check_top_n
from stepgen.knobs import DECODING, Knob, knob
from stepgen.settings import DecodingSettings

PLACEHOLDERS = {"bad_words": "e.g. night, rain", "stop_strings": "e.g. ., \\n"}
LABELS = {"bad_words": "bad words (bad_words_ids)", "top_n": "top N shown"}


def label(spec: Knob) -> str:
    """The label of a knob's control: its transformers name, and what its neutral value means."""
    if spec.name in LABELS:
        return LABELS[spec.name]
    if spec.zero:
        return f"{spec.name} (0 = greedy)"
    return spec.name


def info(spec: Knob) -> str:
    if spec.kind == "words":
        return f"{spec.meaning} Comma-separated."
    if spec.kind == "strings":
        return f"{spec.meaning} Comma-separated; \\n means a newline."
    return spec.meaning


def elem_id(prefix: str, name: str) -> str:
    return f"{prefix}-{name.replace('_', '-')}"


def control(name: str, prefix: str, **options: Any) -> gr.components.Component:
    """The widget of knob ``name`` with id ``<prefix>-<name>``; ``options`` go to the widget (``label``,
    ``scale``, ...) and may override its label or help line, never its range."""
    spec = knob(name)
    options = {"label": label(spec), "info": info(spec), "elem_id": elem_id(prefix, name), **options}
    if spec.kind in ("float", "int"):
        return gr.Slider(spec.lowest, spec.maximum, value=spec.default, step=spec.step, **options)
    if spec.kind == "bool":
        return gr.Checkbox(value=spec.default, **options)
    if spec.kind in ("words", "strings"):
        return gr.Textbox(placeholder=PLACEHOLDERS.get(name), **options)
    raise ValueError(f"knob {name!r} has no control of its own (a seed box is the tab's choice)")


def controls(names: Iterable[str], prefix: str) -> dict[str, gr.components.Component]:
    """One control a knob, by name, in the order given."""
    return {name: control(name, prefix) for name in names}


def split_words(text: str | None) -> tuple[str, ...]:
    """``'the, a'`` -> ``('the', 'a')``."""
    return tuple(word.strip() for word in (text or "").split(",") if word.strip())


def split_strings(text: str | None) -> tuple[str, ...]:
    """Stop strings from a text box: comma-separated, ``\\n`` and ``\\t`` written as escapes."""
    parts = (part.strip().replace("\\n", "\n").replace("\\t", "\t") for part in (text or "").split(","))
    return tuple(part for part in parts if part)


def joined(name: str, value: Any) -> Any:
    """A knob value as its control shows it (lists joined by commas), the inverse of :func:`parsed`."""
    if knob(name).kind in ("words", "strings"):
        items = [value] if isinstance(value, str) else list(value or ())
        return ", ".join(item.replace("\n", "\\n").replace("\t", "\\t") for item in items)
    return value


def parsed(name: str, value: Any) -> Any:
    """A control's value as the knob takes it (comma-separated text split into a list)."""
    kind = knob(name).kind
    if kind == "words":
        return split_words(value) if isinstance(value, str) or value is None else value
    if kind == "strings":
        return split_strings(value) if isinstance(value, str) or value is None else value
    return value


def decoding(knobs: Mapping[str, Any], top_n: int) -> tuple[DecodingSettings, int]:
    """The decoding settings and the number of candidates that knob values describe (by name, as the knobs take
    them: see :func:`parsed`; absent ones at their defaults, ``top_n`` if that knob is absent); ValueError naming a
    bad one."""
    settings = DecodingSettings.from_dict({name: knobs[name] for name in DECODING if name in knobs})
    return settings, check_top_n(knobs.get("top_n", top_n))


def values(data: Mapping[Any, Any], named: Mapping[str, Any]) -> dict[str, Any]:
    """Knob values by name from an event's input dict (``data``) and the tab's controls by name (``named``)."""
    return {name: parsed(name, data[component]) for name, component in named.items() if component in data}


def echo(target: Any, values: Mapping[str, Any], named: Mapping[str, Any], shown: Mapping[str, Any] | None) -> bool:
    """Whether an event is a control's ``.change`` to the very value the views already show.

    Gradio fires ``.change`` for a person's edit and for a value the program sets (a link, Reset, a slider
    clamping a typed number), and when the program sets several controls at once, the first one's change can
    read the others before they are set. Views computed from such a read would be numbers for settings no
    longer on screen; since the program sets values together with their views (and ``shown``, the values the
    views were computed from), a change to the value already shown is an echo, and is skipped.
    """
    if shown is None:
        return False
    return any(target is component and name in shown and shown[name] == values.get(name)
               for name, component in named.items())
