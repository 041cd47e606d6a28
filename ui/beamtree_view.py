"""The beam-search tree as HTML: one column per step, one row per live beam, the finished and the pruned below.

Each live beam after a step is a token chip coloured by its probability (the
scale of :mod:`ui.render`), with the beam it grew from in small type and its
numbers on hover; the chips on the path of a returned sequence are outlined in
that sequence's colour. Under the beams, each column lists the hypotheses that
finished there with their length-penalised score (the returned ones numbered),
then the likeliest candidates that were pruned, and all of the step's candidates
in a fold. The whole view folds too, and scrolls sideways (8 beams by 40 steps
fit in its height); a zoom (small, normal, large type) and "returned paths
only" (every other beam faded) are plain form controls the style sheet reads,
so they need no script and no round trip to the server. Given the run's prompt, every node (a beam, a finished
hypothesis, a candidate) links to the Step-by-step tab with that prompt and the
hypothesis's token ids as its ``path`` (see :mod:`ui.deeplinks`), so a learner
can take over from it; the link opens in a new browser tab, the tree stays.

This module only turns a :func:`stepgen.beamtree.beam_tree` into an HTML
string; every text goes through ``html.escape``. It knows no tab and no widget.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from stepgen.beamtree import BeamStep, Candidate, path_beams
from ui.deeplinks import DeepLink, to_query
from ui.render import colour, legend_html, token_html

PATH_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442", "#000000")
"""One outline colour per returned sequence (Okabe-Ito, readable for colour-blind eyes)."""
PRUNED_SHOWN = 3
"""How many pruned candidates a column shows before its fold."""


def _number(value: float) -> str:
    return f"{value:.3f}" if math.isfinite(value) else "-inf"


def step_link(prompt: str, model: str, token_ids: Sequence[int]) -> str:
    """The Step-by-step tab's link to ``prompt`` followed by exactly ``token_ids`` (relative: it works wherever
    the app is served)."""
    return "?" + to_query(DeepLink(tab="step", model=model or None, values=(("prompt", prompt),),
                                   path=tuple(token_ids)))


def _chip(text: str, logprob: float, title: str, classes: str, extra: str = "", outline: str | None = None,
          href: str | None = None, token_id: int | None = None) -> str:
    background, ink = colour(math.exp(logprob) if math.isfinite(logprob) else 0.0)
    ring = f"outline:2px solid {outline};outline-offset:1px;" if outline else ""
    tag, link = ("span", "") if href is None else (
        "a", f' href="{html.escape(href, quote=True)}" target="_blank" rel="noopener"')
    title += "" if href is None else "\nclick: take over from here in the Step-by-step tab"
    link += "" if token_id is None else f' data-id="{token_id}"'
    return (f'<{tag} class="bt-chip {classes}"{link} style="background-color:{background};color:{ink};{ring}" '
            f'title="{html.escape(title, quote=True)}">{extra}{token_html(text)}</{tag}>')


def _prefixes(tree: Sequence[BeamStep]) -> list[list[tuple[int, ...]]]:
    """The generated token ids of every live beam after every step (by step, then beam)."""
    out: list[list[tuple[int, ...]]] = []
    for step in tree:
        before = out[-1] if out else [()]
        out.append([before[min(node.parent, len(before) - 1)] + (node.token_id,) for node in step.beams])
    return out


def _paths(tree: Sequence[BeamStep]) -> dict[tuple[int, int], int]:
    """(step, beam) of every live node on the path of a returned sequence -> that sequence's place (best wins)."""
    on_path: dict[tuple[int, int], int] = {}
    for step in tree:
        for finished in step.finished:
            if finished.returned is None:
                continue
            chain = path_beams(tree, step.step, finished.parent)
            for t in range(step.step):  # the node at step t is the parent of the token chosen at step t + 1
                key = (t, chain[t + 1])
                on_path[key] = min(on_path.get(key, finished.returned), finished.returned)
    return on_path


def _candidate_line(candidate: Candidate, href: str | None = None) -> str:
    fate = {"survived": f"became beam {candidate.beam}", "finished": "finished", "pruned": "pruned"}[candidate.status]
    title = (f"from beam {candidate.parent} · log-prob {_number(candidate.logprob)} · score {_number(candidate.score)}"
             f" · {fate}")
    return _chip(candidate.text, candidate.logprob, title, f"bt-{candidate.status}",
                 f'<span class="bt-from">{candidate.parent}</span>', href=href, token_id=candidate.token_id)


