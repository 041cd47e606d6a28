"""The presets and classic experiments are plain data in stepgen: each is a valid run that shows what its note says."""

from __future__ import annotations

import pytest

from stepgen.generation import generate
from stepgen.presets import (
    EXPERIMENTS,
    Claim,
    KEPT_BY_PRESETS,
    PRESET_NOTES,
    PRESETS,
    experiment,
    experiment_knobs,
    preset,
    preset_knobs,
)
from stepgen.repetition import first_repeat, repeats
from stepgen.request import GenerationRequest
from stepgen.results import GeneratedSequence, TokenInfo


def run(loaded: object, name: str) -> object:
    """The experiment as it is meant: its prompt and its request."""
    chosen = experiment(name)
    return generate(loaded, chosen.prompt, chosen.request)


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_experiment_is_a_valid_run_with_a_note(tiny_gpt2: object, name: str) -> None:
    result = run(tiny_gpt2, name)
    assert result.sequences and all(s.token_ids for s in result.sequences), f"{name}: no text"
    assert EXPERIMENTS[name].note and EXPERIMENTS[name].prompt, f"{name}: no note or no prompt"


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_an_experiment_names_every_knob_and_leaves_the_others_neutral(name: str) -> None:
    knobs = experiment_knobs(name)
    assert set(knobs) == set(GenerationRequest().to_dict()), f"{name}: knobs missing or extra: {sorted(knobs)}"
    neutral = GenerationRequest().to_dict()
    for knob, value in knobs.items():
        expected = EXPERIMENTS[name].knobs.get(knob, neutral[knob])
        assert value == expected, f"{name}: `{knob}` is {value!r}, but the experiment means {expected!r}"


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_preset_sets_every_knob_but_length_and_seed(name: str) -> None:
    knobs = preset_knobs(name)
    assert not set(knobs) & set(KEPT_BY_PRESETS), f"{name} must leave {KEPT_BY_PRESETS} alone: {sorted(knobs)}"
    assert set(knobs) | set(KEPT_BY_PRESETS) == set(GenerationRequest().to_dict()), f"{name}: {sorted(knobs)}"
    request = preset(name, max_new_tokens=7, seed=5)
    assert request.max_new_tokens == 7 and request.seed == 5, f"{name}: the kept knobs were not carried over"
    assert {k: v for k, v in request.to_dict().items() if k in knobs} == knobs, f"{name}: knobs and request differ"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: experiment("No such lesson"), "`experiment` has to be one of Greedy repeats itself, "),
        (lambda: experiment_knobs("No such lesson"), "`experiment` has to be one of"),
        (lambda: preset_knobs("fast"), "`preset` has to be one of greedy, beam search"),
    ],
)
def test_an_unknown_name_is_refused_with_the_names_there_are(call: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


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


def _text(ids: list[int], text: str = "", finish: str = "length", rank: int = 1) -> GeneratedSequence:
    tokens = tuple(TokenInfo(i, "", 0.5, 0.5, rank, 1.0, 1.0, -0.7) for i in ids)
    return GeneratedSequence(token_ids=tuple(ids), text=text, tokens=tokens, logprob=-1.0, finish=finish)


@pytest.mark.parametrize(
    ("claim", "texts", "holds"),
    [
        (Claim("repeats", 6), [_text([1, 2, 3, 1, 2, 3])], True),
        (Claim("repeats", 5), [_text([1, 2, 3, 1, 2, 3])], False),  # the repeat completes at token 5, not before
        (Claim("never repeats"), [_text([1, 2, 3, 4, 1, 2])], True),
        (Claim("never repeats"), [_text([1, 2, 3, 1, 2, 3])], False),
        (Claim("share first", 2), [_text([1, 2, 3]), _text([1, 2, 4])], True),
        (Claim("share first", 3), [_text([1, 2, 3]), _text([1, 2, 4])], False),
        (Claim("differ within", 3), [_text([1, 2, 3]), _text([1, 2, 4])], True),
        (Claim("differ within", 2), [_text([1, 2, 3]), _text([1, 2, 4])], False),
        (Claim("ranks within", 50), [_text([1], rank=50)], True),
        (Claim("ranks within", 50), [_text([1], rank=51)], False),
        (Claim("avoids", text="Paris"), [_text([1], " Lyon")], True),
        (Claim("avoids", text="Paris"), [_text([1], " Paris")], False),
        (Claim("stops at", text="."), [_text([1], " end."), _text([2], " x", finish="eos")], True),
        (Claim("stops at", text="."), [_text([1], " end")], False),
    ],
)
def test_a_claim_is_checked_on_what_was_written(claim: Claim, texts: list[GeneratedSequence], holds: bool) -> None:
    failure = claim.failure([9, 8], texts)
    assert (failure == "") is holds, f"{claim} on {[t.token_ids for t in texts]}: {failure or 'holds'}"


def test_every_experiment_makes_a_checkable_claim() -> None:
    unclaimed = [name for name, chosen in EXPERIMENTS.items() if chosen.claim is None]
    assert not unclaimed, f"these experiments' notes claim nothing a test can check: {unclaimed}"
    with pytest.raises(ValueError, match="`kind` has to be one of repeats"):
        Claim("looks nice")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_each_experiments_note_is_true_of_the_embedded_model(embedded: object, name: str) -> None:
    result = run(embedded, name)
    claim = EXPERIMENTS[name].claim
    failure = claim.failure(result.prompt_ids, result.sequences)
    assert not failure, f"{name}: the note claims {claim}, but {failure}: {[s.text for s in result.sequences]}"


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_says_what_it_does_in_the_playground(name: str) -> None:
    from ui import playground_tab

    note = playground_tab.preset_note(name)
    assert note.startswith("**What this preset does.**") and PRESET_NOTES[name] in note, note
    assert playground_tab._preset_note(name) == note  # what picking it (or a link naming it) shows


def test_no_preset_picked_leaves_the_note_of_the_experiment_that_unpicked_it() -> None:
    import gradio as gr

    from ui import playground_tab

    assert playground_tab._preset_note(None) == gr.skip()


@pytest.mark.slow
def test_the_greedy_note_is_true_of_the_embedded_model_on_the_playground_example(embedded: object) -> None:
    """The note says the text starts repeating at about token 40, so with 100 tokens the loop shows."""
    from stepgen.knobs import knob
    from ui.playground_tab import EXAMPLE

    assert knob("max_new_tokens").default == 40 and "about token 40" in PRESET_NOTES["greedy"]
    prompt_ids = embedded.tokenizer(EXAMPLE)["input_ids"]
    texts = generate(embedded, EXAMPLE, preset("greedy", max_new_tokens=100)).sequences
    assert not Claim("repeats", 60).failure(prompt_ids, texts), Claim("repeats", 60).failure(prompt_ids, texts)
    assert Claim("repeats", 30).failure(prompt_ids, texts), "the text repeats itself well before token 40"
