"""Plotly figures (and their companion tables) for a next-token distribution.

* :func:`distribution_figure`: the top-N tokens as bars, the model's raw
  probability next to the final one (after every setting), tokens a setting
  cut greyed out and still visible, a bar for the mass outside the top N, the
  greedy choice marked, logit / log-probability / rank on hover;
* :func:`draws_figure`: how often each token came out of many draws, next to
  the probability it was drawn with;
* :func:`pipeline_figure`: small multiples, the same tokens after each logits
  processor in ``generate()``'s order, titled with survivors and mass removed;
* :func:`candidate_rows` / :func:`pipeline_rows`: the same numbers as table rows.

Figures are built from a :class:`~stepgen.distribution.Distribution` (and, for
draws, the counts of :func:`stepgen.stepping.draw`): this module computes nothing
from a model and knows nothing about Gradio. Colours
are colour-blind safe (blue and orange, cividis for magnitudes) and the
backgrounds transparent, so the figures read in light and dark mode.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from stepgen.distribution import Candidate, Distribution
from stepgen.explain import percent
from stepgen.tokens import visible

if TYPE_CHECKING:
    from stepgen.stepping import Draws

RAW_COLOR = "#4c72b0"
FINAL_COLOR = "#e69f00"
CUT_COLOR = "rgba(150, 150, 150, 0.45)"
OTHER_COLOR = "rgba(150, 150, 150, 0.8)"
GRID_COLOR = "rgba(128, 128, 128, 0.25)"
FONT = {"family": "ui-sans-serif, system-ui, sans-serif", "size": 13, "color": "#506784"}
PANELS_PER_ROW = 4
CLIP_OTHER = 1.6
"""The bar of the mass outside the top N is cut off when it is this many times taller than the top bar."""

CANDIDATE_HEADERS = ["rank", "token", "id", "logit", "log-prob", "probability", "after settings", "cut by"]
PIPELINE_HEADERS = ["step", "transformers class", "tokens left", "mass removed", "mass moved", "entropy (bits)",
                    "most likely"]


def token_labels(candidates: Sequence[Candidate]) -> list[str]:
    """One unique, readable axis label per token (whitespace made visible, the id added on a clash)."""
    labels = [visible(c.text) or "∅" for c in candidates]
    seen: dict[str, int] = {}
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
    return [f"{label} #{c.id}" if seen[label] > 1 else label for label, c in zip(labels, candidates)]


def other_label(dist: Distribution) -> str:
    return f"(other {dist.vocab_size - len(dist.candidates):,})"


def cut_reason(candidate: Candidate) -> str:
    if candidate.removed_by == "greedy":
        return "not the greedy choice (temperature 0)"
    if candidate.removed_by:
        return f"cut by {candidate.removed_by}"
    return "too unlikely to be drawn" if candidate.removed else ""


def text_width(text: str, size: float = FONT["size"]) -> float:
    """About how many pixels ``text`` takes in the charts' font at ``size``: a wide (East Asian) character or
    an emoji as much as the size, any other about 0.58 of it (a sans-serif's average, rounded up)."""
    return sum(size if unicodedata.east_asian_width(ch) in "WF" else 0.58 * size for ch in text)


SLANTS = (0, -35, -60)
"""The angles plotly may give category labels, the first that keeps them apart at the width it draws: level on
a wide chart, slanted on a narrow one, steeper on a phone's (parallel labels a line apart)."""
SLANT = 60
"""The steepest of :data:`SLANTS`, in degrees: the room below a chart is for it."""


def slanted_height(labels: Sequence[str]) -> int:
    """The pixels below a chart that its category labels need when slanted by :data:`SLANT` (their room is
    set here: letting plotly measure it at every draw costs half a chart's time)."""
    widest = max((text_width(label) for label in labels), default=0.0)
    angle = math.radians(SLANT)
    return math.ceil(widest * math.sin(angle) + FONT["size"] * math.cos(angle)) + 10


def _base_layout(fig: go.Figure, height: int, margin: dict[str, int]) -> None:
    """Size, margins, font and axes of every figure here. No plotly template (the browser applies plotly's
    default one, some 7 kB of styles for every kind of chart, at every draw: a third of a chart's time) and
    margins given, not measured (plotly's ``automargin`` measures every label and lays the chart out again:
    half of what remains)."""
    fig.update_layout(
        template="none",
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10, **margin},
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        font=FONT,
        hoverlabel={"font": {"family": FONT["family"]}},
    )
    for axes in (fig.update_xaxes, fig.update_yaxes):  # what the default template gave and these charts need
        axes(automargin=False, gridcolor=GRID_COLOR, zerolinecolor=GRID_COLOR, linecolor=GRID_COLOR)


