"""How every tab draws tokens (``ui/render.py``): one text rule, one colour scale with readable ink, one legend."""

from __future__ import annotations

import re

import pytest
from plotly.colors import hex_to_rgb, sample_colorscale, unlabel_rgb

from ui import render

HOSTILE = '<img src=x onerror="alert(1)"> & </span>'


def test_tokens_are_escaped_and_their_whitespace_marked() -> None:
    for rendered in (render.token_html(HOSTILE), render.running_html(HOSTILE)):
        assert "<img" not in rendered and "</span>" not in rendered, f"text reached the page unescaped: {rendered}"
    assert render.token_html(" a\tb\nc\x07") == "·a→b↵c\\x07", render.token_html(" a\tb\nc\x07")
    assert render.token_html("a\nb", keep_newlines=True) == "a↵\nb", "the line break after its mark is gone"


def test_running_text_keeps_its_spaces_and_marks_its_breaks() -> None:
    assert render.running_html(" the end\n\tnext\r\x07") == " the end↵\n→next␍\\x07", (
        render.running_html(" the end\n\tnext\r\x07"))


def test_the_scale_runs_from_dark_blue_to_yellow_as_plotly_draws_cividis() -> None:
    assert render.colour(0.0)[0] == "#00224e" and render.colour(1.0)[0] == "#fee838", (
        f"cividis ends at #00224e and #fee838, not {render.colour(0.0)[0]} and {render.colour(1.0)[0]}")
    assert render.colour(-1.0) == render.colour(0.0) and render.colour(2.0) == render.colour(1.0), (
        "a probability outside [0, 1] must take the colour of its end")
    for step in range(101):
        ours = hex_to_rgb(render.colour(step / 100)[0])
        plotly = unlabel_rgb(sample_colorscale(render.SCALE, step / 100)[0])
        assert all(abs(a - b) <= 1 for a, b in zip(ours, plotly)), f"p={step / 100}: {ours} but plotly {plotly}"


@pytest.mark.parametrize("prob", [step / 200 for step in range(201)])
def test_the_ink_on_every_colour_meets_wcag_aa(prob: float) -> None:
    background, ink = render.colour(prob)
    assert render.contrast(background, ink) >= 4.5, f"p={prob}: {ink} on {background} is below 4.5:1"


def test_the_contrast_ratio_has_its_known_values() -> None:
    """Black on white is the largest ratio WCAG knows (21:1); a colour against itself the smallest (1:1)."""
    assert abs(render.contrast("#000000", "#ffffff") - 21.0) < 1e-9, render.contrast("#000000", "#ffffff")
    assert render.contrast("#7d7c76", "#7d7c76") == 1.0, "a colour against itself"


def test_the_legend_shows_the_scale_the_tokens_use() -> None:
    legend = render.legend_html("a note &amp; more")
    swatches = re.findall(r"background-color:(#[0-9a-f]{6})", legend)
    assert swatches == [render.colour(step / (render.LEGEND_STEPS - 1))[0] for step in range(render.LEGEND_STEPS)], (
        f"the legend's swatches are not the tokens' colours: {swatches}")
    assert legend.index("unlikely") < legend.index("certain") < legend.index("a note &amp; more"), legend
