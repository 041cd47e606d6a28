"""What contrastive search did, as HTML: for each generated token, the candidates it weighed and their numbers.

One row per generated token; in it the ``top_k`` candidates, likeliest first,
each a token chip coloured by its model confidence (the scale of
:mod:`ui.render`) with its probability, its degeneration penalty and its final
score ``(1 - penalty_alpha) * prob - penalty_alpha * penalty``. The token taken
is outlined; a row where the penalty overruled the likeliest token is marked,
and so is the likeliest token it passed over. The view folds, and scrolls
when it is long.

This module only turns the candidates :mod:`stepgen.contrastive` reported
(on each :class:`~stepgen.results.TokenInfo`) into an HTML string; every text
goes through ``html.escape``. It computes no number and knows no tab or widget.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from stepgen.results import TokenInfo
from ui.render import colour, legend_html, token_html


def _number(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "-inf"


def contrastive_html(tokens: Sequence[TokenInfo], penalty_alpha: float) -> str:
    """The candidates of every token of one contrastive run (nothing when no token carries candidates)."""
    rows = []
    overruled = 0
    for index, token in enumerate(tokens):
        if not token.candidates:
            continue
        overruled += token.overruled
        cells = []
        for place, candidate in enumerate(token.candidates):
            background, ink = colour(candidate.prob)
            taken = candidate.id == token.id
            passed = token.overruled and place == 0
            classes = "cs-cand" + (" cs-taken" if taken else "") + (" cs-passed" if passed else "")
            title = (f"id {candidate.id} · model confidence {candidate.prob:.4f} · degeneration penalty "
                     f"{candidate.penalty:.4f} · score {_number(candidate.score)}"
                     + (" · taken" if taken else "") + (" · the likeliest, overruled by the penalty" if passed else ""))
            cells.append(
                f'<td class="{classes}" data-id="{candidate.id}" data-prob="{candidate.prob!r}" '
                f'data-penalty="{candidate.penalty!r}" data-score="{candidate.score!r}" '
                f'title="{html.escape(title, quote=True)}">'
                f'<span class="cs-chip" style="background-color:{background};color:{ink}">'
                f"{token_html(candidate.text)}</span>"
                f'<span class="cs-nums">p {candidate.prob:.3f} · pen {candidate.penalty:.3f} · '
                f"<b>{_number(candidate.score)}</b></span></td>")
        mark = '<span class="cs-overruled-mark">penalty overruled</span>' if token.overruled else ""
        rows.append(f'<tr class="cs-row{" cs-overruled" if token.overruled else ""}" data-token="{index}">'
                    f'<th class="cs-pos">{index + 1}{mark}</th>{"".join(cells)}</tr>')
    if not rows:
        return ""
    alpha = f"{penalty_alpha:g}"
    summary = (f"Contrastive search: {len(rows)} tokens, the degeneration penalty overruled the likeliest token at "
               f"{overruled} of them")
    legend = legend_html(
        f"Each row is a generated token, each cell one of the top_k candidates, likeliest first: p is the model's "
        f"confidence (its probability; the colour), pen the degeneration penalty (its hidden state's largest cosine "
        f"similarity with any earlier token's), and the bold number the score (1 − {alpha}) · p − {alpha} · pen. "
        "The outlined candidate was taken; a struck-out first candidate is the likeliest one the penalty "
        "overruled.")
    return (f'<details class="cs-view" open><summary>{html.escape(summary)}</summary>'
            f'<div class="cs-scroll"><table class="cs-table"><tbody>{"".join(rows)}</tbody></table></div>'
            f"{legend}</details>")
