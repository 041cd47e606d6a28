"""Scoring a text: the model's probability for each token given the ones before it, equal to a plain forward pass."""

from __future__ import annotations

import math

import pytest
import torch

from stepgen import scoring

TEXT = "It was a dark and stormy night; the rain fell in torrents, except at occasional intervals."


@pytest.mark.parametrize("chunk", [3, 256])
def test_every_probability_equals_a_plain_forward_pass(tiny: object, chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether the text goes through in one pass or in chunks that carry the cache, each number is the softmax of
    the row of a single plain forward pass that predicts the token."""
    monkeypatch.setattr(scoring, "CHUNK", chunk)
    ids = tiny.tokenizer(TEXT)["input_ids"]
    result = scoring.score(tiny, ids)
    with torch.no_grad():
        logp = torch.log_softmax(tiny.model(torch.tensor([ids])).logits[0].float(), dim=-1)
    assert [token.id for token in result.tokens] == ids, "the scored tokens are not the text's"
    assert result.tokens[0].prob is None and len(result.scored) == len(ids) - 1, "only the first token is unscored"
    for token in result.scored:
        row = logp[token.position - 1]
        assert abs(token.logprob - float(row[token.id])) < 1e-5, f"token {token.position}: {token.logprob} vs forward"
        assert token.rank == int((row > row[token.id]).sum()) + 1, f"token {token.position}: rank {token.rank}"
        assert token.expected_id == int(row.argmax()), f"token {token.position}: expected {token.expected_id}"
        entropy = float(-(row.exp() * row).sum()) / math.log(2)
        assert abs(token.entropy - entropy) < 1e-4, f"token {token.position}: entropy {token.entropy} vs {entropy}"
    mean = sum(float(logp[t.position - 1, t.id]) for t in result.scored) / len(result.scored)
    assert abs(result.perplexity - math.exp(-mean)) < 1e-3 * result.perplexity, (result.perplexity, math.exp(-mean))


def test_a_single_token_has_nothing_to_score(tiny_gpt2: object) -> None:
    result = scoring.score(tiny_gpt2, [42])
    assert result.perplexity is None and not result.scored, result
    assert result.to_dict()["logprob"] is None, "an empty sum is no log-probability"


def test_too_long_or_bad_texts_are_refused_by_name(tiny_gpt2: object) -> None:
    with pytest.raises(ValueError, match="`token_ids` has to hold at most"):
        scoring.score(tiny_gpt2, [1] * (scoring.MAX_SCORED + 1))
    with pytest.raises(ValueError, match="`token_ids` has to hold ids from 0"):
        scoring.score(tiny_gpt2, [1, 10**9])


@pytest.mark.slow
def test_the_embedded_model_expects_paris(embedded: object) -> None:
    ids = embedded.tokenizer("The capital of France is Paris")["input_ids"]
    paris = scoring.score(embedded, ids).tokens[-1]
    assert paris.text == " Paris" and paris.rank == 1 and paris.prob > 0.5, paris
    banana = scoring.score(embedded, embedded.tokenizer("The capital of France is banana")["input_ids"]).tokens[-1]
    assert banana.prob < paris.prob / 100 and banana.expected_text == " Paris", banana
