"""Copy as code: the generated script, executed against a tiny model folder, gives the same tokens and numbers."""

from __future__ import annotations

import ast
import contextlib
import io
import re

import pytest

from stepgen.codegen import load_arguments, python_code
from stepgen.generation import generate
from stepgen.request import GenerationRequest

RUNS = {
    "greedy": {"max_new_tokens": 15, "repetition_penalty": 1.3, "bad_words": ["the"]},
    "beam": {"max_new_tokens": 10, "num_beams": 3, "num_return_sequences": 2, "no_repeat_ngram_size": 2,
             "length_penalty": 0.7},
    "sample": {"max_new_tokens": 20, "do_sample": True, "seed": 2024, "temperature": 0.9, "top_p": 0.9,
               "num_return_sequences": 2, "stop_strings": ["."]},
}
PROMPT = 'She said: "It\'s a dark and stormy night"\n\t— and left 🌧'


def run_code(code: str) -> tuple[dict, str]:
    """Execute the script as a user would paste it; return its globals and what it printed."""
    namespace: dict = {"__name__": "__main__"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "<copied code>", "exec"), namespace)  # noqa: S102 - executing the code is the test
    return namespace, printed.getvalue()


@pytest.mark.parametrize("name", list(RUNS))
def test_copied_code_reproduces_the_run(tiny: object, name: str) -> None:
    result = generate(tiny, PROMPT, GenerationRequest.from_dict(RUNS[name]))
    code = python_code(result)
    namespace, printed = run_code(code)
    sequences = namespace["outputs"].sequences
    prompt_length = namespace["prompt_length"]
    assert prompt_length == len(result.prompt_ids), "the script tokenizes the prompt differently"
    assert sequences[0, :prompt_length].tolist() == list(result.prompt_ids), "the script's prompt ids differ"
    assert sequences.shape[0] == len(result.sequences), "the script returns a different number of sequences"
    for index, sequence in enumerate(result.sequences):
        generated = sequences[index, prompt_length:].tolist()
        assert generated[: len(sequence.token_ids)] == list(sequence.token_ids), f"sequence {index} differs"
        assert repr(sequence.text) in printed, f"the script does not print sequence {index}: {sequence.text!r}"
    assert_same_numbers(namespace, result)


TOLERANCE = 1e-5
"""Float32 sums can differ in their last bits between two runs of the same model (the math library splits
them by the threads it has free), so two runs agree to about 1e-6, not bit for bit."""


def assert_same_numbers(namespace: dict, result: object) -> None:
    """The script's probabilities are the app's, token by token."""
    model_probs, final_probs = namespace["model_probs"], namespace["final_probs"]
    for index, sequence in enumerate(result.sequences):
        for t, token in enumerate(sequence.tokens):
            assert abs(float(model_probs[index, t]) - token.prob) < TOLERANCE, f"prob of token {t} in {index}"
            assert abs(float(final_probs[index, t]) - token.final_prob) < TOLERANCE, f"final prob {t} in {index}"


def test_the_seed_is_in_the_code_only_when_sampling(tiny_gpt2: object) -> None:
    sampled = generate(tiny_gpt2, PROMPT, GenerationRequest.from_dict({"max_new_tokens": 3, "do_sample": True}))
    assert f"torch.manual_seed({sampled.request.seed})" in python_code(sampled), "the picked seed is missing"
    greedy = generate(tiny_gpt2, PROMPT, GenerationRequest(max_new_tokens=3))
    assert "manual_seed" not in python_code(greedy), "a greedy script seeds for nothing"


def test_every_knob_is_passed_explicitly(tiny_gpt2: object) -> None:
    result = generate(tiny_gpt2, PROMPT, GenerationRequest.from_dict(RUNS["sample"]))
    tree = ast.parse(python_code(result))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and node.func.attr == "generate"]
    assert len(calls) == 1, "the script should call generate() once"
    passed = {keyword.arg for keyword in calls[0].keywords if keyword.arg}
    for knob in ("do_sample", "temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff",
                 "eta_cutoff", "repetition_penalty", "no_repeat_ngram_size", "max_new_tokens", "min_new_tokens",
                 "num_beams", "length_penalty", "early_stopping", "num_return_sequences", "stop_strings",
                 "tokenizer"):
        assert knob in passed, f"`{knob}` is not passed to generate() in the script"


