"""Tabs are rooms of their own: no module of ``ui/`` imports a tab (``app.py`` alone puts the tabs together).

A helper two tabs need lives in a shared module (``ui/render.py``, ``ui/controls.py``, ...), never in one tab
imported by another. Read from the source with ``ast``: nothing is imported or run.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parent.parent / "ui"
TABS = sorted(path.stem for path in UI.glob("*_tab.py"))
PENDING: dict[str, str] = {}
"""Imports of a tab still to be moved out; strict, so that the entry must go once the import is gone."""
MODULES = [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=PENDING[name])) if name in PENDING
           else name for name in sorted(path.name for path in UI.glob("*.py"))]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, as dotted names (``from ui import x`` counts as ``ui.x``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "ui" if node.level else (node.module or "")
            if node.level and node.module:
                base = f"ui.{node.module}"
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_the_tabs_are_found() -> None:
    assert {"tokenizer_tab", "next_token_tab", "step_tab", "playground_tab"} <= set(TABS), f"tabs found: {TABS}"


@pytest.mark.parametrize("module", MODULES)
def test_no_ui_module_imports_a_tab(module: str) -> None:
    own = module.removesuffix(".py")
    tabs = {f"ui.{tab}" for tab in TABS if tab != own}
    reached = sorted(imported_modules(UI / module) & tabs)
    assert not reached, f"ui/{module} imports {reached}: move what it needs into a shared ui module"


def test_the_check_sees_every_way_of_importing(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text("import ui.step_tab\nfrom ui import playground_tab\nfrom ui.next_token_tab import x\n"
                      "import ui.compare_tab\n"
                      "from .tokenizer_tab import y\n", encoding="utf-8")
    found = imported_modules(source)
    for tab in TABS:
        assert f"ui.{tab}" in found, f"an import of ui.{tab} went unseen: {sorted(found)}"
