"""The table of knobs is the one declaration: every control offers exactly what the core accepts.

For every knob of the table and every tab that shows it, the control's lowest and highest values are accepted
by the code that uses the knob (the decoding settings, a generation request, the next-token view), and one step
beyond either end is refused with a message naming the knob. Endpoints list the table's knobs with their
defaults, and a knob added to the table reaches the controls without another edit.
"""

from __future__ import annotations

import importlib
import inspect
import math

import gradio as gr
import pytest

from stepgen import knobs as table
from stepgen.distribution import check_top_n
from stepgen.knobs import KNOBS, Knob
from stepgen.request import GenerationRequest
from stepgen.settings import DecodingSettings
from ui import controls, next_token_tab, playground_tab, step_tab

TABS = {"next-token": next_token_tab, "step": step_tab, "playground": playground_tab}
NUMERIC = [spec for spec in KNOBS if spec.kind in ("float", "int")]


def core(spec: Knob, value: float) -> object:
    """Use ``value`` for knob ``spec`` the way the app does, with the other knobs where the value makes sense."""
    if spec.group == "decoding":
        return DecodingSettings.from_dict({spec.name: value})
    if spec.group == "view":
        return check_top_n(value)
    companions = {"min_new_tokens": {"max_new_tokens": table.MAX_NEW_TOKENS},
                  "num_return_sequences": {"do_sample": True}, "penalty_alpha": {"top_k": 4}}.get(spec.name, {})
    return GenerationRequest.from_dict({**companions, spec.name: value})


def built_tabs() -> dict[str, dict[str, object]]:
    with gr.Blocks():
        state = gr.State("")
        return {tab_id: module.build(state) for tab_id, module in TABS.items()}


@pytest.fixture(scope="module")
def tabs() -> dict[str, dict[str, object]]:
    return built_tabs()


def shown_in(tabs: dict[str, dict[str, object]]) -> list[tuple[str, Knob, gr.Slider]]:
    return [(tab_id, spec, components[spec.name]) for tab_id, components in tabs.items() for spec in NUMERIC
            if isinstance(components.get(spec.name), gr.Slider)]


def test_every_numeric_knob_has_a_control_in_a_tab(tabs: dict) -> None:
    missing = {spec.name for spec in NUMERIC} - {spec.name for _, spec, _ in shown_in(tabs)}
    assert not missing, f"knobs of the table that no tab offers: {sorted(missing)}"


@pytest.mark.parametrize("where", ["lowest", "highest"])
def test_each_controls_ends_are_accepted_and_one_step_beyond_is_refused(tabs: dict, where: str) -> None:
    checked = 0
    for tab_id, spec, slider in shown_in(tabs):
        end = slider.minimum if where == "lowest" else slider.maximum
        beyond = end - slider.step if where == "lowest" else end + slider.step
        try:
            core(spec, end)
        except ValueError as error:
            raise AssertionError(f"{tab_id}: the {where} value of `{spec.name}`, {end}, is refused: {error}") from None
        with pytest.raises(ValueError, match=f"`{spec.name}`"):
            core(spec, beyond)
            raise AssertionError(f"{tab_id}: one step beyond `{spec.name}`'s control ({beyond}) is accepted")
        assert (slider.minimum, slider.maximum, slider.step) == (spec.lowest, spec.maximum, spec.step), (
            f"{tab_id}: `{spec.name}` offers {slider.minimum}..{slider.maximum} by {slider.step}, the table says "
            f"{spec.lowest}..{spec.maximum} by {spec.step}")
        checked += 1
    assert checked >= 20, f"only {checked} controls were checked"


