"""How every tab draws tokens: their text, the colour of a probability, and the legend of that colour.

One text rule (:func:`stepgen.tokens.visible`) turned into HTML, in two forms:
a token on its own (a chip, a candidate), with every whitespace marked, and
running text (a generated text, a scored prompt), where spaces stay spaces and
line breaks are marked and kept. One colour scale, cividis (the scale the
charts of :mod:`stepgen.plots` use for magnitudes): dark blue for unlikely,
yellow for certain, readable for colour-blind eyes, with the ink on each
colour chosen by its WCAG contrast so that every token stays readable in light
and dark mode.

Every text goes through ``html.escape`` here. This module knows no tab and no
widget: it turns plain values into HTML strings; the tabs place them.
"""

from __future__ import annotations

import html

from plotly.colors import hex_to_rgb, sequential

from stepgen.tokens import visible

SCALE = "Cividis"
"""The colour scale of probabilities, by its plotly name (the charts use the same one)."""
_STOPS = tuple(hex_to_rgb(stop) for stop in getattr(sequential, SCALE))
LEGEND_STEPS = 10
"""How many swatches the legend shows, from probability 0 to 1."""
_INKS = ("#000000", "#ffffff")


def token_html(text: str, *, keep_newlines: bool = False) -> str:
    """A token on its own, every whitespace and control character marked, escaped for HTML."""
    return html.escape(visible(text, keep_newlines=keep_newlines))


def running_html(text: str) -> str:
    """Running text: spaces as they are, line breaks marked and kept, other controls marked, escaped for HTML."""
    return html.escape(visible(text, keep_newlines=True, keep_spaces=True))


def _luminance(rgb: tuple[float, ...]) -> float:
    """WCAG relative luminance of an sRGB colour given as 0-255 channels."""
    linear = [(c / 255) / 12.92 if c / 255 <= 0.03928 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours (1 to 21)."""
    lighter, darker = sorted((_luminance(hex_to_rgb(first)), _luminance(hex_to_rgb(second))), reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colour(prob: float) -> tuple[str, str]:
    """(background, ink) for a probability: the scale's colour, and black or white, whichever contrasts more.

    Either black or white reaches at least 4.58:1 on any colour, above WCAG AA's 4.5 for normal text.
    """
    # plotly's own sample_colorscale gives the same colours, a hundred times slower (a long text has many tokens)
    position = min(max(float(prob), 0.0), 1.0) * (len(_STOPS) - 1)
    low = min(int(position), len(_STOPS) - 2)
    share = position - low
    rgb = (round(a + (b - a) * share) for a, b in zip(_STOPS[low], _STOPS[low + 1]))
    background = "#{:02x}{:02x}{:02x}".format(*rgb)
    ink = max(_INKS, key=lambda candidate: contrast(background, candidate))
    return background, ink


def legend_html(note: str) -> str:
    """The colour scale from unlikely to certain, then ``note`` (HTML the caller has escaped)."""
    swatches = "".join(f'<span style="background-color:{colour(step / (LEGEND_STEPS - 1))[0]}"></span>'
                       for step in range(LEGEND_STEPS))
    return (f'<div class="prob-legend">unlikely <span class="prob-scale" aria-hidden="true">{swatches}</span> '
            f"certain · {note}</div>")
