"""Bad input, searched for rather than listed: every JSON endpoint, every parameter, generated values.

The endpoints come from the app's own API description (``demo.get_api_info()``), so an endpoint or parameter
added later is driven too without editing this file. Each parameter gets values generated from its declared
type, and values of every other type: NaN, ±inf, huge and negative numbers, empty and huge strings, lone
surrogates, control characters, markup, long id lists and ids outside the vocabulary, nested lists and dicts.

What must hold for every call: it returns a JSON-ready result, or raises the error users see (``gr.Error``
from a ``ValueError``) whose message names one of the endpoint's parameters (or is one of the few messages
about the whole input: no model by that name, a text longer than the context window); and afterwards the app
still answers. Most examples call the endpoint functions in this process on the tiny offline GPT-2; a smaller
number go through ``gradio_client`` to a live server, which has to answer a health request after each.

Time is bounded by a Hypothesis ``deadline`` per example (a hang fails, a slow machine does not), and the
number of examples by the settings profile: ``STEPGEN_FUZZ_PROFILE=search`` runs many more, to search harder.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import reprlib
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

_COMMON = {"suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture],
           "database": None, "print_blob": True}
settings.register_profile("stepgen", max_examples=100, deadline=timedelta(seconds=30), **_COMMON)
settings.register_profile("stepgen-search", max_examples=400, deadline=timedelta(seconds=30), **_COMMON)
PROFILE = settings.get_profile({"search": "stepgen-search"}.get(os.environ.get("STEPGEN_FUZZ_PROFILE", ""),
                                                               "stepgen"))
LIVE = settings(PROFILE, max_examples=max(3, PROFILE.max_examples // 16))

WHOLE_INPUT = (
    "There is no token to continue from",  # stepgen.inputs.NO_TOKEN and its shorter forms
    "reads at most",  # the context window (stepgen.inputs.check_context)
    "This model has no chat template",  # stepgen.chat: about the model, which the message says to change
)
"""Messages about the whole input rather than one argument (they name the text or the window)."""
ITEM_FIELD = re.compile(r"^`\w+` .*\((message|item) \d+\)$")
"""A message naming a field of one item of a list ("`role` has to be ..., but is None (message 0)")."""


# --- the endpoints, from the app's own API description -------------------------------------------------


@lru_cache(maxsize=1)
def _demo() -> Any:
    import app

    return app.build_demo()


@lru_cache(maxsize=1)
def endpoints() -> dict[str, dict[str, Any]]:
    """Every named endpoint: its function and its parameters as the "Use via API" page lists them."""
    demo = _demo()
    named = demo.get_api_info()["named_endpoints"]
    functions = {f"/{fn.api_name}": fn.fn for fn in demo.fns.values() if fn.api_name}
    return {name: {"fn": functions[name], "parameters": info["parameters"]} for name, info in named.items()}


# --- values ----------------------------------------------------------------------------------------------

CONTROL = "".join(chr(code) for code in range(32)) + "\x7f\x85\u200b\u200e\u202e\u2028\ufeff\ufffe"
characters = st.characters(exclude_categories=())  # every code point, lone surrogates included
huge_text = st.builds(lambda piece, n: piece * n,
                      st.sampled_from(["a", "é", "🙂", " ", "\n", "<|endoftext|>", "\ud83d"]),
                      st.sampled_from([10_001, 60_000]))
texts = st.one_of(
    st.just(""),
    st.text(characters, max_size=40),
    st.text(st.sampled_from(CONTROL), min_size=1, max_size=12),
    st.sampled_from(["It was a dark and stormy", " ", "\n\n", "<|endoftext|>", "<a href='x'>sign in</a>",
                     "**bold** [link](http://x)", "greedy", "sample", "uniform", "token", "42", "-1", "1e9", "NaN",
                     "null", "true", "[1, 2, 3]", "system", "user", "assistant"]),
    huge_text,
)
integers = st.one_of(st.integers(-3, 400), st.sampled_from([2**31, 2**32 - 1, 2**32, 2**63, -2**63, 10**30, -10**30]))
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1, 6),
                   st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 0.5]))
numbers = st.one_of(integers, floats)
id_lists = st.one_of(
    st.lists(st.integers(0, 420), max_size=40),  # the tiny vocabulary has about 400 ids: some are outside
    st.lists(numbers, max_size=8),
    st.builds(lambda n, token_id: [token_id] * n, st.sampled_from([129, 2049, 10_001, 100_000]),
              st.integers(-1, 500)),
)
string_lists = st.one_of(st.lists(texts, max_size=9), texts)
messages = st.lists(
    st.one_of(
        st.fixed_dictionaries({"role": st.one_of(st.sampled_from(["system", "user", "assistant", "tool"]), texts),
                               "content": st.one_of(texts, numbers, st.none())}),
        st.dictionaries(st.text(max_size=8), st.one_of(texts, numbers), max_size=3),
    ),
    max_size=6,
)
anything = st.recursive(
    st.one_of(st.none(), st.booleans(), integers, floats, texts),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=10,
)
"""Any JSON value: what an HTTP caller can send for any parameter."""


def model_names(tiny: tuple[Path, Path]) -> st.SearchStrategy[Any]:
    """A tiny model mostly (so the other parameters are reached), else names no loader knows."""
    folders = st.sampled_from([str(folder) for folder in tiny])
    return st.one_of(folders, folders, st.just(""),
                     st.sampled_from(["no/such-model", "..", "/", "x.gguf", f"{tiny[0]}/config.json", " "]),
                     st.text(characters, max_size=20))


def typed(parameter: dict[str, Any], tiny: tuple[Path, Path]) -> st.SearchStrategy[Any]:
    """Values of the parameter's declared type (as the API page gives it), nasty ones included."""
    name, kind = parameter["parameter_name"], parameter.get("python_type", {}).get("type", "")
    if name in ("model", "other") and kind == "str":
        return model_names(tiny)
    if "list[int]" in kind:
        return id_lists
    if "list[str]" in kind:
        return string_lists
    if "list[dict" in kind:
        return messages
    return {"str": texts, "int": integers, "float": numbers, "bool": st.booleans()}.get(kind, anything)


