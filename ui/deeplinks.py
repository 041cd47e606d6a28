"""Deep links: the URL's query parameters carry a view, and opening the URL restores it.

A view is the selected tab, the model, the values of the selected tab's
shareable controls (prompt, decoding settings, …) and, in the Step tab, the
path of chosen token IDs and every branch::

    /?tab=next-token&model=embedded&prompt=The+capital+of+France+is&temperature=0.7&top_k=5
    /?tab=step&prompt=Once+upon+a+time&path=11,2232,837&branches=11,2232,837;11,40

The URL keys are the names a tab's ``build()`` gives its components (for the
knobs, their names in the table of knobs), so a tab that gains a control gains
a URL key without any change here. ``tab``, ``model``, ``path`` and
``branches`` are reserved. Only the controls whose value differs from their
start value go into a shared link; keys a tab does not know are ignored.

A link is read once, on page load, by one handler (``demo.load`` with the
request's query parameters): it sets the link's controls and, in the same
response, every tab's views computed by that tab's ``render`` from exactly
those values. No other event writes the first view; the tabs' own handlers
skip the echo of these values (:func:`ui.controls.echo`). A tab that hands over
a ``replay`` (the playground) runs it after the restore, with the restored
values, when the link opens that tab. A person may type before the first view
lands, and their edit's answer may land before it: a tab's ``settle``, run in
one event chained to the restore, reads what is on screen then and computes
the views again only where the controls differ from those the views show. This
module computes nothing a tab shows: ``render``, ``replay`` and ``settle`` are
the tab's.

Longer than the ~300-line guide: reading a link, writing one and the one
restore handler are one idea, and must agree on every key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import gradio as gr
from gradio import route_utils

from ui import header, progress
from ui.errors import message, warn

RESERVED = ("tab", "model", "path", "branches")
"""URL keys that are not a tab's control names."""

MAX_PATH = 256
"""Longest step path a link may carry (a link is not a way to make the server generate text)."""
MAX_BRANCHES = 16
"""Most branches a Step link may carry."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Field:
    """What a URL value may be for one control: its kind, range and choices, and its start value."""

    name: str
    kind: str  # "text", "number", "integer", "bool", "choice" or "choices"
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    free: bool = False  # a choice control that also takes values outside its choices


@dataclass(frozen=True)
class DeepLink:
    """A parsed URL: tab, model, control values by name (still text) and step path."""

    tab: str | None = None
    model: str | None = None
    values: tuple[tuple[str, str], ...] = ()
    path: tuple[int, ...] | None = None
    branches: tuple[tuple[int, ...], ...] | None = None
    """Every branch of a Step view (the token IDs after the prompt), when it has more than one."""
    problems: tuple[str, ...] = field(default=(), compare=False)


def _choice_values(component: Any) -> tuple[Any, ...]:
    return tuple(choice[1] if isinstance(choice, (tuple, list)) else choice for choice in component.choices or ())


def field_for(name: str, component: Any) -> Field | None:
    """The URL field of a control, or None when its value does not belong in a URL (plots, states, buttons)."""
    if getattr(component, "interactive", None) is False:
        return None  # an output the tab computes, not something a reader sets
    default = getattr(component, "value", None)
    if isinstance(component, gr.Checkbox):
        return Field(name, "bool", default)
    if isinstance(component, gr.Slider):
        whole = component.precision == 0 or all(
            float(x).is_integer() for x in (component.minimum, component.maximum, component.step)
        )
        return Field(name, "integer" if whole else "number", default, component.minimum, component.maximum)
    if isinstance(component, gr.Number):
        return Field(name, "integer" if component.precision == 0 else "number", default,
                     component.minimum, component.maximum)
    if isinstance(component, gr.CheckboxGroup) or (isinstance(component, gr.Dropdown) and component.multiselect):
        return Field(name, "choices", default, choices=_choice_values(component),
                     free=bool(getattr(component, "allow_custom_value", False)))
    if isinstance(component, (gr.Dropdown, gr.Radio)):
        return Field(name, "choice", default, choices=_choice_values(component),
                     free=bool(getattr(component, "allow_custom_value", False)))
    if isinstance(component, (gr.Textbox, gr.Code)):
        return Field(name, "text", default)
    return None


def _in_range(spec: Field, number: float, text: str) -> None:
    low = -math.inf if spec.minimum is None else spec.minimum
    high = math.inf if spec.maximum is None else spec.maximum
    if not low <= number <= high:
        raise ValueError(f"`{spec.name}` has to be between {low:g} and {high:g}, but is {text}")


def _choice(spec: Field, text: str) -> Any:
    for choice in spec.choices:
        if str(choice) == text:
            return choice
    if spec.free:
        return text
    raise ValueError(f"`{spec.name}` has to be one of {', '.join(map(str, spec.choices))}, but is {text!r}")


def decode(spec: Field, text: str) -> Any:
    """The control value a URL's text stands for; ValueError naming the key when it cannot be one."""
    if spec.kind == "text":
        return text
    if spec.kind == "bool":
        lowered = text.strip().lower()
        if lowered in _TRUE | _FALSE:
            return lowered in _TRUE
        raise ValueError(f"`{spec.name}` has to be true or false, but is {text!r}")
    if spec.kind in ("number", "integer"):
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"`{spec.name}` has to be a number, but is {text!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"`{spec.name}` has to be a finite number, but is {text!r}")
        if spec.kind == "integer":
            if not number.is_integer():
                raise ValueError(f"`{spec.name}` has to be a whole number, but is {text}")
            _in_range(spec, number, text)
            return int(number)
        _in_range(spec, number, text)
        return number
    if spec.kind == "choice":
        return _choice(spec, text)
    if spec.kind == "choices":
        return [_choice(spec, part) for part in text.split(",") if part != ""]
    raise ValueError(f"`{spec.name}` cannot be set from a link")


