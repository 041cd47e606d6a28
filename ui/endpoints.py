"""Endpoints whose knob parameters come from the table of knobs.

``gr.api`` builds an endpoint's JSON schema and its "Use via API" page from the
function's signature and docstring. :func:`knob_endpoint` gives a function that
takes its knobs as ``**knobs`` the signature it would have if each knob were
written out (name, type and default from :mod:`stepgen.knobs`), and documents
each one with its meaning, range and default, so a knob added to the table
appears in every endpoint that lists it without another edit.

Positional callers keep working: the parameters stand in the order given, the
function's own before the knobs and those named in ``last`` after them.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from typing import Any

from stepgen.knobs import Knob, knob

_TYPES: dict[str, Any] = {"float": float, "int": int, "bool": bool, "seed": int, "words": list[str] | None,
                          "strings": list[str] | None}
PLACEHOLDER = "{knobs}"
"""Where the knobs' lines go in the function's docstring."""


def _default(spec: Knob) -> Any:
    if spec.kind == "seed":
        return -1
    if spec.kind in ("words", "strings"):
        return None
    return spec.default


def knob_doc(spec: Knob) -> str:
    return f"{spec.name}: {spec.doc()}"


def knob_endpoint(fn: Callable[..., Any], knobs: Sequence[str], *, last: Sequence[str] = ()) -> Callable[..., Any]:
    """``fn`` (which takes ``**knobs``) with a signature and docstring that list ``knobs`` one by one."""
    hints = typing.get_type_hints(fn)  # the function's own annotations, resolved where it was written
    signature = inspect.signature(fn)
    signature = signature.replace(
        parameters=[p.replace(annotation=hints.get(p.name, p.annotation)) for p in signature.parameters.values()],
        return_annotation=hints.get("return", signature.return_annotation))
    own = [p for p in signature.parameters.values() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    before = [p for p in own if p.name not in last]
    after = [p for p in own if p.name in last]
    listed = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=_default(knob(name)),
                                annotation=_TYPES[knob(name).kind]) for name in knobs]
    parameters = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in before] + listed + [
        p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in after]
    full = signature.replace(parameters=parameters)
    names = set(knobs)

    def split(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        bound = full.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def endpoint(*args: Any, **kwargs: Any) -> Any:
            yield from fn(**split(args, kwargs))
    else:
        @functools.wraps(fn)
        def endpoint(*args: Any, **kwargs: Any) -> Any:
            return fn(**split(args, kwargs))

    endpoint.__signature__ = full  # type: ignore[attr-defined]
    endpoint.__annotations__ = {p.name: p.annotation for p in parameters if p.annotation is not inspect._empty}
    if signature.return_annotation is not inspect.Signature.empty:
        endpoint.__annotations__["return"] = signature.return_annotation
    del endpoint.__wrapped__  # type: ignore[attr-defined]  # the signature above is the one to read
    lines = "\n".join(f"        {knob_doc(knob(name))}" for name in knobs if name in names)
    endpoint.__doc__ = (fn.__doc__ or "").replace(f"        {PLACEHOLDER}", lines)
    return endpoint
