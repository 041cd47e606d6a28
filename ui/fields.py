"""Reading what people type into the tabs' text fields.

A field such as ``bad_words`` holds a comma-separated list; this module turns
such text into values. Checking the values is the settings' job
(:mod:`stepgen.settings`), and showing them is :mod:`ui.render`'s.
"""

from __future__ import annotations


def split_words(text: str | None) -> tuple[str, ...]:
    """``'the, a'`` -> ``('the', 'a')`` (an empty field, or None, gives no words)."""
    return tuple(word.strip() for word in (text or "").split(",") if word.strip())