def test_load_arguments_for_each_kind_of_model(tiny_gpt2_dir: object) -> None:
    assert load_arguments("distilgpt2") == ("distilgpt2", None)
    where, gguf = load_arguments(str(tiny_gpt2_dir))
    assert where == str(tiny_gpt2_dir.resolve()) and gguf is None


@pytest.mark.slow
def test_copied_code_loads_the_embedded_gguf(embedded: object) -> None:
    result = generate(embedded, "The capital of France is", GenerationRequest(max_new_tokens=4))
    code = python_code(result)
    assert "gguf_file=" in code, "the embedded model is loaded from its GGUF file"
    assert str(load_arguments("embedded")[0]) not in code, "the script holds this machine's path to the package"
    namespace, printed = run_code(code)
    generated = namespace["outputs"].sequences[0, namespace["prompt_length"]:].tolist()
    assert generated == list(result.sequences[0].token_ids), (generated, result.sequences[0].token_ids)
    assert_same_numbers(namespace, result)
    shown = [float(p) for p in re.findall(r" p=([0-9.]+) ", printed)]
    assert len(shown) == len(result.sequences[0].tokens), f"the script prints {len(shown)} probabilities:\n{printed}"
    for t, (p, token) in enumerate(zip(shown, result.sequences[0].tokens)):
        assert abs(p - token.prob) <= 5e-5 + TOLERANCE, f"token {t}: the script prints p={p}, the app {token.prob:.6f}"


NEXT_TOKEN_SETTINGS = {
    "sampling": {"temperature": 0.7, "top_k": 20, "top_p": 0.9, "repetition_penalty": 1.3, "bad_words": ["the"]},
    "cut-offs": {"min_p": 0.02, "typical_p": 0.9, "epsilon_cutoff": 1e-4, "eta_cutoff": 1e-3,
                 "no_repeat_ngram_size": 2},
    "greedy": {"temperature": 0, "repetition_penalty": 1.2},
}


@pytest.mark.parametrize("name", list(NEXT_TOKEN_SETTINGS))
def test_next_token_code_shows_the_tabs_numbers(tiny: object, name: str) -> None:
    from stepgen.codegen import next_token_code
    from stepgen.distribution import next_token
    from stepgen.settings import DecodingSettings

    settings = DecodingSettings.from_dict(NEXT_TOKEN_SETTINGS[name])
    prompt = "It was a dark and stormy night; the rain fell and the"
    code = next_token_code(tiny, prompt, settings, top_n=7)
    namespace, printed = run_code(code)
    dist = next_token(tiny, tiny.tokenizer(prompt)["input_ids"], settings, top_n=7)
    probs, final = namespace["probs"], namespace["final"]
    for candidate in dist.candidates:
        assert abs(float(probs[candidate.id]) - candidate.prob) < TOLERANCE, f"{name}: p of {candidate.id}"
        assert abs(float(final[candidate.id]) - candidate.final_prob) < TOLERANCE, f"{name}: final p of {candidate.id}"
    assert abs(float(final.sum()) - 1) < 1e-5 and int(final.argmax()) == dist.greedy_id, f"{name}: final distribution"
    assert len(printed.strip().splitlines()) == 7, f"the script prints {printed!r}"


@pytest.mark.slow
def test_next_token_code_runs_on_the_embedded_gguf(embedded: object) -> None:
    from stepgen.codegen import next_token_code
    from stepgen.distribution import next_token
    from stepgen.settings import DecodingSettings

    settings = DecodingSettings(temperature=0.7, top_k=5)
    code = next_token_code(embedded, "The capital of France is", settings)
    namespace, printed = run_code(code)
    dist = next_token(embedded, embedded.tokenizer("The capital of France is")["input_ids"], settings)
    top = dist.candidates[0]
    assert abs(float(namespace["final"][top.id]) - top.final_prob) < TOLERANCE, (top, printed)
    assert "Paris" in printed.splitlines()[0], printed
