"""The "Use via API" page explains itself: every parameter of every endpoint says what it means, its type and its
default, every return says what it holds (the page and ``gradio_client``'s ``view_api`` read ``get_api_info()``)."""

from __future__ import annotations

import re

import pytest

import app
from stepgen.knobs import KNOBS
from ui.endpoints import docstring_sections

GENERIC = re.compile(r"^$|^(Any|None|\d+(st|nd|rd|th))$|input value that is provided")


@pytest.fixture(scope="module")
def api_info() -> dict:
    return app.build_demo().get_api_info()


def test_every_parameter_has_a_name_a_meaning_and_a_plain_type(api_info: dict) -> None:
    endpoints = api_info["named_endpoints"]
    assert {"/next_token", "/step", "/generate", "/tokenize", "/models"} <= set(endpoints), sorted(endpoints)
    for name, endpoint in endpoints.items():
        assert not GENERIC.search(endpoint["description"]), f"{name} has no description"
        assert "Returns" not in endpoint["description"], f"{name}'s description runs into its return: " \
                                                        f"{endpoint['description']!r}"
        for parameter in endpoint["parameters"]:
            where = f"{name} {parameter['parameter_name']}"
            description = parameter["python_type"]["description"]
            assert len(description) > 15 and not GENERIC.search(description), f"{where}: {description!r}"
            assert parameter["label"] == parameter["parameter_name"], f"{where} is labelled {parameter['label']!r}"
            assert "None" not in parameter["python_type"]["type"], \
                f"{where} has the type {parameter['python_type']['type']!r} (the page adds '| None' itself)"


def test_every_return_is_described(api_info: dict) -> None:
    for name, endpoint in api_info["named_endpoints"].items():
        assert endpoint["returns"], f"{name} returns nothing"
        for answer in endpoint["returns"]:
            assert answer["python_type"]["type"].startswith("dict"), f"{name} returns {answer['python_type']}"
            assert len(answer["label"]) > 20 and not GENERIC.search(answer["label"]), \
                f"{name}'s return is described as {answer['label']!r}"
            assert answer["python_type"]["description"] == answer["label"], f"{name}: two descriptions differ"


def test_knob_parameters_carry_the_tables_range_and_default_and_are_optional(api_info: dict) -> None:
    by_name = {knob.name: knob for knob in KNOBS}
    for name, endpoint in api_info["named_endpoints"].items():
        for parameter in endpoint["parameters"]:
            spec = by_name.get(parameter["parameter_name"])
            if spec is None:
                continue
            where = f"{name} {spec.name}"
            assert parameter["parameter_has_default"], f"{where} has a default but is marked required"
            if spec.name != "seed" or name == "/generate":  # /next_token and /step say what their seed seeds
                description = parameter["python_type"]["description"]
                assert spec.doc() in description, f"{where} lacks the table's line: {description!r}"


def test_the_seed_means_the_same_on_every_endpoint_that_takes_one(api_info: dict) -> None:
    seeds = {name: parameter for name, endpoint in api_info["named_endpoints"].items()
             for parameter in endpoint["parameters"] if parameter["parameter_name"] == "seed"}
    assert {"/next_token", "/step", "/generate"} <= set(seeds), sorted(seeds)
    for name, seed in seeds.items():
        assert seed["parameter_default"] == -1, f"{name}'s seed defaults to {seed['parameter_default']!r}"
        assert "-1" in seed["python_type"]["description"], f"{name}: {seed['python_type']['description']!r}"


def test_step_lists_its_strategies(api_info: dict) -> None:
    strategy = next(p for p in api_info["named_endpoints"]["/step"]["parameters"]
                    if p["parameter_name"] == "strategy")
    for value in ("greedy", "sample", "uniform", "token"):
        assert f'"{value}"' in strategy["python_type"]["description"], f"strategy does not name {value}"


def test_docstring_sections_join_continuation_lines_and_stop_at_returns() -> None:
    description, params, returns = docstring_sections('''What it does.

    Parameters:
        a: first line
            and its continuation: with a colon.
        b: the other.

    Returns {"x"}: the answer.
    ''')
    assert description == "What it does.", description
    assert params == {"a": "first line and its continuation: with a colon.", "b": "the other."}, params
    assert returns == '{"x"}: the answer.', returns