@st.composite
def calls(draw: st.DrawFn, api_name: str, tiny: tuple[Path, Path]) -> dict[str, Any]:
    """Keyword arguments for one call: the required parameters and the model always (both tiny models, so the
    chat template's checks are reached too), and up to four others changed from their defaults (so that a bad
    value is often alone and the checks behind the first one are reached)."""
    parameters = endpoints()[api_name]["parameters"]
    optional = [p["parameter_name"] for p in parameters if p["parameter_has_default"]]
    changed = draw(st.sets(st.sampled_from(optional), max_size=4)) if optional else set()
    arguments = {}
    for parameter in parameters:
        name = parameter["parameter_name"]
        if name in ("model", "other") and name not in changed:
            arguments[name] = draw(model_names(tiny))
        elif name in changed or not parameter["parameter_has_default"]:
            arguments[name] = draw(st.one_of(typed(parameter, tiny), typed(parameter, tiny), anything))
    if "max_new_tokens" in arguments and isinstance(arguments["max_new_tokens"], int):
        arguments["max_new_tokens"] = min(arguments["max_new_tokens"], 64)  # bounded work, not a weaker check
    return arguments


# --- what every answer has to be ------------------------------------------------------------------------


_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict, _REPR.maxlevel = 60, 60, 8, 8, 4


def _short(arguments: dict[str, Any]) -> str:
    """The arguments for a failure's message, long values shortened (the full example is printed anyway)."""
    return _REPR.repr(arguments)


def check_message(api_name: str, text: str, arguments: dict[str, Any]) -> None:
    """A refusal names one of the endpoint's parameters, or is about the whole input or the model; it is short."""
    from ui.errors import MAX_MESSAGE

    names = [p["parameter_name"] for p in endpoints()[api_name]["parameters"]]
    # `settings[0]` names `settings`
    named = any(f"`{name}`" in text or f"`{name}[" in text for name in names) or ITEM_FIELD.search(text)
    assert named or any(part in text for part in WHOLE_INPUT), (
        f"{api_name} {_short(arguments)}: the message {text[:300]!r} names none of {names}")
    assert len(text) <= MAX_MESSAGE + 40, (
        f"{api_name} {_short(arguments)}: a {len(text)}-character message: {text[:300]!r}")


def call_in_process(api_name: str, arguments: dict[str, Any]) -> str | None:
    """Call the endpoint's function as the server does; None for an answer, else the checked message."""
    import gradio as gr

    from stepgen.loading import ModelLoadError

    fn = endpoints()[api_name]["fn"]
    try:
        answer = fn(**arguments)
        if inspect.isgenerator(answer):
            answer = list(answer)[-1]
    except gr.Error as error:
        assert isinstance(error.__cause__, ValueError), (
            f"{api_name} {_short(arguments)}: gr.Error not from a ValueError: {error.__cause__!r}")
        if not isinstance(error.__cause__, ModelLoadError):  # a model name the loader refuses: it says which
            check_message(api_name, error.message, arguments)
        return error.message
    except Exception as error:  # noqa: BLE001 - anything else is a defect: the caller gets no useful answer
        raise AssertionError(f"{api_name} {_short(arguments)} raised {type(error).__name__}: {error}") from error
    try:
        json.dumps(answer)
    except (TypeError, ValueError) as error:
        raise AssertionError(f"{api_name} {_short(arguments)}: the answer is not JSON: {error}") from error
    return None