def distribution_figure(dist: Distribution, *, height: int = 380) -> go.Figure:
    """Raw and final probability of each candidate, cut tokens greyed, the rest of the vocabulary as one bar."""
    labels = token_labels(dist.candidates) + [other_label(dist)]
    cut = [c.removed for c in dist.candidates]
    # the rest of the vocabulary has no id, logit or rank: its own template, and no NaN (JSON has none)
    hover = [
        [c.id, c.logit, c.logprob, c.rank, c.prob, c.final_prob, cut_reason(c) or "kept"] for c in dist.candidates
    ] + [["", "", "", "", dist.other_mass, dist.final_other_mass, "the rest of the vocabulary"]]
    probabilities = ("model %{customdata[4]:.2%} → after settings %{customdata[5]:.2%}<br>"
                     "%{customdata[6]}<extra></extra>")
    template = [
        "<b>%{x}</b> · id %{customdata[0]} · rank %{customdata[3]}<br>"
        "logit %{customdata[1]:.3f} · log-prob %{customdata[2]:.3f}<br>" + probabilities
    ] * len(dist.candidates) + ["<b>%{x}</b><br>" + probabilities]
    fig = go.Figure()
    fig.add_bar(
        name="model (raw softmax)",
        x=labels,
        y=[c.prob for c in dist.candidates] + [dist.other_mass],
        # plain fills: a hatch pattern costs a fifth of the chart's draw, and the grey says "cut" already
        marker={"color": [CUT_COLOR if removed else RAW_COLOR for removed in cut] + [OTHER_COLOR]},
        customdata=hover,
        hovertemplate=template,
    )
    fig.add_bar(
        name="after settings (what sampling draws from)",
        x=labels,
        y=[c.final_prob for c in dist.candidates] + [dist.final_other_mass],
        marker={"color": [FINAL_COLOR] * len(dist.candidates) + [OTHER_COLOR]},
        customdata=hover,
        hovertemplate=template,
    )
    greedy = next((i for i, c in enumerate(dist.candidates) if c.id == dist.greedy_id), None)
    if greedy is not None:
        chosen = dist.candidates[greedy]
        fig.add_annotation(
            # above its bars, with no arrow (an arrow's path is measured at every draw)
            x=labels[greedy], y=max(chosen.prob, chosen.final_prob), text="greedy", showarrow=False,
            yanchor="bottom", yshift=2, font={"size": 12}, name="greedy",
        )
    _base_layout(fig, height, _bars_margin(labels))
    fig.update_layout(
        barmode="group",
        bargap=0.25,
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0},
    )
    _category_axis(fig)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", gridcolor=GRID_COLOR, title="probability")
    peak = max(max(c.prob, c.final_prob) for c in dist.candidates)
    other = max(dist.other_mass, dist.final_other_mass)
    if other > CLIP_OTHER * peak:
        # a long tail would flatten every real bar; cut its bar off, and say so with its numbers
        top = min(1.0, peak * 1.3)
        fig.update_yaxes(range=[0, top])
        fig.add_annotation(
            x=labels[-1], y=top, yanchor="top", xanchor="right", showarrow=False, name="other",
            text=f"{percent(dist.other_mass)} → {percent(dist.final_other_mass)}<br>(bar cut off)",
            font={"size": 11}, bgcolor="rgba(128,128,128,0.2)",
        )
    return fig


def _bars_margin(labels: Sequence[str]) -> dict[str, int]:
    """Margins of a chart of vertical bars: the percent ticks and the axis title on the left, the legend on
    top (two lines on a phone), the slanted token labels below."""
    return {"l": 64, "t": 56, "b": slanted_height(labels)}


def _category_axis(fig: go.Figure) -> None:
    """Token labels side by side, slanted by plotly when they would collide at the width the chart is drawn
    (a phone's or a desktop's), never more than :data:`SLANT` degrees (the room below is for that)."""
    fig.update_xaxes(type="category", autotickangles=list(SLANTS), gridcolor=GRID_COLOR)  # tickangle: auto


DRAWN_COLOR = "#009e73"


def draws_figure(dist: Distribution, draws: Draws, *, height: int = 320) -> go.Figure:
    """How often each shown token came out of ``draws``, next to the probability it was drawn with."""
    labels = token_labels(dist.candidates) + [other_label(dist)]
    drawn = dict(draws.counts)
    counts = [drawn.get(c.id, 0) for c in dist.candidates]
    counts.append(draws.n - sum(counts))
    shares = [count / draws.n for count in counts]
    fig = go.Figure()
    fig.add_bar(name="probability after settings", x=labels,
                y=[c.final_prob for c in dist.candidates] + [dist.final_other_mass],
                marker={"color": FINAL_COLOR}, hovertemplate="<b>%{x}</b><br>probability %{y:.2%}<extra></extra>")
    fig.add_bar(name=f"share of {draws.n:,} draws (seed {draws.seed})", x=labels, y=shares, customdata=counts,
                marker={"color": DRAWN_COLOR},
                hovertemplate="<b>%{x}</b><br>drawn %{customdata:,} times: %{y:.2%}<extra></extra>")
    _base_layout(fig, height, _bars_margin(labels))
    fig.update_layout(barmode="group", bargap=0.25,
                      legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0})
    _category_axis(fig)
    fig.update_yaxes(tickformat=".0%", rangemode="tozero", gridcolor=GRID_COLOR, title="share")
    return fig


def panel_title(name: str, survivors: int, vocab_size: int, removed_mass: float | None = None) -> str:
    left = "all" if survivors == vocab_size else f"{survivors:,}"
    cut = f", −{percent(removed_mass)}" if removed_mass else ""
    return f"{name} · {left} left{cut}"


