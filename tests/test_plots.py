"""The figures and tables show exactly the distribution's numbers, marked as the tab promises."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch

from stepgen.distribution import Candidate, Distribution, from_logits
from stepgen.plots import (
    CANDIDATE_HEADERS,
    CUT_COLOR,
    PIPELINE_HEADERS,
    RAW_COLOR,
    candidate_rows,
    distribution_figure,
    SLANT,
    SLANTS,
    inner_ticks,
    other_label,
    pipeline_figure,
    pipeline_rows,
    slanted_height,
    text_width,
    token_labels,
)
from stepgen.settings import DecodingSettings
from ui.chart import Chart


def _dist(tiny_gpt2: object, settings: DecodingSettings, *, logits: torch.Tensor | None = None,
          top_n: int = 8) -> Distribution:
    generator = torch.Generator().manual_seed(0)
    if logits is None:
        logits = torch.randn(tiny_gpt2.vocab_size, generator=generator) * 3
    return from_logits(SimpleNamespace(tokenizer=tiny_gpt2.tokenizer), [5, 6, 7], logits, settings, top_n=top_n)


def _browser_json(fig: object) -> dict:
    """The figure as the browser's JSON.parse reads it: NaN and Infinity are not JSON, and it refuses them."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"the figure's JSON holds {constant}, which the browser cannot parse")

    return json.loads(Chart().postprocess(fig), parse_constant=refuse)


def _candidate(token_id: int, text: str) -> Candidate:
    return Candidate(id=token_id, text=text, logit=0.0, prob=0.1, logprob=-2.3, rank=token_id, final_prob=0.1)


def test_the_room_below_the_bars_fits_the_widest_label_slanted(tiny_gpt2: object) -> None:
    # plotly slants colliding labels, SLANT degrees at most, at the width it draws (a phone's or a desktop's), no more
    dist = _dist(tiny_gpt2, DecodingSettings(top_k=3))
    fig = distribution_figure(dist)
    axis = fig.layout.xaxis
    assert axis.tickangle is None and list(axis.autotickangles) == list(SLANTS), "plotly picks the angle"
    assert max(abs(angle) for angle in SLANTS) == SLANT
    assert not axis.automargin and not fig.layout.yaxis.automargin, "margins are given, not measured at each draw"
    assert fig.layout.margin.b == slanted_height([*token_labels(dist.candidates), other_label(dist)])
    assert slanted_height(["·a", "(other 49,142)"]) > slanted_height(["·a", "·b"])
    widest = text_width("(other 49,142)")
    assert slanted_height(["(other 49,142)"]) >= widest * math.sin(math.radians(SLANT)) + 10
    assert text_width("語") == 13 and text_width("語a") > 13, "a wide character takes the font's size"


def test_the_pipeline_leaves_room_for_its_widest_label(tiny_gpt2: object) -> None:
    dist = _dist(tiny_gpt2, DecodingSettings(top_k=3))
    fig = pipeline_figure(dist)
    assert not fig.layout.yaxis.automargin
    assert fig.layout.margin.l >= max(text_width(label) for label in token_labels(dist.candidates))


def test_token_labels_are_unique_and_show_whitespace() -> None:
    labels = token_labels([_candidate(1, " a"), _candidate(2, "a"), _candidate(3, "\n"), _candidate(4, " a"),
                           _candidate(5, "")])
    assert labels == ["·a #1", "a", "↵", "·a #4", "∅"], labels
    assert len(set(labels)) == len(labels), "plotly merges equal category labels"


@pytest.mark.parametrize(
    "settings",
    [DecodingSettings(), DecodingSettings(temperature=0.6, top_k=5, top_p=0.8), DecodingSettings(temperature=0)],
    ids=["raw", "cut", "greedy"],
)
def test_bar_chart_shows_raw_and_final_with_cuts_greyed(tiny_gpt2: object, settings: DecodingSettings) -> None:
    dist = _dist(tiny_gpt2, settings)
    fig = distribution_figure(dist)
    raw, final = fig.data
    labels = token_labels(dist.candidates)
    assert list(raw.x) == labels + [f"(other {dist.vocab_size - len(dist.candidates):,})"], raw.x
    assert list(raw.y) == [c.prob for c in dist.candidates] + [dist.other_mass], "raw bars are the raw probs"
    assert list(final.y) == [c.final_prob for c in dist.candidates] + [dist.final_other_mass], "final bars"
    colors = list(raw.marker.color)[:-1]
    for c, color in zip(dist.candidates, colors):
        assert color == (CUT_COLOR if c.removed else RAW_COLOR), f"{c} is drawn {color}"
    assert any(c.removed for c in dist.candidates) == (settings != DecodingSettings()), "cuts only when set"
    hover = raw.customdata[0]
    first = dist.candidates[0]
    assert list(hover[:4]) == [first.id, first.logit, first.logprob, first.rank], hover
    assert all(word in raw.hovertemplate[0] for word in ("logit", "log-prob", "rank")), raw.hovertemplate
    assert "logit" not in raw.hovertemplate[-1], f"the rest of the vocabulary has no logit: {raw.hovertemplate[-1]}"
    missing = [row for row in raw.customdata if any(isinstance(v, float) and math.isnan(v) for v in row)]
    assert not missing, f"NaN hover data reaches the browser as null, under a number format: {missing}"
    greedy = [a for a in fig.layout.annotations if a.text == "greedy"]
    assert len(greedy) == 1 and greedy[0].x == labels[[c.id for c in dist.candidates].index(dist.greedy_id)], greedy
    _browser_json(fig)  # what a chart sends to the browser


