"""Plain-language words for a next-token distribution.

:func:`reading` turns a :class:`~stepgen.distribution.Distribution` into one
sentence ("the model is confident: 97% on ' night'"); what each setting does is
said once, in the table of knobs (:mod:`stepgen.knobs`). The thresholds are rules of thumb for
people, not statistics: the numbers themselves are always shown next to them.

This module only writes words; it computes nothing from a model and draws nothing.
"""

from __future__ import annotations

from stepgen.distribution import Distribution
from stepgen.tokens import visible

CONFIDENT = 0.9
LEANING = 0.5



def quoted(text: str) -> str:
    """A token in quotes, spaces kept (the quotes show them) but newlines and tabs made visible."""
    return "'" + "".join(char if char == " " else visible(char) for char in text) + "'"


def percent(prob: float) -> str:
    """A probability for people: ``97%``, ``3.2%``, ``<0.1%``.

    Only a certainty reads ``100%`` and only an impossibility ``0%``: what would
    round to them reads ``>99.9%`` and ``<0.1%``.
    """
    if prob >= 1:
        return "100%"
    if prob >= 0.9995:
        return ">99.9%"
    if prob >= 0.995:
        return f"{prob:.1%}"
    if prob >= 0.1:
        return f"{prob:.0%}"
    if prob >= 0.001:
        return f"{prob:.1%}"
    return "<0.1%" if prob > 0 else "0%"


def _setting(dist: Distribution, name: str) -> str:
    """``name=value`` of one setting at work (a list, such as ``bad_words``, by its name alone)."""
    value = getattr(dist.settings, name, None)
    return f"{name}={value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else name


def effect(dist: Distribution) -> str:
    """One line on what the settings did to the model's distribution: which ones, how much probability they
    cut, and the model's favourite before and after (``top_k=5 cut 26% of the mass; ' night' 97% → 100%``)."""
    names = [_setting(dist, stage.name) for stage in dist.stages]
    if dist.settings.greedy:
        names.append("temperature=0 (greedy)")
    top = min(dist.candidates, key=lambda c: c.rank)
    favourite = f"{quoted(top.text)} {percent(top.prob)} → {percent(top.final_prob)}"
    if not names:
        return f"Your settings leave the model's distribution as it is: {quoted(top.text)} {percent(top.prob)}."
    final_top = max(dist.candidates, key=lambda c: c.final_prob)
    if final_top.id != top.id:
        favourite += f", now {quoted(final_top.text)} leads with {percent(final_top.final_prob)}"
    moved = sum(stage.moved_mass for stage in dist.stages)
    if dist.cut_mass > 0:
        what = f"cut {percent(dist.cut_mass)} of the mass"
    elif moved > 0:
        what = "cut nothing but reshaped the rest"
    else:
        what = "changed nothing here"
    return f"{', '.join(names)} {what}; {favourite}."


def effective_choices(entropy_bits: float) -> float:
    """2**entropy: the number of equally likely tokens that would be as uncertain."""
    return 2.0**entropy_bits


def reading(dist: Distribution) -> str:
    """One sentence on what the model believes, then what the settings leave to choose from."""
    ranked = sorted(dist.candidates, key=lambda c: c.rank)
    top, second = ranked[0], ranked[1] if len(ranked) > 1 else None
    if top.prob >= CONFIDENT:
        belief = f"The model is confident: {percent(top.prob)} on {quoted(top.text)}."
    elif top.prob >= LEANING:
        runner_up = f", then {quoted(second.text)} ({percent(second.prob)})" if second else ""
        belief = f"The model leans towards {quoted(top.text)} ({percent(top.prob)}){runner_up}."
    else:
        choices = effective_choices(dist.entropy_bits)
        belief = (
            f"The model is unsure: its favourite, {quoted(top.text)}, gets only {percent(top.prob)}; "
            f"the entropy of {dist.entropy_bits:.2f} bits is like choosing among ~{choices:,.0f} equally likely tokens."
        )
    greedy = dist.candidate(dist.greedy_id)
    greedy_text = quoted(greedy.text) if greedy else f"token {dist.greedy_id}"
    if dist.settings.greedy:
        after = f"With temperature 0, greedy decoding always writes {greedy_text}."
    elif dist.survivors == 1:
        after = f"Your settings leave a single token: sampling always writes {greedy_text}."
    elif dist.survivors == dist.vocab_size:
        after = f"Sampling can draw any of the {dist.vocab_size:,} tokens; the likeliest is {greedy_text}."
    else:
        final_top = max(dist.candidates, key=lambda c: c.final_prob)
        after = (
            f"Your settings leave {dist.survivors:,} of {dist.vocab_size:,} tokens; sampling draws "
            f"{quoted(final_top.text)} with {percent(final_top.final_prob)}."
        )
    return f"{belief} {after}"
