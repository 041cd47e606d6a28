"""One road from a prompt or token ids to ids the model can read, with one vocabulary rule and one window rule."""

from __future__ import annotations

from typing import Any

import pytest

from stepgen.inputs import check_ids, prompt_ids


def test_a_prompt_becomes_the_ids_its_tokenizer_gives(tiny: Any) -> None:
    text = "It was a dark and stormy"
    assert prompt_ids(tiny, text) == list(tiny.tokenizer(text)["input_ids"]), "the prompt was encoded differently"
    assert prompt_ids(tiny, "", [5.0, 6]) == [5, 6], "token ids (whole floats, as JSON sends them) are taken as given"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"prompt": "It was", "token_ids": [1, 2]}, "Give either `prompt` or `token_ids`, not both."),
        ({"token_ids": [1, 400]}, "`token_ids` has to hold ids from 0 to 399 ("),
        ({"token_ids": [1, -1]}, "`token_ids` has to hold ids from 0 to 399 ("),
        ({"token_ids": [1, "2"]}, "`token_ids` has to be a list of integers, but holds '2'"),
        ({"prompt": ""}, "There is no token to continue from: type a prompt (or give `token_ids`)."),
        ({"token_ids": [7] * 129}, "The text is 129 tokens long, but "),
        ({"prompt": "a " * 300}, "reads at most 128 tokens (its context window); shorten it."),
        ({"token_ids": [7] * 128, "room": 1}, "(its context window) and needs room for at least one more; shorten it."),
        ({"token_ids": False}, "`token_ids` has to be a list of integers, but is False"),
        ({"token_ids": 5}, "`token_ids` has to be a list of integers, but is 5"),
        ({"token_ids": {"a": 1}}, "`token_ids` has to be a list of integers, but holds 'a'"),
    ],
    ids=["both", "id-too-large", "id-negative", "id-not-a-number", "nothing", "ids-too-long", "prompt-too-long",
         "no-room", "ids-false", "ids-a-number", "ids-a-dict"],
)
def test_every_input_is_held_to_the_same_rules(tiny_gpt2: Any, arguments: dict[str, Any], message: str) -> None:
    assert tiny_gpt2.vocab_size == 400 and tiny_gpt2.context_length == 128, "the cases below assume the tiny GPT-2"
    with pytest.raises(ValueError) as caught:
        prompt_ids(tiny_gpt2, **arguments)
    assert message in str(caught.value), f"{caught.value!s} does not say {message!r}"


def test_the_vocabulary_is_the_models_output_layer(tiny_gpt2: Any) -> None:
    last = tiny_gpt2.vocab_size - 1
    assert check_ids(tiny_gpt2, [0, last]) == [0, last], "the first and last ids of the output layer are the model's"
    assert check_ids(tiny_gpt2, [7] * tiny_gpt2.context_length), "a text that fills the window exactly is readable"
