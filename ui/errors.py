"""One place where the errors users cause become messages they can read, and where any text becomes safe to show.

stepgen raises ``ValueError`` (``ModelLoadError`` is one) naming the argument
and the value; here such errors become ``gr.Error`` so that the browser shows a
toast and a ``gradio_client`` caller gets the same sentence. Anything else is a
bug and is left to propagate (Gradio logs it and hides the details). A message
that echoes a huge value keeps its start and end, about :data:`MAX_MESSAGE`
characters.

Gradio renders a notice's message as HTML and a ``gr.Markdown`` as Markdown and
HTML, and such messages quote what the user typed. :func:`as_text` is the one
rule that makes a text show as exactly its characters in both, so no value can
turn into a link, an image or a heading on the app's own page. An error is
escaped for the app's page that will show it (its events carry
``x-gradio-user: app``); an API caller (``gradio_client``, the REST routes) and
a direct Python call get the sentence as it is, since they read no markup.
This module decides nothing about what a message says.
"""

from __future__ import annotations

import functools
import inspect
import string
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr
from gradio.context import LocalContext

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


_MARKUP = {ord(char): f"&#{ord(char)};" for char in string.punctuation}
"""Every ASCII punctuation mark as a numeric character reference: HTML reads it as the character, and so does
Markdown, which never takes a character reference for syntax. That covers tags and entities (``<`` ``&``),
links and images (``[`` ``!``), headings, emphasis, code, tables, maths (``$``) and autolinks (``:`` ``.`` ``@``)."""


def as_text(value: object) -> str:
    """``value`` as text that Gradio's notices, Markdown and HTML all show as exactly its characters.

    Not for a Markdown code span (inside backticks Markdown shows the references themselves): quote a value
    in a message with quotes, not backticks.
    """
    return str(value).translate(_MARKUP)


def for_page() -> bool:
    """True while answering an event of the app's page, which renders the message (Gradio's page sends
    ``x-gradio-user: app``; ``gradio_client`` sends ``api``, REST callers nothing, a direct call has no request)."""
    request = LocalContext.request.get(None)
    headers = dict(getattr(request, "headers", None) or {}) if request is not None else {}
    return headers.get("x-gradio-user") == "app"


def notice_text(text: str) -> str:
    """``text`` as an error's message: escaped for a page (:func:`as_text`), as it is for any other caller."""
    return as_text(text) if for_page() else text


def _error(error: ValueError) -> gr.Error:
    text = readable(str(error))
    raised = gr.Error(notice_text(text), print_exception=False)
    raised.text = text  # type: ignore[attr-defined]  # the sentence itself, for message()
    return raised


def user_errors(fn: F) -> F:
    """Turn ``ValueError`` from ``fn`` into ``gr.Error`` with the same message (generators too)."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from fn(*args, **kwargs)
            except ValueError as error:
                raise _error(error) from error

        return stream  # type: ignore[return-value]

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ValueError as error:
            raise _error(error) from error

    return call  # type: ignore[return-value]


def message(error: BaseException) -> str:
    """The sentence an error carries, unescaped (``str()`` of a ``gr.Error`` is its message in quotes)."""
    if isinstance(error, gr.Error):
        return getattr(error, "text", error.message)
    return str(error)


def warn(text: str) -> None:
    """A warning notice showing ``text`` as its characters."""
    gr.Warning(as_text(text))