def encode(spec: Field, value: Any) -> str:
    """The URL text of a control value (the inverse of :func:`decode`)."""
    if spec.kind == "bool":
        return "true" if value else "false"
    if spec.kind in ("number", "integer"):
        number = float(value)
        # sliders step in binary floats (0.35000000000000003); ten digits is more than any control resolves
        return str(int(number)) if number.is_integer() else format(number, ".10g")
    if spec.kind == "choices":
        return ",".join(str(part) for part in value or [])
    return "" if value is None else str(value)


def _same(spec: Field, value: Any, default: Any) -> bool:
    if spec.kind in ("number", "integer"):
        try:
            return float(value) == float(default)
        except (TypeError, ValueError):
            return value == default
    if spec.kind == "choices":
        return list(value or []) == list(default or [])
    return (value or "") == (default or "") if spec.kind == "text" else value == default


def parse_path(text: str, name: str = "path") -> tuple[int, ...]:
    """Token IDs from ``"11,2232,837"``; ValueError naming ``path`` (or ``name``) otherwise."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not all(part.isdigit() for part in parts):
        raise ValueError(f"`{name}` has to be token IDs separated by commas, but is {text!r}")
    if len(parts) > MAX_PATH:
        raise ValueError(f"`{name}` has to be at most {MAX_PATH} token IDs long, but has {len(parts)}")
    return tuple(int(part) for part in parts)


def parse_branches(text: str) -> tuple[tuple[int, ...], ...]:
    """Branches from ``"11,2232;11,40"`` (each the token IDs after the prompt); ValueError naming ``branches``."""
    parts = text.split(";")
    if len(parts) > MAX_BRANCHES:
        raise ValueError(f"`branches` has to hold at most {MAX_BRANCHES} branches, but holds {len(parts)}")
    return tuple(parse_path(part, "branches") for part in parts)


def parse_query(params: Mapping[str, str], tab_ids: Sequence[str]) -> DeepLink:
    """A :class:`DeepLink` from query parameters; what cannot be used is left out and named in ``problems``."""
    problems: list[str] = []
    tab = params.get("tab") or None
    if tab is not None and tab not in tab_ids:
        problems.append(f"`tab` has to be one of {', '.join(tab_ids)}, but is {tab!r}")
        tab = None
    model = (params.get("model") or "").strip() or None
    path = None
    if "path" in params:
        try:
            path = parse_path(params["path"])
        except ValueError as error:
            problems.append(str(error))
    branches = None
    if "branches" in params:
        try:
            branches = parse_branches(params["branches"])
        except ValueError as error:
            problems.append(str(error))
    values = tuple((key, value) for key, value in params.items() if key not in RESERVED)
    return DeepLink(tab=tab, model=model, values=values, path=path, branches=branches, problems=tuple(problems))


def to_query(link: DeepLink) -> str:
    """The query string of a link (``tab``, ``model``, the controls in order, then ``path``)."""
    pairs: list[tuple[str, str]] = []
    if link.tab:
        pairs.append(("tab", link.tab))
    if link.model:
        pairs.append(("model", link.model))
    pairs.extend(link.values)
    if link.path:
        pairs.append(("path", ",".join(str(token) for token in link.path)))
    if link.branches:
        pairs.append(("branches", ";".join(",".join(str(token) for token in branch) for branch in link.branches)))
    return urlencode(pairs, safe=",/;")


@dataclass
class TabView:
    """One tab's part in deep links: its URL fields, and how it shows the view for given values."""

    tab_id: str
    fields: dict[str, tuple[Field, gr.components.Component]]
    path: gr.components.Component | None = None
    render: tuple[Callable[[str, dict[str, Any]], dict[Any, Any]], list[Any]] | None = None
    """(function, outputs): the tab's views for control values by name (those a link does not set at their
    start), computed on page load in the one restore handler; a ``path`` (the Step tab) comes in the values
    too. The function returns updates of some of the outputs."""
    replay: tuple[Callable[..., Any], dict[str, Any], list[Any]] | None = None
    """(handler, inputs by name, outputs): run after the restore, with the restored values, when a link opens
    this tab (the playground re-runs its generation)."""
    expand: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    """Fills in the values a link implies (the playground's ``preset`` sets its knobs), before the link's own."""
    settle: tuple[Callable[..., tuple[Any, ...] | None], list[Any], list[Any]] | None = None
    """(function, inputs, outputs): run after the restore on every page, with the inputs' values then on
    screen; returns the outputs' values when the views show other values than the controls, else None."""
    share: tuple[Callable[..., dict[str, Any]], list[Any]] | None = None
    """(function, inputs): the values a shared link should carry, from the controls' values by name and the
    inputs' values (the playground names the seed its last sampled run drew, so the link replays that text)."""


