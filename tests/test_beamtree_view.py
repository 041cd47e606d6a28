"""The beam-tree view: every step a column, the returned paths outlined, every text escaped."""

from __future__ import annotations

import re

from stepgen.beamtree import BeamNode, BeamStep, Candidate, FinishedHypothesis
from stepgen.generation import generate
from stepgen.request import GenerationRequest
from test_generation import PROMPT
from ui.beamtree_view import beam_tree_html


def test_columns_paths_and_finished_of_a_real_search(tiny_gpt2: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 10, "num_beams": 4, "num_return_sequences": 2})
    result = generate(tiny_gpt2, PROMPT, request)
    page = beam_tree_html(result.beam_tree)
    head = re.search(r"<thead>(.*?)</thead>", page).group(1)
    assert head.count("<th>") == len(result.beam_tree), f"{head.count('<th>')} columns for {len(result.beam_tree)} steps"
    assert page.count('class="bt-returned"') == 2, "the two returned sequences are not both numbered"
    on_path = page.count("bt-beam bt-path")
    assert 9 <= on_path <= 2 * 9, f"{on_path} outlined beams for two 10-token paths"
    assert "<details" in page and "bt-pruned" in page, "no fold or no pruned candidate"
    assert beam_tree_html(None) == "" and beam_tree_html(()) == "", "a run without a tree draws something"


def test_every_text_is_escaped() -> None:
    evil = "<img src=x onerror=alert(1)>"
    step = BeamStep(
        step=0, beams=(BeamNode(beam=0, parent=0, token_id=1, text=evil, logprob=-0.1, score=-0.1),),
        candidates=(Candidate(parent=0, token_id=1, text=evil, logprob=-0.1, score=-0.1, status="survived", beam=0),
                    Candidate(parent=0, token_id=2, text=evil, logprob=float("-inf"), score=float("-inf"),
                              status="pruned")),
        finished=(FinishedHypothesis(parent=0, token_id=3, text=evil, logprob=-1.0, token_ids=(3,), sum_logprob=-1.0,
                                     score=-1.0, reason="eos", returned=0),),
    )
    page = beam_tree_html([step, BeamStep(step=1, beams=(), candidates=(), finished=())])
    assert "<img" not in page, "a token's text reached the page unescaped"
    assert page.count("&lt;img") >= 4, "a token's text is missing from the page"


def test_the_final_scores_shown_are_generates_sequences_scores(tiny_gpt2: object) -> None:
    request = GenerationRequest.from_dict({"max_new_tokens": 8, "num_beams": 4, "num_return_sequences": 3,
                                           "length_penalty": 0.5})
    result = generate(tiny_gpt2, PROMPT, request)
    page = beam_tree_html(result.beam_tree, PROMPT, result.model)
    shown = {int(row): (float(score), text) for score, row, text in re.findall(
        r'<div class="bt-end" data-score="([^"]+)" data-returned="(\d+)">.*?<span class="bt-score">([^<]+)</span>',
        page, re.S)}
    assert sorted(shown) == list(range(3)), f"returned sequences shown: {sorted(shown)}"
    for row, sequence in enumerate(result.sequences):
        score, text = shown[row]
        assert abs(score - sequence.beam_score) < 1e-5 and text == f"{sequence.beam_score:.3f}", (
            f"sequence {row + 1}: the tree shows {text} ({score}), sequences_scores is {sequence.beam_score}")
