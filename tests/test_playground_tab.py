"""The playground tab's conversions: experiments and presets into control values and back, loops marked in the text."""

from __future__ import annotations

import math

import gradio as gr
import pytest

from stepgen.presets import EXPERIMENTS, PRESETS, experiment, preset_knobs
from stepgen.results import GeneratedSequence, TokenInfo
from ui import playground_tab
from ui.playground_tab import KNOBS, request_from_controls


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_an_experiments_controls_give_back_its_request(name: str) -> None:
    controls = playground_tab.experiment_controls(name)
    request = request_from_controls({knob: controls[knob] for knob in KNOBS})
    assert request == experiment(name).request, f"{name}: the controls describe {request}, not the experiment"
    values = playground_tab._experiment_values(name)
    assert values[0] == EXPERIMENTS[name].prompt and len(values) == len(KNOBS) + 2, values
    assert EXPERIMENTS[name].note in playground_tab.experiment_note(name), "the note is not shown"


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_fills_its_knobs_and_leaves_the_others_alone(name: str) -> None:
    values = dict(zip(KNOBS, playground_tab.preset_values(name), strict=True))
    set_by_preset = {knob for knob, value in values.items() if value != gr.skip()}
    assert set_by_preset == set(preset_knobs(name)), f"{name} fills {sorted(set_by_preset)}"


def test_loops_are_marked_in_the_output() -> None:
    tokens = tuple(TokenInfo(i, f" w{i}", 0.5, 0.5, 1, 1.0, 1.0, math.log(0.5)) for i in (1, 2, 3, 1, 2, 3, 4))
    sequence = GeneratedSequence(token_ids=tuple(t.id for t in tokens), text="", tokens=tokens, logprob=-1.0,
                                 finish="length")
    shown = playground_tab.sequences_html("Start", (sequence,), False, prompt_ids=(9,))
    assert shown.count('class="pg-tok pg-rep"') == 1, "only the token completing 'w1 w2 w3' again repeats"
    assert "repeats itself from token 6" in shown, "the summary does not say where the loop starts"


def test_a_beam_search_says_why_it_waits_and_how_far_it_got(tiny_gpt2_dir: object) -> None:
    controls = playground_tab.experiment_controls("Beam search looks further ahead")
    statuses = [update[0] for update in playground_tab._run(None, str(tiny_gpt2_dir), "Hello", **{
        knob: controls[knob] for knob in KNOBS})]
    waiting = [status for status in statuses[:-1] if isinstance(status, str)]
    assert waiting and all("there is no text to stream" in status for status in waiting), (
        f"a status while the beams run does not say why no text shows: {waiting}")
    assert waiting[0].startswith("Beam search is running: step 0 of at most 20."), waiting[0]
    assert playground_tab.beam_status(7, 20).startswith("Beam search is running: step 7 of at most 20."), (
        "the status does not count the steps done")
