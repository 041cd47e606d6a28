"""Auto-stepping without a user interface: it stops at the count, the end-of-sequence token, the context window
and the Stop flag, each as promised."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest

from stepgen import stepping
from stepgen.autostep import MAX_AUTO_STEPS, auto_steps, check_count
from stepgen.kvcache import KVStore
from stepgen.settings import DecodingSettings

PROMPT = "It was a dark and stormy"
GREEDY = DecodingSettings(temperature=0)


class _NamedEos:
    """A tokenizer like another, except for the token it names as the end of a sequence."""

    def __init__(self, tokenizer: Any, eos_token_id: int | None) -> None:
        self._tokenizer = tokenizer
        self.eos_token_id = eos_token_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __len__(self) -> int:
        return len(self._tokenizer)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tokenizer(*args, **kwargs)


def with_eos(loaded: Any, eos_token_id: int | None) -> Any:
    return dataclasses.replace(loaded, tokenizer=_NamedEos(loaded.tokenizer, eos_token_id))


def session(loaded: Any) -> stepping.Session:
    return stepping.start(loaded.name, loaded.tokenizer(PROMPT)["input_ids"])


def test_it_takes_exactly_count_steps_each_one_token_longer(tiny_gpt2: Any) -> None:
    loaded = with_eos(tiny_gpt2, None)
    start = session(loaded)
    steps = list(auto_steps(loaded, start, GREEDY, "greedy", 4, store=KVStore(2**26)))
    assert len(steps) == 4, f"asked for 4 steps, took {len(steps)}"
    lengths = [len(moved.ids) for moved, _ in steps]
    assert lengths == [len(start.ids) + k for k in range(1, 5)], f"each step adds one token, not so: {lengths}"
    assert all(moved.ids[-1] == result.step.token_id for moved, result in steps), "a session lost its step's token"
    assert start.ids == tuple(loaded.tokenizer(PROMPT)["input_ids"]), "the session it started from was changed"


def test_it_stops_after_the_end_of_sequence_token(tiny_gpt2: Any) -> None:
    plain = with_eos(tiny_gpt2, None)
    greedy = [result.step.token_id for _, result in auto_steps(plain, session(plain), GREEDY, "greedy", 5)]
    loaded = with_eos(tiny_gpt2, greedy[2])  # the third greedy token now ends the text
    steps = list(auto_steps(loaded, session(loaded), GREEDY, "greedy", 5))
    taken = [result.step.token_id for _, result in steps]
    first = greedy.index(greedy[2])
    assert taken == greedy[: first + 1], f"it should stop right after the end-of-sequence token: {taken} vs {greedy}"


def test_it_stops_when_the_context_window_is_full(tiny_gpt2: Any) -> None:
    start = session(tiny_gpt2)
    loaded = dataclasses.replace(with_eos(tiny_gpt2, None), context_length=len(start.ids) + 3)
    steps = list(auto_steps(loaded, start, GREEDY, "greedy", 10))
    assert len(steps) == 3 and len(steps[-1][0].ids) == loaded.context_length, (
        f"it should stop at the context window ({loaded.context_length} tokens), but took {len(steps)} steps")


def test_the_stop_flag_stops_it_before_the_next_step(tiny_gpt2: Any) -> None:
    loaded = with_eos(tiny_gpt2, None)
    stop = threading.Event()
    taken = 0
    for _ in auto_steps(loaded, session(loaded), GREEDY, "greedy", 10, stop=stop):
        taken += 1
        if taken == 2:
            stop.set()
    assert taken == 2, f"Stop was set after step 2, yet {taken} steps were taken"
    assert not list(auto_steps(loaded, session(loaded), GREEDY, "greedy", 10, stop=stop)), "a set flag allows no step"


def test_stop_during_a_step_shows_that_step_and_ends_the_pause(tiny_gpt2: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stop pressed while a step is computed: that step still comes out (the page shows what the session holds),
    the pause after it ends at once (an hour-long interval would otherwise hold the run), and no step follows."""
    from stepgen import autostep

    loaded = with_eos(tiny_gpt2, None)
    stop = threading.Event()
    advance = autostep.advance

    def pressed_during(*args: Any, **kwargs: Any) -> Any:
        result = advance(*args, **kwargs)
        stop.set()
        return result

    monkeypatch.setattr(autostep, "advance", pressed_during)
    start = session(loaded)
    done = threading.Event()
    out: list[Any] = []

    def run() -> None:
        out.extend(auto_steps(loaded, start, GREEDY, "greedy", 10, stop=stop, interval=3600))
        done.set()

    threading.Thread(target=run, daemon=True).start()
    assert done.wait(60), "the pause after the step did not end when Stop was set"
    assert len(out) == 1, f"the step under way when Stop came should come out, and no other: {len(out)}"
    assert len(out[0][0].ids) == len(start.ids) + 1, "the step that came out is not one token longer"


def test_a_callable_can_be_the_stop_flag(tiny_gpt2: Any) -> None:
    loaded = with_eos(tiny_gpt2, None)
    seen: list[int] = []
    for _, result in auto_steps(loaded, session(loaded), GREEDY, "sample", 10, stop=lambda: len(seen) >= 3):
        seen.append(result.step.token_id)
    assert len(seen) == 3, f"the callable said stop after 3 steps, yet {len(seen)} were taken"


@pytest.mark.parametrize("count", [0, -1, MAX_AUTO_STEPS + 1, 2.5, True, "3", None])
def test_a_bad_count_is_refused_with_its_name_before_any_step(tiny_gpt2: Any, count: Any) -> None:
    with pytest.raises(ValueError, match=rf"^`N` has to be a whole number from 1 to {MAX_AUTO_STEPS}, but is "):
        auto_steps(tiny_gpt2, session(tiny_gpt2), GREEDY, "greedy", count)


def test_a_whole_float_counts_as_a_count() -> None:
    assert check_count(20.0) == 20 and check_count(MAX_AUTO_STEPS) == MAX_AUTO_STEPS, "JSON sends 20 as 20.0"