def test_every_step_of_a_control_is_accepted() -> None:
    """Not only the ends: a control of a knob with a gap (temperature's 0, then >= 0.01) never lands in it."""
    for spec in NUMERIC:
        count = round((spec.maximum - spec.lowest) / spec.step)
        for k in range(0, count + 1, max(1, count // 50)):
            value = spec.lowest + k * spec.step
            assert spec.check(int(round(value)) if spec.kind == "int" else value) is not None, (spec.name, value)


def test_a_knob_added_to_the_table_gets_a_control_with_its_range(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = Knob("new_cutoff", "float", 0.0, "A cut-off that does not exist yet.", 0.0, 0.5, 0.05)
    monkeypatch.setitem(table.BY_NAME, "new_cutoff", extra)
    with gr.Blocks():
        slider = controls.control("new_cutoff", "next")
    assert isinstance(slider, gr.Slider) and (slider.minimum, slider.maximum, slider.step) == (0.0, 0.5, 0.05)
    assert slider.elem_id == "next-new-cutoff" and slider.info == extra.meaning, (slider.elem_id, slider.info)


@pytest.mark.parametrize(("endpoint", "names"), [
    (next_token_tab.next_token_api, ("top_n", *table.DECODING)),
    (step_tab.step_api, ("top_n", *table.DECODING)),
    (playground_tab.generate_api, (*table.DECODING, *table.GENERATE_ONLY)),
])
def test_endpoints_list_the_tables_knobs_with_its_defaults(endpoint: object, names: tuple[str, ...]) -> None:
    parameters = inspect.signature(endpoint).parameters
    for name in names:
        assert name in parameters, f"{endpoint.__name__} lacks `{name}`"
        spec = table.knob(name)
        default = parameters[name].default
        want = -1 if spec.kind == "seed" else None if spec.kind in ("words", "strings") else spec.default
        assert default == want, f"{endpoint.__name__}: `{name}` defaults to {default!r}, the table says {want!r}"
        assert spec.meaning in (endpoint.__doc__ or ""), f"{endpoint.__name__}'s docs do not explain `{name}`"


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.5", True, None])
def test_a_number_knob_refuses_what_is_not_a_finite_number_by_name(value: object) -> None:
    for spec in NUMERIC:
        with pytest.raises(ValueError, match=f"`{spec.name}` has to be"):
            spec.check(value)


@pytest.mark.parametrize("group", ["decoding", "generate"])
def test_a_knob_added_to_the_table_appears_in_every_tab_and_endpoint_without_another_edit(
        group: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tabs' lists of knobs, their layouts and the endpoints' signatures are all read from the table."""
    extra = Knob("new_cutoff", "float", 0.0, "A cut-off that does not exist yet.", 0.0, 0.5, 0.05, group=group)
    monkeypatch.setattr(table, "KNOBS", (*table.KNOBS, extra))
    monkeypatch.setitem(table.BY_NAME, "new_cutoff", extra)
    names = "DECODING" if group == "decoding" else "GENERATE_ONLY"
    monkeypatch.setattr(table, names, (*getattr(table, names), "new_cutoff"))
    tabs = {"next-token": next_token_tab, "step": step_tab} if group == "decoding" else {}
    tabs["playground"] = playground_tab
    try:
        for module in tabs.values():
            importlib.reload(module)
        built = built_tabs()
        for name, module in tabs.items():
            component = built[name]["new_cutoff"]
            assert isinstance(component, gr.Slider) and component.maximum == 0.5, f"{name}: {component!r}"
        endpoints = [playground_tab.generate_api]
        if group == "decoding":
            endpoints += [next_token_tab.next_token_api, step_tab.step_api]
        for endpoint in endpoints:
            parameters = list(inspect.signature(endpoint).parameters)
            assert "new_cutoff" in parameters, f"{endpoint.__name__} lacks the new knob: {parameters}"
            assert extra.meaning in (endpoint.__doc__ or ""), f"{endpoint.__name__}'s docs do not explain it"
        assert playground_tab.KNOBS[-1] == "new_cutoff", "a new knob goes last, so positional callers keep working"
    finally:
        monkeypatch.undo()
        for module in tabs.values():
            importlib.reload(module)
