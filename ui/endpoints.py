"""Endpoints whose knob parameters come from the table of knobs.

``gr.api`` builds an endpoint's JSON schema and its "Use via API" page from the
function's signature and docstring. :func:`knob_endpoint` gives a function that
takes its knobs as ``**knobs`` the signature it would have if each knob were
written out (name, type and default from :mod:`stepgen.knobs`), and documents
each one with its meaning, range and default, so a knob added to the table
appears in every endpoint that lists it without another edit.

Positional callers keep working: the parameters stand in the order given, the
function's own before the knobs and those named in ``last`` after them.

:func:`document` then hands what those docstrings say to the page: ``gr.api``
itself labels every parameter "1st", "2nd"... and describes every return as
"Any", so each endpoint's parameters get their names, meanings, defaults and
types, and its return the docstring's "Returns" text. This module does not
check values (the table of knobs and the endpoints do).
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr
from gradio.components.api_component import Api
from gradio.utils import get_function_params

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


def docstring_sections(doc: str | None) -> tuple[str, dict[str, str], str]:
    """A docstring's description (what comes before "Parameters:" or "Returns"), its "Parameters:" entries by
    name (continuation lines joined) and its "Returns" text."""
    description: list[str] = []
    params: dict[str, str] = {}
    returns: list[str] = []
    section, indent, current = "", -1, ""
    for line in inspect.cleandoc(doc or "").splitlines():
        stripped = line.strip()
        if stripped.startswith("Parameters:"):
            section, indent = "parameters", -1
            continue
        if stripped.startswith("Returns"):
            section = "returns"
            stripped = stripped.removeprefix("Returns").removeprefix(":").strip()
        if section == "returns":
            returns.append(stripped)
        elif not section and not params:
            description.append(stripped)
        elif section == "parameters":
            if not stripped:
                section = "" if params else section  # a blank line ends the list
                continue
            depth = len(line) - len(line.lstrip())
            indent = depth if indent < 0 else indent
            entry = re.match(r"(\w+): (.*)", stripped)
            if depth == indent and entry:
                current = entry[1]
                params[current] = entry[2]
            elif current:
                params[current] += " " + stripped
    return (" ".join(part for part in description if part), params, " ".join(part for part in returns if part))


def _schema(parameter: inspect.Parameter, schema: dict[str, Any], meaning: str) -> dict[str, Any]:
    """The parameter's JSON schema with its meaning and default; a default of None drops ``null`` from the type
    (the page and the client add "| None" to such a parameter themselves)."""
    schema = dict(schema)
    for either in ("anyOf", "oneOf"):
        if parameter.default is None and either in schema:
            rest = [option for option in schema.pop(either) if option.get("type") != "null"]
            schema.update(rest[0] if len(rest) == 1 else {either: rest})
    if parameter.default is not inspect.Parameter.empty:
        schema["default"] = parameter.default
        if "default" not in meaning:
            meaning = f"{meaning} (default {json.dumps(parameter.default)})"
    schema["description"] = schema["additional_description"] = meaning
    return schema


def document(blocks: gr.Blocks) -> None:
    """Name and describe the parameters and the return of every ``gr.api`` endpoint built so far in ``blocks``,
    from each function's signature and docstring (call it inside the ``with gr.Blocks()`` block, at its end)."""
    for block_fn in blocks.fns.values():
        components = [*block_fn.inputs, *block_fn.outputs]
        if not block_fn.api_name or not components or not all(isinstance(c, Api) for c in components):
            continue
        description, meanings, returns = docstring_sections(inspect.getdoc(block_fn.fn))
        if block_fn.api_description is None:  # Gradio's own reading would run on into a "Returns" paragraph
            block_fn.api_description = description
        signature = inspect.signature(block_fn.fn).parameters
        # the parameters gr.api made an input of, in its order (it leaves out gr.Request and the like)
        parameters = [signature[name] for name, *_ in get_function_params(block_fn.fn)]
        for parameter, component in zip(parameters, block_fn.inputs, strict=True):
            component.label = parameter.name
            component._api_info = _schema(parameter, component.api_info(), meanings.get(parameter.name, ""))
        for component in block_fn.outputs:
            component.label = returns
            component._api_info = {"type": "object", "additionalProperties": True, "description": returns}
