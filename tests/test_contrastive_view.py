"""The contrastive-search view: every token's candidates with their numbers, the overruled ones marked."""

from __future__ import annotations

import re

import gradio as gr
import pytest

from stepgen.generation import generate
from stepgen.request import GenerationRequest
from stepgen.results import TokenInfo
from stepgen.contrastive import ContrastiveCandidate
from ui import playground_tab
from ui.contrastive_view import contrastive_html

REPEATED = "Studying AI is fun, and studying AI is fun, and studying AI is"


def test_each_token_shows_its_candidates_numbers_and_where_the_penalty_overruled(tiny_llama: object) -> None:
    request = GenerationRequest.from_dict({"penalty_alpha": 0.9, "top_k": 6, "max_new_tokens": 10})
    result = generate(tiny_llama, REPEATED, request)
    tokens = result.sequences[0].tokens
    page = contrastive_html(tokens, request.penalty_alpha)
    rows = re.findall(r'<tr class="cs-row( cs-overruled)?" data-token="(\d+)">(.*?)</tr>', page, re.S)
    assert len(rows) == len(tokens), f"{len(rows)} rows for {len(tokens)} tokens"
    overruled = [token.overruled for token in tokens]
    assert any(overruled), "this run should have a token the penalty overruled"
    assert [bool(mark) for mark, _, _ in rows] == overruled, "the rows marked overruled are not the overruled tokens"
    for (_, index, row), token in zip(rows, tokens):
        cells = re.findall(r'<td class="cs-cand([^"]*)" data-id="(\d+)" data-prob="([^"]+)" '
                           r'data-penalty="([^"]+)" data-score="([^"]+)"', row)
        assert [int(c[1]) for c in cells] == [c.id for c in token.candidates], f"token {index}: candidates differ"
        for (classes, _, prob, penalty, score), candidate in zip(cells, token.candidates):
            assert (float(prob), float(penalty), float(score)) == (candidate.prob, candidate.penalty,
                                                                   candidate.score), f"token {index}: numbers differ"
            assert ("cs-taken" in classes) == (candidate.id == token.id), f"token {index}: the taken mark is wrong"
        assert ("cs-passed" in cells[0][0]) == token.overruled, f"token {index}: the passed-over likeliest mark"
    assert f"{sum(overruled)} of them" in page, "the summary does not count the overruled tokens"


def test_texts_are_escaped_and_a_run_without_candidates_draws_nothing() -> None:
    evil = "<img src=x onerror=alert(1)>"
    candidate = ContrastiveCandidate(id=1, text=evil, prob=0.5, penalty=0.2, score=0.1)
    token = TokenInfo(1, evil, 0.5, 0.5, 1, 1.0, 1.0, -0.69, candidates=(candidate,))
    page = contrastive_html([token], 0.6)
    assert "<img" not in page and "&lt;img" in page, "a candidate's text reached the page unescaped"
    plain = TokenInfo(1, "a", 0.5, 0.5, 1, 1.0, 1.0, -0.69)
    assert contrastive_html([plain], 0.6) == "" and contrastive_html([], 0.6) == "", "no candidates drew a view"


def _knobs(**changes: object) -> dict[str, object]:
    knobs = {**GenerationRequest().to_dict(), "bad_words": "", "stop_strings": "", "seed": "", **changes}
    return {name: knobs[name] for name in playground_tab.KNOBS}


def test_the_playground_shows_the_candidates_of_a_contrastive_run(tiny_gpt2: object) -> None:
    run = playground_tab._run(None, model=tiny_gpt2.name, prompt="It was a dark and",
                              **_knobs(penalty_alpha=0.6, top_k=4, max_new_tokens=6))
    output = [update for update in run][-1][1]
    assert output.count('class="cs-row') == 6 and 'class="cs-view"' in output, "the playground shows no candidates"
    greedy = [update for update in playground_tab._run(None, model=tiny_gpt2.name, prompt="It was a dark and",
                                                       **_knobs(max_new_tokens=3))][-1][1]
    assert "cs-view" not in greedy, "a greedy run shows contrastive candidates"


@pytest.mark.parametrize(("changes", "message"), [
    ({"penalty_alpha": 1.5, "top_k": 4}, "`penalty_alpha` has to be a float >= 0 and <= 1, but is 1.5"),
    ({"penalty_alpha": -0.2, "top_k": 4}, "`penalty_alpha` has to be a float >= 0 and <= 1, but is -0.2"),
    ({"penalty_alpha": 0.6, "top_k": 0}, "`top_k` has to be an integer from 2 to 1000 when `penalty_alpha` > 0"),
    ({"penalty_alpha": 0.6, "top_k": 1}, "`top_k` has to be an integer from 2 to 1000 when `penalty_alpha` > 0"),
])
def test_the_playground_refuses_bad_contrastive_knobs_by_name(tiny_gpt2: object, changes: dict,
                                                             message: str) -> None:
    run = playground_tab._run(None, model=tiny_gpt2.name, prompt="It was", **_knobs(**changes))
    with pytest.raises(gr.Error) as refused:
        next(run)
    assert message in str(refused.value), f"the playground says {refused.value!s}, want {message!r}"