SPECIAL = ("path", "render", "replay", "expand", "settle", "share")
"""Entries of a tab's ``build()`` dict that are not URL fields."""


def tab_view(tab_id: str, components: Mapping[str, Any]) -> TabView:
    """The URL fields in the dict a tab's ``build()`` returned (its :data:`SPECIAL` entries aside)."""
    fields: dict[str, tuple[Field, gr.components.Component]] = {}
    for name, component in components.items():
        if name in RESERVED or name in SPECIAL:
            continue
        spec = field_for(name, component)
        if spec is not None:
            fields[name] = (spec, component)
    return TabView(tab_id, fields, components.get("path"), components.get("render"), components.get("replay"),
                   components.get("expand"), components.get("settle"), components.get("share"))


def view_values(view: TabView, link: DeepLink) -> tuple[dict[str, Any], list[str]]:
    """The control values a link sets in ``view``, and what was wrong with the rest."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for key, text in link.values:
        if key not in view.fields:
            continue  # another tab's key, or one this version does not know: links stay usable as tabs change
        spec, _ = view.fields[key]
        try:
            values[key] = decode(spec, text)
        except ValueError as error:
            problems.append(str(error))
    if view.expand is not None:
        values = view.expand(values)
    return values, problems


def _walk(block: Any) -> Iterator[Any]:
    yield block
    for child in getattr(block, "children", None) or []:
        yield from _walk(child)


def find_tabs(demo: gr.Blocks) -> tuple[gr.Tabs, list[gr.Tab]]:
    """The app's main ``gr.Tabs`` and its tabs (each with an ``id``)."""
    tabs = next(block for block in _walk(demo) if isinstance(block, gr.Tabs))
    return tabs, [child for child in tabs.children if isinstance(child, gr.Tab)]


def find_by_elem_id(demo: gr.Blocks, elem_id: str) -> Any:
    return next((block for block in _walk(demo) if getattr(block, "elem_id", None) == elem_id), None)