TICK_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.25, 0.5)


def inner_ticks(top: float, most: int = 3) -> list[float]:
    """Round tick values strictly inside (0, ``top``), at most ``most`` of them and none near the right end."""
    step = next((step for step in TICK_STEPS if top / step <= most + 1), 0.5)
    return [round(step * k, 4) for k in range(1, int(top / step) + 1) if step * k < 0.9 * top] or [round(top / 2, 4)]


def pipeline_figure(dist: Distribution, *, panel_height: int = 260) -> go.Figure:
    """Small multiples: the candidates after each processor in ``generate()``'s order (raw first)."""
    labels = token_labels(dist.candidates)
    panels: list[tuple[str, list[float]]] = [
        (panel_title("raw softmax", dist.vocab_size, dist.vocab_size), [c.prob for c in dist.candidates])
    ]
    for stage in dist.stages:
        title = panel_title(stage.name, stage.survivors, dist.vocab_size, stage.removed_mass)
        panels.append((title, list(stage.shown)))
    if dist.settings.greedy:
        panels.append(("greedy pick (temperature 0)", [c.final_prob for c in dist.candidates]))
    columns = min(len(panels), PANELS_PER_ROW)
    rows = math.ceil(len(panels) / columns)
    fig = make_subplots(
        rows=rows, cols=columns, shared_yaxes=True, subplot_titles=[title for title, _ in panels],
        horizontal_spacing=0.03, vertical_spacing=0.12 if rows > 1 else 0.0,
    )
    for index, (title, probs) in enumerate(panels):
        row, col = index // columns + 1, index % columns + 1
        fig.add_bar(
            x=probs, y=labels, orientation="h", name=title, showlegend=False,
            marker={"color": probs, "colorscale": "Cividis", "cmin": -0.35, "cmax": 1.0},
            customdata=[[c.id, c.rank] for c in dist.candidates],
            hovertemplate=f"{title}<br><b>%{{y}}</b> · id %{{customdata[0]}} · rank %{{customdata[1]}}"
            "<br>%{x:.2%}<extra></extra>",
            row=row, col=col,
        )
        gone = [label for label, prob in zip(labels, probs) if prob == 0.0]
        if gone and index > 0:
            fig.add_scatter(
                x=[0.0] * len(gone), y=gone, mode="text", text=["✕ cut"] * len(gone), textposition="middle right",
                textfont={"color": "rgba(150,150,150,1)", "size": 11}, hoverinfo="skip", showlegend=False,
                row=row, col=col,
            )
    widest = max((text_width(label) for label in labels), default=0.0)
    _base_layout(fig, panel_height * rows, {"l": math.ceil(widest) + 14, "t": 50, "b": 28})
    fig.update_layout(bargap=0.2)
    peak = max((max(probs) for _, probs in panels if probs), default=1.0)
    top = min(1.0, peak * 1.1) or 1.0
    # no label at either end of a panel: one panel's "100%" would otherwise run into the next one's "0%"
    fig.update_xaxes(tickformat=".0%", range=[0, top], tickmode="array", tickvals=inner_ticks(top),
                     gridcolor=GRID_COLOR)
    fig.update_yaxes(type="category", autorange="reversed", dtick=1)  # every row labelled, none skipped
    fig.update_annotations(font={"size": 12})
    return fig


def candidate_rows(dist: Distribution) -> list[list[Any]]:
    """One row per candidate (see :data:`CANDIDATE_HEADERS`), rounded for reading."""
    labels = token_labels(dist.candidates)
    rows = [
        [c.rank, label, c.id, round(c.logit, 3), round(c.logprob, 3), percent(c.prob), percent(c.final_prob),
         cut_reason(c)]
        for c, label in zip(dist.candidates, labels)
    ]
    rows.append(["", other_label(dist), "", "", "", percent(dist.other_mass), percent(dist.final_other_mass), ""])
    return rows


def pipeline_rows(dist: Distribution) -> list[list[Any]]:
    """Raw, then one row per processor in ``generate()``'s order (see :data:`PIPELINE_HEADERS`)."""
    texts = {c.id: visible(c.text) for c in dist.candidates}
    top_raw = min(dist.candidates, key=lambda c: c.rank)
    rows: list[list[Any]] = [
        ["raw softmax", "(the model's logits)", dist.vocab_size, "", "", round(dist.entropy_bits, 3),
         f"{visible(top_raw.text)} {percent(top_raw.prob)}"]
    ]
    for stage in dist.stages:
        best_id, best_prob = stage.top[0]
        best = texts.get(best_id, f"#{best_id}")
        rows.append([stage.name, stage.processor, stage.survivors, percent(stage.removed_mass),
                     percent(stage.moved_mass), round(stage.entropy_bits, 3), f"{best} {percent(best_prob)}"])
    if dist.settings.greedy:
        best = texts.get(dist.greedy_id, f"#{dist.greedy_id}")
        rows.append(["greedy (temperature 0)", "argmax", 1, "", "", 0.0, f"{best} 100%"])
    return rows