def _healthy(tiny_dir: Path) -> None:
    from ui.tokenizer_tab import tokenize_text

    assert tokenize_text("still serving", str(tiny_dir))["count"] > 0, "the app stopped answering"


# --- the tests ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_default(tiny_gpt2_dir: Path, tiny_llama_dir: Path) -> tuple[Path, Path]:
    """The tiny GPT-2 as the default model (as the live server of tests/conftest.py also has it), and the
    tiny Llama (it has a chat template); both loaded once, before any deadline counts."""
    os.environ["STEPGEN_MODEL"] = str(tiny_gpt2_dir)
    _healthy(tiny_gpt2_dir)
    _healthy(tiny_llama_dir)
    return tiny_gpt2_dir, tiny_llama_dir


def test_every_endpoint_is_driven() -> None:
    """The endpoints come from the app, so none is skipped; a handful is known and must be among them."""
    found = set(endpoints())
    for name in ("/tokenize", "/detokenize", "/next_token", "/step", "/generate", "/score", "/load_model"):
        assert name in found, f"{name} is missing from the app's API description: {sorted(found)}"


@pytest.mark.parametrize("api_name", sorted(endpoints()))
def test_any_input_gets_an_answer_or_a_message_naming_the_argument(api_name: str,
                                                                  tiny_default: tuple[Path, Path]) -> None:
    @PROFILE
    @given(arguments=calls(api_name, tiny_default))
    def run(arguments: dict[str, Any]) -> None:
        call_in_process(api_name, arguments)
        _healthy(tiny_default[0])

    run()


HANG = 120
"""Seconds a live call may take before it counts as a hang (a guard against blocking the suite, not a speed test)."""


def _call_client(client: Any, api_name: str, arguments: dict[str, Any]) -> str | None:
    from gradio_client.exceptions import AppError

    job = client.submit(api_name=api_name, **arguments)
    try:
        job.result(timeout=HANG)
    except AppError as error:
        return str(error)
    return None


def _call_http(app_url: str, api_name: str, arguments: dict[str, Any]) -> str | None:
    """The call as any HTTP client can make it: JSON with NaN, ±inf and escaped lone surrogates, which
    gradio_client cannot send (it encodes strict, UTF-8 JSON)."""
    import httpx

    route = f"{app_url}/gradio_api/call/v2{api_name}"
    posted = httpx.post(route, content=json.dumps(arguments), headers={"content-type": "application/json"},
                        timeout=HANG)
    assert posted.status_code == 200, f"{api_name} {_short(arguments)}: HTTP {posted.status_code}"
    event = None
    with httpx.stream("GET", f"{route}/{posted.json()['event_id']}", timeout=HANG) as answer:
        for line in answer.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event in ("complete", "error"):
                data = json.loads(line.removeprefix("data: "))
                return None if event == "complete" else data["error"]
    raise AssertionError(f"{api_name} {_short(arguments)}: the stream ended without an answer (last {event!r})")


def _client_can_send(arguments: dict[str, Any]) -> bool:
    try:
        json.dumps(arguments, allow_nan=False, ensure_ascii=False).encode()
    except (ValueError, UnicodeEncodeError):
        return False
    return True


@pytest.mark.parametrize("api_name", sorted(endpoints()))
def test_a_live_server_answers_after_any_input(api_name: str, app_url: str, client: Any,
                                               tiny_default: tuple[Path, Path]) -> None:
    """Through HTTP and JSON the same input gets the same answer or message as in this process, and the server
    answers a health request after it."""

    @LIVE
    @given(arguments=calls(api_name, tiny_default))
    def run(arguments: dict[str, Any]) -> None:
        expected = call_in_process(api_name, arguments)
        if _client_can_send(arguments):
            got = _call_client(client, api_name, arguments)
        else:
            got = _call_http(app_url, api_name, arguments)
        assert (got is None) == (expected is None) and (expected is None or expected in got), (
            f"{api_name} {_short(arguments)}: in this process {expected!r}, through the server {got!r}")
        assert client.predict(text="still serving", api_name="/tokenize")["count"] > 0, (
            f"the server stopped answering after {api_name} {_short(arguments)}")

    run()