def share_url(root: str, tab: str, model: str, view: TabView | None, values: Sequence[Any],
              path: Sequence[int] | None, branches: Sequence[Sequence[int]] | None = None) -> str:
    """The link to a view: ``root`` plus the query of the controls that differ from their start value."""
    pairs: list[tuple[str, str]] = []
    if view is not None:
        for (name, (spec, _)), value in zip(view.fields.items(), values, strict=True):
            if value is not None and not _same(spec, value, spec.default):
                pairs.append((name, encode(spec, value)))
    kept = tuple(tuple(branch) for branch in branches) if branches and len(branches) > 1 else None
    link = DeepLink(tab=tab, model=model, values=tuple(pairs), path=tuple(path) if path else None, branches=kept)
    return f"{root.rstrip('/')}/?{to_query(link)}"


def app_root(request: gr.Request | None) -> str:
    """The public address of the app as this browser reaches it (proxies such as Spaces included)."""
    raw = getattr(request, "request", None) if request is not None else None
    if raw is not None:
        return route_utils.get_root_url(raw, route_utils.get_api_call_path(raw), raw.scope.get("root_path"))
    headers = dict(getattr(request, "headers", {}) or {})
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    return f"{headers.get('x-forwarded-proto', 'http')}://{host}"


def _trail(value: Any) -> tuple[list[int] | None, list[list[int]] | None]:
    """The current path and every branch from what a Step tab keeps in its ``path`` component: a list of token
    IDs, or ``{"path": [...], "branches": [[...], ...]}``."""
    if not value:
        return None, None
    if isinstance(value, dict):
        return [int(t) for t in value.get("path") or []] or None, [
            [int(t) for t in branch] for branch in value.get("branches") or []] or None
    return [int(t) for t in value], None


