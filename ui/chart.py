"""A plotly chart that draws each new figure into the plot on screen, in a task of its own.

:class:`Chart` is a ``gr.HTML`` whose value is a figure's JSON and whose
template is one empty ``div``: the template never changes, so Gradio keeps the
div, and a watcher on the value draws each new figure into it with
``Plotly.react``, which updates the plot in place, in a task after the one in
which Gradio hands the answer over. ``gr.Plot`` instead mounts a new plot for
every new figure and draws it twice (a draw, then a resize), in that task:
while typing, that froze the page for over 100 ms at each keystroke.

The charting library is plotly.js as Gradio serves it for ``gr.Plot`` (it
defines ``window.Plotly``): :func:`preload` puts one empty ``gr.Plot`` on the
page so that the library loads with the page, and a chart waits for it.

A handler returns a ``go.Figure`` (or ``None``: no chart) for a chart, as for
``gr.Plot``; plotly draws the figure's text as SVG text, as it does there.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import plotly.graph_objects as go

DRAW = """
let plot = element.querySelector('.stepgen-chart');
let drawn = null;        // the figure's JSON on screen
let drawing = Promise.resolve();
const library = () => new Promise(resolve => {
  const look = () => (window.Plotly ? resolve(window.Plotly) : setTimeout(look, 30));
  look();
});
function draw() {
  drawing = drawing.then(async () => {
    const wanted = props.value || '';
    if (wanted === drawn) return;
    const Plotly = await library();
    // a task of its own: not the one in which Gradio hands over the answer
    await new Promise(next => setTimeout(next, 0));
    if ((props.value || '') !== wanted) return;  // a newer figure is on its way: it draws instead
    if (!wanted) {
      Plotly.purge(plot);
      const empty = document.createElement('div');
      empty.className = 'stepgen-chart';
      plot.replaceWith(empty);
      plot = empty;
    } else {
      const figure = JSON.parse(wanted);
      const layout = {...(figure.layout || {}), autosize: true};
      await Plotly.react(plot, figure.data || [], layout, {responsive: true, displaylogo: false});
    }
    drawn = wanted;
  }).catch(error => console.error('stepgen chart:', error));
}
watch('value', draw);
draw();
"""
"""Draw the value on load and at each change, each draw in a task of its own, one at a time, the latest value
last."""


class Chart(gr.HTML):
    """A plotly figure, drawn in place (see the module's docstring)."""

    def __init__(self, value: go.Figure | None = None, **kwargs: Any) -> None:
        classes = kwargs.pop("elem_classes", None) or []
        classes = [classes] if isinstance(classes, str) else list(classes)
        super().__init__(value=value, html_template='<div class="stepgen-chart"></div>', js_on_load=DRAW,
                         elem_classes=["stepgen-plot", *classes], **kwargs)

    def postprocess(self, value: Any) -> str:  # type: ignore[override]
        """The figure's JSON ("" for no figure)."""
        if value is None or value == "":
            return ""
        if isinstance(value, go.Figure):
            return value.to_json()
        raise TypeError(f"a chart shows a plotly figure, not {type(value).__name__}")

    def api_info(self) -> dict[str, Any]:
        return {"type": "string", "description": "a plotly figure as JSON (empty: no chart)"}


def preload() -> gr.Plot:
    """An empty ``gr.Plot``, never shown: it makes Gradio load plotly.js with the page, for every chart."""
    return gr.Plot(go.Figure(), show_label=False, elem_id="charts-preload", elem_classes=["stepgen-hidden"])
