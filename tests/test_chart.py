"""ui.chart.Chart: a handler's figure becomes the JSON the page draws, and nothing else passes for one."""

from __future__ import annotations

import json

import plotly.graph_objects as go
import pytest

from ui.chart import Chart


def test_a_figure_goes_to_the_page_as_its_json() -> None:
    figure = go.Figure(go.Bar(x=["a", "b"], y=[0.25, 0.75]))
    sent = Chart().postprocess(figure)
    assert json.loads(sent) == json.loads(figure.to_json())


@pytest.mark.parametrize("nothing", [None, ""])
def test_no_figure_is_no_chart(nothing: object) -> None:
    assert Chart().postprocess(nothing) == ""


def test_anything_else_is_refused() -> None:
    with pytest.raises(TypeError, match="plotly figure"):
        Chart().postprocess("<b>not a figure</b>")
