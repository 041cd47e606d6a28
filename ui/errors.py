"""One place where the errors users cause become messages they can read.

stepgen raises ``ValueError`` (``ModelLoadError`` is one) naming the argument
and the value; here such errors become ``gr.Error`` so that the browser shows a
toast and a ``gradio_client`` caller gets the same sentence. Anything else is a
bug and is left to propagate (Gradio logs it and hides the details). A message
that echoes a huge value keeps its start and end, about :data:`MAX_MESSAGE`
characters.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

F = TypeVar("F", bound=Callable[..., Any])

MAX_MESSAGE = 600
"""The longest message shown whole: one that echoes a page of text or 10,000 ids would bury its sentence."""
_KEPT_END = 150
"""How much of the end a cut message keeps: where the bad value sat ("(message 2)") and the advice."""


def readable(text: str) -> str:
    """``text``, or its start and end with how many characters in between were left out."""
    if len(text) <= MAX_MESSAGE:
        return text
    start, end = text[:MAX_MESSAGE - _KEPT_END], text[-_KEPT_END:]
    return f"{start} … ({len(text) - len(start) - len(end)} characters left out) … {end}"


def user_errors(fn: F) -> F:
    """Turn ``ValueError`` from ``fn`` into ``gr.Error`` with the same message (generators too)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except ValueError as error:
                raise gr.Error(readable(str(error)), print_exception=False) from error

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValueError as error:
            raise gr.Error(readable(str(error)), print_exception=False) from error

    return call  # type: ignore[return-value]


def message(error: BaseException) -> str:
    """The sentence an error carries (``str()`` of a ``gr.Error`` is its message in quotes)."""
    return error.message if isinstance(error, gr.Error) else str(error)