def beam_tree_html(tree: Sequence[BeamStep] | None, prompt: str | None = None, model: str = "") -> str:
    """The tree of one beam search (nothing when there is none); with the run's ``prompt`` (and ``model``),
    every node links to the Step-by-step tab at its hypothesis."""
    if not tree:
        return ""
    on_path = _paths(tree)
    prefixes = _prefixes(tree)

    def href(token_ids: Sequence[int]) -> str | None:
        return None if prompt is None else step_link(prompt, model, token_ids)

    def before(step: int, parent: int) -> tuple[int, ...]:
        return prefixes[step - 1][parent] if step > 0 else ()

    n_beams = max(len(step.beams) for step in tree) or 1
    head = "".join(f"<th>{step.step + 1}</th>" for step in tree)
    rows = []
    for beam in range(n_beams):
        cells = []
        for step in tree:
            if beam >= len(step.beams):
                cells.append("<td></td>")
                continue
            node = step.beams[beam]
            place = on_path.get((step.step, beam))
            title = (f"beam {beam} after step {step.step + 1}, from beam {node.parent} · log-prob "
                     f"{_number(node.logprob)} · score {_number(node.score)}"
                     + (f" · on the path of returned sequence {place + 1}" if place is not None else ""))
            outline = PATH_COLOURS[place % len(PATH_COLOURS)] if place is not None else None
            chip = _chip(node.text, node.logprob, title, "bt-beam" + (" bt-path" if place is not None else ""),
                         f'<span class="bt-from">{node.parent}</span>', outline, href(prefixes[step.step][beam]),
                         node.token_id)
            cells.append(f"<td>{chip}</td>")
        rows.append(f'<tr><th class="bt-row">beam {beam}</th>{"".join(cells)}</tr>')
    finished_cells, pruned_cells = [], []
    for step in tree:
        ended = []
        for f in sorted(step.finished, key=lambda f: -f.score):
            outline = PATH_COLOURS[f.returned % len(PATH_COLOURS)] if f.returned is not None else None
            badge = f'<span class="bt-returned">#{f.returned + 1}</span>' if f.returned is not None else ""
            title = (f"finished ({f.reason}) after {len(f.token_ids)} tokens, from beam {f.parent} · log-prob sum "
                     f"{_number(f.sum_logprob)} · length-penalised score {_number(f.score)}"
                     + (f" · returned as sequence {f.returned + 1}" if f.returned is not None else " · not returned"))
            chip = _chip(f.text, f.logprob, title, "bt-finished", "", outline, href(f.token_ids), f.token_id)
            ended.append(f'<div class="bt-end" data-score="{f.score!r}"'
                         + ("" if f.returned is None else f' data-returned="{f.returned}"')
                         + f'>{chip} <span class="bt-score">{_number(f.score)}</span>{badge}</div>')
        finished_cells.append(f"<td>{''.join(ended)}</td>")
        pruned = sorted((c for c in step.candidates if c.status == "pruned"), key=lambda c: -c.score)
        shown = "".join(f"<div>{_candidate_line(c, href(before(step.step, c.parent) + (c.token_id,)))}</div>"
                        for c in pruned[:PRUNED_SHOWN])
        every = "".join(f"<div>{_candidate_line(c, href(before(step.step, c.parent) + (c.token_id,)))}</div>"
                        for c in step.candidates)
        fold = (f'<details class="bt-all"><summary>all {len(step.candidates)}</summary>{every}</details>'
                if step.candidates else "")
        pruned_cells.append(f"<td>{shown}{fold}</td>")
    returned = sum(1 for step in tree for f in step.finished if f.returned is not None)
    summary = (f"Beam search tree: {len(tree)} steps, {n_beams} beams, {returned} returned sequence(s) outlined")
    legend = legend_html(
        "Each column is a step, each row a running beam: the token it took (coloured by its probability after the "
        "settings), the small number the beam it grew from. Below: the hypotheses that finished there with their "
        "length-penalised score (#1 is the best returned), then the likeliest pruned candidates. Hover for numbers"
        + ("; click any token to take over from that hypothesis in the Step-by-step tab." if prompt is not None
           else "."))
    zoom = "".join(
        f'<label><input type="radio" name="bt-zoom" value="{size}" class="bt-zoom-{size}"'
        f'{" checked" if size == "normal" else ""}> {size}</label>' for size in ("small", "normal", "large"))
    tools = (f'<div class="bt-tools">zoom: {zoom} <label><input type="checkbox" class="bt-focus"> returned paths '
             "only</label></div>")
    return (
        f'<details class="bt-view" open><summary>{html.escape(summary)}</summary>{tools}'
        f'<div class="bt-scroll"><table class="bt-tree"><thead><tr><th class="bt-row">step</th>{head}</tr></thead>'
        f'<tbody>{"".join(rows)}<tr class="bt-ends"><th class="bt-row">finished</th>{"".join(finished_cells)}</tr>'
        f'<tr class="bt-pruned-row"><th class="bt-row">pruned</th>{"".join(pruned_cells)}</tr></tbody></table>'
        f"</div>{legend}</details>"
    )
