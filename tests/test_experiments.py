"""The playground's classic experiments show what their notes promise, and loops are marked in the output."""

from __future__ import annotations

import math

import pytest

from stepgen.generation import generate
from stepgen.repetition import first_repeat, repeats
from stepgen.results import GeneratedSequence, TokenInfo
from ui import playground_tab
from ui.playground_tab import EXPERIMENTS, KNOBS, request_from_controls


def run(loaded: object, name: str) -> object:
    """The experiment as the tab would run it: its prompt and control values, through the tab's own parsing."""
    controls = playground_tab.experiment_controls(name)
    return generate(loaded, controls["prompt"], request_from_controls({knob: controls[knob] for knob in KNOBS}))


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_is_a_valid_run_with_a_note(tiny_gpt2: object, name: str) -> None:
    result = run(tiny_gpt2, name)
    assert result.sequences and all(s.token_ids for s in result.sequences), f"{name}: no text"
    values = playground_tab._experiment_values(name)
    assert values[0] == EXPERIMENTS[name].prompt and len(values) == len(KNOBS) + 2, values
    assert EXPERIMENTS[name].note in playground_tab.experiment_note(name), "the note is not shown"


def test_no_repeat_ngram_size_leaves_no_loop(tiny_gpt2: object) -> None:
    result = run(tiny_gpt2, "Fix a loop with no_repeat_ngram_size")
    ids = [*result.prompt_ids, *result.sequences[0].token_ids]
    assert first_repeat(ids, start=len(result.prompt_ids)) is None, "a 3-token run repeats despite the setting"


@pytest.mark.slow
def test_the_embedded_model_loops_greedily_and_the_fixes_work(embedded: object) -> None:
    def loops(name: str) -> int:
        result = run(embedded, name)
        ids = [*result.prompt_ids, *result.sequences[0].token_ids]
        return sum(repeats(ids)[len(result.prompt_ids):])

    greedy, penalised = loops("Greedy repeats itself"), loops("Fix a loop with repetition_penalty")
    assert greedy >= 10, f"greedy decoding should loop on this prompt, but only {greedy} tokens repeat"
    assert penalised < greedy / 2, f"repetition_penalty should break the loop: {penalised} vs {greedy} repeating"


@pytest.mark.slow
def test_the_embedded_model_shows_each_sampling_idea(embedded: object) -> None:
    banned = run(embedded, "Forbid the obvious: bad_words").sequences[0]
    assert "Paris" not in banned.text, f"the banned word was written: {banned.text!r}"

    def mean_final_entropy(name: str) -> float:
        sequences = run(embedded, name).sequences
        entropies = [token.final_entropy for sequence in sequences for token in sequence.tokens]
        return sum(entropies) / len(entropies)

    cool, hot = mean_final_entropy("Low temperature: safe and samey"), mean_final_entropy(
        "High temperature: surprising, then nonsense")
    assert cool < 1.0 < hot, f"temperature 0.3 should leave little choice and 1.6 a lot: {cool:.2f} vs {hot:.2f} bits"
    stopped = run(embedded, "Stop at a sentence's end: stop_strings").sequences[0]
    assert stopped.finish in ("stop_string", "eos") and (stopped.finish == "eos" or stopped.text.endswith(".")), stopped


def test_loops_are_marked_in_the_output() -> None:
    tokens = tuple(TokenInfo(i, f" w{i}", 0.5, 0.5, 1, 1.0, 1.0, math.log(0.5)) for i in (1, 2, 3, 1, 2, 3, 4))
    sequence = GeneratedSequence(token_ids=tuple(t.id for t in tokens), text="", tokens=tokens, logprob=-1.0,
                                 finish="length")
    shown = playground_tab.sequences_html("Start", (sequence,), False, prompt_ids=(9,))
    assert shown.count('class="pg-tok pg-rep"') == 1, "only the token completing 'w1 w2 w3' again repeats"
    assert "repeats itself from token 6" in shown, "the summary does not say where the loop starts"
