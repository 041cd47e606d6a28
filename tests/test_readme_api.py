"""The README's API section runs: each ```python example is executed against a launched app.

The examples talk to ``http://127.0.0.1:7860/`` (what ``bash scripts/demo.sh``
serves); here that address is replaced by the test app's, and the embedded chat
model by the tiny Llama (which has a chat template too). The section must
also name every public endpoint the app serves, so a new endpoint cannot stay
undocumented and a renamed one cannot leave a stale example behind.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
DOCUMENTED_URL = "http://127.0.0.1:7860/"


def api_section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## API\n(.*?)(?=^## )", text, re.M | re.S)
    assert match, "README.md has no '## API' section followed by another '## ' section"
    return match.group(1)


def examples() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", api_section(), re.M | re.S)


def example_id(code: str) -> str:
    names = re.findall(r'api_name="(/\w+)"', code)
    return "+".join(names) or code.splitlines()[0]


def test_the_api_section_has_runnable_examples() -> None:
    found = examples()
    assert len(found) >= 4, f"only {len(found)} python examples in the API section"
    for code in found:
        assert DOCUMENTED_URL in code, f"an example does not connect to {DOCUMENTED_URL}:\n{code}"


@pytest.mark.parametrize("code", examples(), ids=example_id)
def test_readme_example_runs_against_the_app(code: str, app_url: str, tiny_llama_dir: Path) -> None:
    program = code.replace(DOCUMENTED_URL, app_url + "/").replace('"embedded"', repr(str(tiny_llama_dir)))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(program, "README.md (API section)", "exec"), {"__name__": "readme_example"})  # noqa: S102
    assert printed.getvalue().strip(), f"the example printed nothing:\n{code}"


def test_every_public_endpoint_is_documented_and_every_documented_one_exists(client: object) -> None:
    served = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    section = api_section()
    documented = set(re.findall(r"`(/\w+)`", section)) | set(re.findall(r'api_name="(/\w+)"', section))
    missing = sorted(served - documented)
    assert not missing, f"endpoints the app serves but the README's API section does not document: {missing}"
    stale = sorted(set(re.findall(r'api_name="(/\w+)"', section)) - served)
    assert not stale, f"the README's examples call endpoints the app does not serve: {stale}"
    for name in served:
        assert re.search(rf"^(### |\| )`{re.escape(name)}`", section, re.M), f"{name} has no heading or table row"
