"""Argument checks: one function for each kind of value an endpoint or a setting takes.

Every check returns the value in its normal form or raises a ``ValueError`` that
names the argument and echoes the value, in one voice: "`top_k` has to be a
whole number, but is 2.5". The seed rule is here too: a seed is a whole number
from 0 to :data:`MAX_SEED`; none, an empty text or -1 means "pick one at
random" (:func:`pick_seed`), and the caller reports the seed it got.

These checks know nothing of which argument has which range: that is the table
of knobs (:mod:`stepgen.knobs`). Text checks (valid Unicode) are
:func:`stepgen.tokenize.check_unicode`.
"""

from __future__ import annotations

import math
import secrets
from typing import Any

from stepgen.tokenize import check_unicode

MAX_SEED = 2**32 - 1
"""The largest seed anywhere in the app (what numpy accepts; torch accepts more)."""


def number(name: str, value: Any) -> float:
    """``value`` as a finite float, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"`{name}` has to be a number, but is {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"`{name}` has to be a finite number, but is {value}")
    return float(value)


def whole(name: str, value: Any) -> int:
    """``value`` as an int (a whole float, as JSON sends it, counts), or a ValueError naming ``name``."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"`{name}` has to be a whole number, but is {value!r}")
    return value


def whole_in_range(name: str, value: Any, low: int, high: int, what: str = "an integer") -> int:
    """``value`` as an int from ``low`` to ``high`` (a whole float, as JSON sends it, counts), or a ValueError
    saying "`name` has to be <what> from <low> to <high>, but is <value>"."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"`{name}` has to be {what} from {low} to {high}, but is {value!r}")
    return value


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"`{name}` has to be true or false, but is {value!r}")
    return value


def strings(name: str, value: Any, *, at_most: int | None = None) -> tuple[str, ...]:
    """A list of strings (a single string is one item; None none), each valid Unicode, empty ones dropped."""
    items = () if value is None else (value,) if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(item, str) for item in items):
        raise ValueError(f"`{name}` has to be a list of strings, but is {value!r}")
    kept = tuple(check_unicode(name, item) for item in items if item)
    if at_most is not None and len(kept) > at_most:
        raise ValueError(f"`{name}` takes at most {at_most} strings, but has {len(kept)}")
    return kept


def check_seed(value: Any) -> int:
    """A given seed as an int from 0 to :data:`MAX_SEED`, or a ValueError naming ``seed``."""
    return whole_in_range("seed", value, 0, MAX_SEED)


def given_seed(value: Any) -> int | None:
    """The seed rule: None, an empty text or -1 means "pick one" (None comes back); a text holding a whole
    number counts as that number (a seed box sends text); anything else is checked by :func:`check_seed`."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"`seed` has to be a whole number (or empty for a random one), "
                             f"but is {value!r}") from None
    if value is None or (value == -1 and not isinstance(value, bool)):
        return None
    return check_seed(value)


def pick_seed(value: Any) -> int:
    """The seed :func:`given_seed` reads in ``value``, or one picked at random (for the caller to report)."""
    seed = given_seed(value)
    return secrets.randbelow(MAX_SEED + 1) if seed is None else seed
