"""A run that fails half-way: the model raising, drawing an impossible token, running out of memory.

Each failure is injected into a tiny model with a forward hook, after a few good steps. The run must end with
a message (``GenerationFailed``, a ``ValueError`` the app shows like every explained error), leave no worker
and no held sampling lock behind, and the next seeded run must give the same text as before the failure. The
same failure, through the app's ``/generate`` endpoint, reaches a ``gradio_client`` caller as that message.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from stepgen import generation
from stepgen.generation import GenerationFailed, generate, stream
from stepgen.request import GenerationRequest

PROMPT = "It was a dark and stormy night; the"
SAMPLED = {"max_new_tokens": 12, "min_new_tokens": 12, "do_sample": True, "seed": 5, "temperature": 1.2}


def _raise_runtime() -> None:
    raise RuntimeError("the device fell over")


def _raise_memory() -> None:
    raise MemoryError()


FAILURES = {
    "the model raises": (_raise_runtime, "RuntimeError: the device fell over"),
    "out of memory": (_raise_memory, "it ran out of memory"),
    "a bad token (NaN logits)": (None, "RuntimeError"),
}


@contextlib.contextmanager
def failing(model: torch.nn.Module, after: int, failure: object) -> Iterator[None]:
    """The model's forward passes go well ``after`` times, then fail: ``failure`` is raised, or (None) the
    logits become NaN, so that sampling has no valid token to draw."""
    calls = [0]

    def hook(module: object, args: object, output: object) -> object:
        calls[0] += 1
        if calls[0] <= after:
            return output
        if failure is None:
            output.logits = torch.full_like(output.logits, float("nan"))
            return output
        failure()
        return output

    handle = model.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def _workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "stepgen-generate"]


@pytest.mark.parametrize("name", list(FAILURES))
def test_a_failing_model_ends_the_run_with_a_message_and_frees_everything(tiny_gpt2: object, name: str) -> None:
    failure, said = FAILURES[name]
    request = GenerationRequest.from_dict(SAMPLED)
    before = generate(tiny_gpt2, PROMPT, request).sequences[0].token_ids
    with failing(tiny_gpt2.model, after=4, failure=failure):
        with pytest.raises(GenerationFailed) as caught:
            for _ in stream(tiny_gpt2, PROMPT, request):
                pass
    assert said in str(caught.value), f"{name}: the message {caught.value!s} does not say {said!r}"
    assert "try again" in str(caught.value), f"{name}: the message does not say what to do: {caught.value!s}"
    assert not _workers(), f"{name}: a generate() worker outlived the failed run: {_workers()}"
    assert not generation._SAMPLING_LOCK.locked(), f"{name}: the failed run kept the sampling lock"
    after = generate(tiny_gpt2, PROMPT, request).sequences[0].token_ids
    assert after == before, f"{name}: the same seed wrote {after} after the failure, {before} before it"


@pytest.mark.parametrize("name", ["the model raises", "out of memory"])
def test_contrastive_search_fails_with_the_same_message(tiny_gpt2: object, name: str) -> None:
    failure, said = FAILURES[name]
    request = GenerationRequest.from_dict({"max_new_tokens": 12, "min_new_tokens": 12, "penalty_alpha": 0.6,
                                           "top_k": 4})
    with failing(tiny_gpt2.model, after=4, failure=failure):
        with pytest.raises(GenerationFailed) as caught:
            generate(tiny_gpt2, PROMPT, request)
    assert said in str(caught.value), f"{name}: the message {caught.value!s} does not say {said!r}"


def test_a_failure_reaches_an_api_caller_as_a_message(client: object, tiny_gpt2_dir: Path) -> None:
    from gradio_client.exceptions import AppError

    from stepgen.registry import get_model

    loaded = get_model(str(tiny_gpt2_dir))  # the model the app serves by default, in this process
    with failing(loaded.model, after=3, failure=_raise_runtime):
        with pytest.raises(AppError) as caught:
            client.predict(prompt=PROMPT, api_name="/generate", **SAMPLED)
    assert "The model failed while generating" in str(caught.value), f"the caller got {caught.value!s}"
    assert not generation._SAMPLING_LOCK.locked(), "the failed run kept the sampling lock"
    again = [client.predict(prompt=PROMPT, api_name="/generate", **SAMPLED)["sequences"][0]["token_ids"]
             for _ in range(2)]
    assert again[0] == again[1], f"a seeded run no longer repeats after the failure: {again}"
