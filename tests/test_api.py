"""The JSON endpoints as a gradio_client caller meets them: lists given as one string, wrong types, streaming
and cancelling /generate. (The README's own examples are run by test_readme_api.py.)"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from gradio_client.exceptions import AppError

PROMPT = "It was a dark and stormy night; the"


def test_a_single_string_is_one_bad_word_or_stop_string(client: object) -> None:
    run = client.predict(prompt=PROMPT, max_new_tokens=3, bad_words="rain", stop_strings="end.",
                         api_name="/generate")
    assert run["request"]["bad_words"] == ["rain"], f"'rain' was split up: {run['request']['bad_words']}"
    assert run["request"]["stop_strings"] == ["end."], f"'end.' was split up: {run['request']['stop_strings']}"
    dist = client.predict(prompt=PROMPT, bad_words="rain", api_name="/next_token")
    assert dist["settings"]["bad_words"] == ["rain"], dist["settings"]["bad_words"]
    step = client.predict(prompt=PROMPT, bad_words="rain", api_name="/step")
    assert step["next"]["settings"]["bad_words"] == ["rain"], step["next"]["settings"]["bad_words"]


@pytest.mark.parametrize(
    "api_name, arguments, message",
    [
        ("/tokenize", {"text": "Hi", "add_special_tokens": "no"}, "`add_special_tokens` has to be true or false"),
        ("/load_model", {"model": 5}, "`model` has to be a model name"),
        ("/next_token", {"prompt": "Hi", "model": ["a"]}, "`model` has to be a model name"),
        ("/detokenize", {"ids": None}, "`ids` has to be a list of integers"),
        ("/detokenize", {"ids": [1.5]}, "`ids` has to hold integers"),
        ("/step", {"prompt": PROMPT, "strategy": 5}, "`strategy` has to be one of"),
        ("/step", {"prompt": PROMPT, "token_id": "5"}, "`token_id` has to be a token id"),
        ("/step", {"token_ids": ["x"]}, "`token_ids` has to be a list of integers"),
        ("/step", {"token_ids": [1.7]}, "`token_ids` has to be a list of integers"),
        ("/next_token", {"prompt": 5}, "`prompt` has to be a string"),
        ("/generate", {"prompt": PROMPT, "seed": "abc"}, "`seed` has to be a whole number"),
        ("/generate", {"prompt": ""}, "type a prompt"),
    ],
)
def test_wrong_types_get_a_message_naming_the_argument(client: object, api_name: str, arguments: dict,
                                                       message: str) -> None:
    with pytest.raises(AppError) as caught:
        client.predict(api_name=api_name, **arguments)
    assert message in str(caught.value), f"{api_name} {arguments}: {caught.value!s} does not say {message!r}"
    assert client.predict(text="still serving", api_name="/tokenize")["count"] > 0, "the app stopped serving"


def test_ids_as_text_are_read_like_the_tab_reads_them(client: object) -> None:
    ids = client.predict(text="Hello world", api_name="/tokenize")["ids"]
    as_text = client.predict(ids=", ".join(map(str, ids)), api_name="/detokenize")
    assert as_text["ids"] == ids and as_text["text"] == client.predict(ids=ids, api_name="/detokenize")["text"], as_text


def test_comparing_a_tokenizer_with_itself_gives_two_counts(client: object) -> None:
    both = client.predict(text="Tokenizers differ.", other="", api_name="/compare_tokenizers")
    counts = both["counts"]
    assert len(counts) == 2 and counts[0] == counts[1], f"two identical tokenizers should give two equal counts: {counts}"
    assert counts[0]["count"] == both["results"][0]["count"], counts


def test_minus_one_or_no_seed_means_a_random_one_that_is_returned(client: object) -> None:
    runs = [client.predict(prompt=PROMPT, max_new_tokens=4, do_sample=True, seed=seed, api_name="/generate")
            for seed in (-1, None)]
    for run in runs:
        assert isinstance(run["seed"], int) and run["seed"] >= 0, f"no seed was reported: {run['seed']}"
    again = client.predict(prompt=PROMPT, max_new_tokens=4, do_sample=True, seed=runs[0]["seed"], api_name="/generate")
    assert again["sequences"][0]["token_ids"] == runs[0]["sequences"][0]["token_ids"], "the reported seed does not repeat"


def _generating() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "stepgen-generate"]


def test_generate_streams_and_a_cancelled_job_stops_the_work(client: object, long_tiny_dir: Path) -> None:
    model = str(long_tiny_dir)
    job = client.submit(prompt=PROMPT, model=model, max_new_tokens=1000, min_new_tokens=1000, api_name="/generate")
    running = None
    for update in job:  # each update as it arrives; the loop ends with the job
        if update.get("status") == "running":
            running = update
            break
    assert running, "the job streamed no partial result"
    assert 0 < len(running["sequences"][0]["tokens"]) < 1000, "a partial result should hold some tokens"
    workers = _generating()
    assert workers, "no generate() worker is running while the job streams"
    job.cancel()
    for worker in workers:
        worker.join(timeout=20)
    assert not _generating(), "generate() went on after the job was cancelled"
    done = client.predict(prompt=PROMPT, model=model, max_new_tokens=3, api_name="/generate")
    assert done["status"] == "done" and len(done["sequences"][0]["token_ids"]) <= 3, "the app does not serve after it"


def test_beam_search_running_updates_say_how_many_steps_are_done(client: object, long_tiny_dir: Path) -> None:
    job = client.submit(prompt=PROMPT, model=str(long_tiny_dir), max_new_tokens=60, min_new_tokens=60, num_beams=2,
                        api_name="/generate")
    done = job.result()
    running = [update for update in job.outputs() if update.get("status") == "running"]
    assert running, "beam search streamed no running update"
    steps = [update.get("steps") for update in running]
    assert all(isinstance(n, int) and 1 <= n <= 60 for n in steps), f"steps done of 60 are {steps}"
    assert steps == sorted(steps), f"the steps done go backwards: {steps}"
    assert all(update.get("max_new_tokens") == 60 for update in running), f"no max_new_tokens in {running[0]}"
    assert done["status"] == "done" and len(done["beam_tree"]) == 60, "the run did not end with its 60-step tree"


def test_score_gives_each_tokens_probability_and_the_perplexity(client: object, tiny_gpt2: object) -> None:
    from stepgen.scoring import score

    answer = client.predict(prompt=PROMPT, api_name="/score")
    expected = score(tiny_gpt2, tiny_gpt2.tokenizer(PROMPT)["input_ids"])
    assert answer["ids"] == [token.id for token in expected.tokens], "scored other tokens than the prompt's"
    assert answer["tokens"][0]["prob"] is None, "the first token has no prediction"
    assert abs(answer["perplexity"] - expected.perplexity) < 1e-6 * expected.perplexity, answer["perplexity"]
