"""Every event shows its progress on one component, and the app on few (see ``ui/progress.py`` for why).

Read from the Blocks config, as the page receives it: a new event that leaves Gradio's default (progress on
every output) fails here, before it can slow every keystroke of the page down.
"""

from __future__ import annotations

import pytest

import app
from ui import progress


@pytest.fixture(scope="module")
def config() -> dict:
    return app.build_demo().get_config_file()


def _name(config: dict, component_id: int) -> str:
    component = next(c for c in config["components"] if c["id"] == component_id)
    return f"{component['type']} #{component['props'].get('elem_id') or component_id}"


def test_every_event_a_page_starts_shows_its_progress_on_one_component(config: dict) -> None:
    shown = progress.targets(config)
    assert len(shown) > 40, f"only {len(shown)} events found: the config has changed shape"
    crowded = {index: sorted(_name(config, i) for i in ids) for index, ids in shown.items() if len(ids) > 1}
    assert not crowded, f"events showing progress on several components (give them progress.on(...)): {crowded}"


def test_the_whole_app_shows_progress_on_few_components(config: dict) -> None:
    every = set().union(*progress.targets(config).values())
    assert len(every) <= progress.MAX_TARGETS, sorted(_name(config, i) for i in every)


def test_the_first_view_of_a_page_keeps_its_status_on_the_one_spot(config: dict) -> None:
    on_load = {d["id"] for d in config["dependencies"] if d["targets"] and d["targets"][0][1] == "load"}
    loads = [d for d in config["dependencies"] if (d["id"] in on_load or d.get("trigger_after") in on_load)
             and len(d["outputs"]) > 20]  # a page-load event, or one chained to it
    assert len(loads) == 1, f"{len(loads)} page-load events write more than 20 components"
    assert [_name(config, i) for i in loads[0]["show_progress_on"]] == ["html #progress-spot"]


def test_every_quick_event_keeps_its_status_on_the_first_component_of_the_page(config: dict) -> None:
    """Gradio looks a status's component up in page order: the spot first, it is found at once."""
    spot = config["layout"]["children"][0]["id"]
    assert _name(config, spot) == "html #progress-spot"
    quick = [d for d in config["dependencies"] if d.get("backend_fn") and d.get("show_progress") == "hidden"
             and (d["targets"] or d.get("trigger_after") is not None)
             and not (d.get("api_name") or "").startswith("load_example")]  # gr.Examples' own, on its prompt
    assert len(quick) > 30, f"only {len(quick)} quick events found: the config has changed shape"
    elsewhere = sorted({_name(config, i) for d in quick for i in d.get("show_progress_on") or d["outputs"]} - {
        _name(config, spot)})
    assert not elsewhere, f"quick events keep their status elsewhere (give them progress.quiet(...)): {elsewhere}"


def test_targets_reads_progress_from_the_outputs_when_an_event_names_none() -> None:
    config = {"dependencies": [
        {"backend_fn": True, "targets": [[1, "click"]], "outputs": [2, 3], "show_progress_on": None},
        {"backend_fn": True, "targets": [[1, "change"]], "outputs": [2, 3], "show_progress_on": [4]},
        {"backend_fn": False, "targets": [[1, "click"]], "outputs": [5]},
        {"backend_fn": True, "targets": [], "outputs": [6]},
    ]}
    assert progress.targets(config) == {0: {2, 3}, 1: {4}}