def wire(demo: gr.Blocks, model_state: gr.State, status: gr.Markdown,
         views: Mapping[str, Mapping[str, Any]], after: Any = None) -> gr.Textbox:
    """Restore the view in the URL on page load, and render the Share button. Call at the end of ``build_demo``.

    ``views`` maps a tab id to the dict its ``build()`` returned (tabs not yet
    built may be missing). ``after``: the page-load event the restoring is chained to (the header's, which also
    writes the status line: chained, a link's message about its model lands last). Returns the textbox that
    shows the shared link.
    """
    tabs, tab_list = find_tabs(demo)
    tab_ids = [str(tab.id) for tab in tab_list]
    picker = find_by_elem_id(demo, "model-picker")
    tab_views = {tab_id: tab_view(tab_id, views.get(tab_id, {})) for tab_id in tab_ids}
    current_tab = gr.State(str(tabs.selected or tab_ids[0]))

    flat: list[gr.components.Component] = []
    for view in tab_views.values():
        flat.extend(component for _, component in view.fields.values())
    paths = [view.path for view in tab_views.values() if view.path is not None]

    def remember(tab_id: str) -> Callable[[], str]:
        def selected() -> str:
            return tab_id
        return selected

    for tab in tab_list:
        tab.select(remember(str(tab.id)), None, current_tab, queue=False, api_visibility="private",
                   **progress.quiet(current_tab))

    model_outputs = [model_state, status] + ([picker] if picker is not None else [])
    rendered = [c for view in tab_views.values() if view.render is not None for c in view.render[1]]
    outputs = _unique([tabs, current_tab, *model_outputs, *flat, *paths, *rendered])

    def restore(request: gr.Request, current_model: str) -> dict[Any, Any]:
        """The one writer of a page's first view: the link's controls, and every tab's views computed from
        exactly the values now on screen (a tab not in the link: from its start values)."""
        link = parse_query(dict(request.query_params), tab_ids)
        problems = list(link.problems)
        out: dict[Any, Any] = {}
        if link.tab:
            out[tabs] = gr.Tabs(selected=link.tab)
            out[current_tab] = link.tab
        model = current_model
        if link.model and link.model != current_model:
            model, text = header.switch_model(link.model, current_model, progress=_quiet)
            out.update({model_state: model, status: text})
            if picker is not None:
                out[picker] = gr.update(value=model)
        for view in tab_views.values():
            shown: dict[str, Any] = {}
            if view.tab_id == link.tab:
                shown, wrong = view_values(view, link)
                problems += wrong
                for name, value in shown.items():
                    out[view.fields[name][1]] = value
                if view.path is not None and link.path is not None:
                    shown["path"] = list(link.path)
                if view.path is not None and link.branches is not None:
                    shown["branches"] = [list(branch) for branch in link.branches]
            if view.render is not None:
                try:
                    out.update(view.render[0](model, shown))
                except Exception as error:  # noqa: BLE001 - one tab's failure must not lose the others' views
                    problems.append(message(error))
        for problem in problems:
            warn(f"Part of this link was ignored: {problem}")
        # Gradio reads an empty dict as one output value, not as "update nothing"
        return out if out else gr.skip()

    # no progress overlay: it must not cover the controls while the first view is computed
    start = demo.load if after is None else after.then
    restored = start(restore, [model_state], outputs, api_visibility="private",
                     **progress.quiet(status))
    settling = [view.settle for view in tab_views.values() if view.settle is not None]
    if settling:
        def settle(*values: Any) -> dict[Any, Any]:
            """Each tab's views again where an edit made before the first view landed was overwritten by it."""
            out: dict[Any, Any] = {}
            offset = 0
            for function, inputs, outputs in settling:
                views = function(*values[offset:offset + len(inputs)])
                if views is not None:
                    out.update(zip(outputs, views, strict=True))
                offset += len(inputs)
            return out if out else gr.skip()

        # raw values (preprocess=False), as the tabs' edit events read them; one event for every tab
        restored = restored.then(settle, [c for _, inputs, _ in settling for c in inputs],
                                 _unique([c for _, _, outputs in settling for c in outputs]), preprocess=False,
                                 trigger_mode="always_last", api_visibility="private", **progress.quiet(status))
    # one event after another: two chained to the same event, sent at once, can leave the page's stream of
    # answers open (Gradio 6.31 opens a new one for the second while the first closes)
    for view in tab_views.values():
        if view.replay is not None:
            handler, named, replay_outputs = view.replay
            restored = restored.then(_when_linked(view.tab_id, handler), inputs_kwargs=named,
                                     outputs=replay_outputs, api_visibility="private", **progress.quiet(status))

    with gr.Row(elem_id="share-row", equal_height=True):
        share = gr.Button("Share this view", scale=1, elem_id="share-button", variant="secondary")
        link_box = gr.Textbox(label="Link to this view", buttons=["copy"], interactive=False, scale=4,
                              elem_id="share-url", placeholder="Press 'Share this view' for a link to what you see")

    def make_link(request: gr.Request, tab: str, model: str, *values: Any) -> str:
        view = tab_views.get(tab)
        offset = 0
        mine: list[Any] = []
        for other in tab_views.values():
            count = len(other.fields)
            if other is view:
                mine = list(values[offset:offset + count])
            offset += count
        path_value = None
        for other in tab_views.values():
            if other.path is not None:
                if other is view:
                    path_value = values[offset]
                offset += 1
        for other in tab_views.values():
            if other.share is not None:
                count = len(other.share[1])
                if other is view:
                    named = other.share[0](dict(zip(view.fields, mine, strict=True)), *values[offset:offset + count])
                    mine = [named[name] for name in view.fields]
                offset += count
        return share_url(app_root(request), tab, model, view, mine, *_trail(path_value))

    extras = [component for view in tab_views.values() if view.share is not None for component in view.share[1]]
    share.click(make_link, [current_tab, model_state, *flat, *paths, *extras], [link_box], api_visibility="private",
                **progress.on(link_box))
    return link_box


def _when_linked(tab_id: str, handler: Callable[..., Any]) -> Callable[..., Any]:
    """``handler`` run only on a page opened by a link to ``tab_id`` with values of its own (a generator)."""

    def replay(request: gr.Request, **values: Any) -> Any:
        query = dict(request.query_params)
        if query.get("tab") != tab_id or set(query) <= {"tab", "model"}:
            return
        yield from handler(request=request, **values)

    return replay


def _quiet(*_: Any, **__: Any) -> None:
    """A progress callback that shows nothing (a page load has no progress bar to show it in)."""


def _unique(components: Iterable[Any]) -> list[Any]:
    seen: dict[int, Any] = {}
    for component in components:
        seen.setdefault(id(component), component)
    return list(seen.values())