def test_a_long_tail_bar_is_cut_off_and_labelled(tiny_gpt2: object) -> None:
    flat = _dist(tiny_gpt2, DecodingSettings(), logits=torch.linspace(0, 0.5, tiny_gpt2.vocab_size))
    fig = distribution_figure(flat)
    assert flat.other_mass > 0.9, flat.other_mass
    top = max(c.prob for c in flat.candidates)
    assert fig.layout.yaxis.range[1] < flat.other_mass and fig.layout.yaxis.range[1] >= top, fig.layout.yaxis.range
    _browser_json(fig)
    note = [a for a in fig.layout.annotations if a.name == "other"]
    assert note and "bar cut off" in note[0].text and f"{flat.other_mass:.0%}" in note[0].text, note

    peaked = torch.full((tiny_gpt2.vocab_size,), -10.0)
    peaked[3] = 10.0
    fig = distribution_figure(_dist(tiny_gpt2, DecodingSettings(), logits=peaked))
    assert fig.layout.yaxis.range is None, "nothing to cut off when the top bar is the tallest"


def test_pipeline_has_one_panel_per_processor_in_order(tiny_gpt2: object) -> None:
    settings = DecodingSettings(temperature=0.6, top_k=5, top_p=0.8, repetition_penalty=1.3)
    dist = _dist(tiny_gpt2, settings)
    fig = pipeline_figure(dist)
    bars = [trace for trace in fig.data if trace.type == "bar"]
    titles = [a.text for a in fig.layout.annotations]
    assert len(bars) == 1 + len(dist.stages) == len(titles), (len(bars), titles)
    names = [t.split(" · ")[0] for t in titles]
    assert names == ["raw softmax", "repetition_penalty", "temperature", "top_k", "top_p"], titles
    assert titles[3].startswith("top_k · 5 left"), titles[3]
    assert list(bars[0].x) == [c.prob for c in dist.candidates], "the first panel shows the raw probs"
    for bar, stage in zip(bars[1:], dist.stages):
        assert tuple(bar.x) == stage.shown, f"panel {stage.name} shows other numbers"
    marks = [trace for trace in fig.data if trace.type == "scatter"]
    assert sum(len(m.y) for m in marks) >= sum(1 for c in dist.candidates if c.removed), "every cut is marked"
    _browser_json(fig)


def test_pipeline_labels_every_row_and_no_panel_edge(tiny_gpt2: object) -> None:
    """Every candidate row is labelled in every panel (a new winner always has its name), and no x label sits at
    a panel's edge, where it would run into the neighbouring panel's."""
    fig = pipeline_figure(_dist(tiny_gpt2, DecodingSettings(temperature=0.6, top_k=5), top_n=12))
    layout = fig.to_plotly_json()["layout"]
    for name in (key for key in layout if key.startswith("yaxis")):
        assert layout[name].get("dtick") == 1, f"{name} may skip row labels: {layout[name]}"
    for name in (key for key in layout if key.startswith("xaxis")):
        low, high = layout[name]["range"]
        ticks = layout[name]["tickvals"]
        assert ticks and all(low < tick < 0.9 * high for tick in ticks), f"{name}: a label at an edge: {ticks}"
    for top in (0.011, 0.05, 0.33, 0.97, 1.0):
        ticks = inner_ticks(top)
        assert 1 <= len(ticks) <= 3 and all(0 < tick < top for tick in ticks), f"ticks for {top}: {ticks}"


def test_greedy_pipeline_ends_with_the_pick(tiny_gpt2: object) -> None:
    dist = _dist(tiny_gpt2, DecodingSettings(temperature=0))
    titles = [a.text for a in pipeline_figure(dist).layout.annotations]
    assert titles[-1].startswith("greedy pick"), titles
    rows = pipeline_rows(dist)
    assert rows[-1][0].startswith("greedy") and rows[-1][2] == 1, rows[-1]


def test_tables_match_their_headers_and_numbers(tiny_gpt2: object) -> None:
    dist = _dist(tiny_gpt2, DecodingSettings(top_k=3))
    rows = candidate_rows(dist)
    assert all(len(row) == len(CANDIDATE_HEADERS) for row in rows), rows
    assert [row[2] for row in rows[:-1]] == [c.id for c in dist.candidates], "ids in candidate order"
    assert [row[-1] for row in rows[:-1]] == ["" if not c.removed else "cut by top_k" for c in dist.candidates], rows
    pipeline = pipeline_rows(dist)
    assert all(len(row) == len(PIPELINE_HEADERS) for row in pipeline), pipeline
    assert pipeline[1][:3] == ["top_k", "TopKLogitsWarper", 3], pipeline[1]
