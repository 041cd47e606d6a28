"""A user's value is always shown as text, and a public host loads only what it offers.

Gradio renders a notice as HTML and a ``gr.Markdown`` as Markdown and HTML. A
value made of both (a link, an image, a heading, emphasis) is sent through every
URL key and every endpoint parameter; each message it reaches must show it as
its characters, which here means: rendered as CommonMark with HTML (what Gradio's
Markdown does) it makes no element, and its text is the message's own sentence.
The keys and parameters come from the app itself, not from a list kept here.

Longer than the ~300-line guide: the model-name checks (allowlists, public
hosts, remote code, the warm cache) belong with the markup ones, as the two
halves of what a visitor can make the server show or do.
"""

from __future__ import annotations

import html
import inspect
import os
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio.context import LocalContext
from markdown_it import MarkdownIt

from stepgen import loading, registry
from stepgen.loading import ModelLoadError
from ui import deeplinks
from ui.errors import as_text, message, user_errors

HOSTILE = ('<a href="https://evil.example">Sign in</a> ![x](https://evil.example/i.png) [y](https://evil.example)'
           '\n# Head *em* _em_ `code` https://evil.example/bare www.evil.example $x$')
"""HTML and Markdown together: every element it could make names evil.example, a heading or emphasis."""
ANCHOR = '<a href="https://evil.example">Sign in</a>'
"""The part of :data:`HOSTILE` a message quotes whole when it quotes the value at all."""
_MARKDOWN = MarkdownIt("commonmark", {"html": True})


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def injected(shown: str) -> list[str]:
    """The elements the hostile value made in ``shown`` once rendered as Markdown with HTML."""
    parser = _Elements()
    parser.feed(_MARKDOWN.render(shown))
    made = []
    for tag, attrs in parser.tags:
        if any("evil" in (value or "") for value in attrs.values()) or tag in ("h1", "h2", "h3", "em", "img"):
            made.append(f"<{tag} {attrs}>")
    return made


def reads(shown: str) -> str:
    """The text a reader sees in ``shown`` rendered as Markdown with HTML."""
    parser = _Elements()
    parser.feed(_MARKDOWN.render(shown))
    return "".join(parser.text)


def as_page(headers: dict[str, str] | None = None, **kwargs: Any) -> gr.Request:
    """A request as the app's page sends it (or, with other headers, another caller)."""
    return gr.Request(headers=headers or {"x-gradio-user": "app"}, **kwargs)


class _Answering:
    """Inside: the code runs as if answering ``request`` (Gradio sets the same context var)."""

    def __init__(self, request: gr.Request) -> None:
        self.request = request

    def __enter__(self) -> None:
        self.token = LocalContext.request.set(self.request)

    def __exit__(self, *_: object) -> None:
        LocalContext.request.reset(self.token)


# --- the one rule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [HOSTILE, "<img src=https://evil.example/i.png>", "**bold** & <b>b</b>",
                                   "line\n===", "1. list", "| a | b |\n|---|---|", "a@evil.example", ""])
def test_as_text_shows_exactly_its_characters_in_markdown_and_html(value: str) -> None:
    shown = as_text(value)
    assert html.unescape(shown) == value, f"as_text changed the characters of {value!r}: {shown!r}"
    assert not injected(shown), f"{value!r} made elements: {injected(shown)}"
    assert reads(shown).strip() == value.strip(), f"a reader sees {reads(shown)!r}, not {value!r}"
    bare = re.sub(r"&#\d+;", "", shown)
    assert not set(bare) & set("<>[]()!#*_`$:@&"), f"markup characters are left in {shown!r}"


def test_an_error_is_escaped_for_the_page_and_literal_for_api_callers() -> None:
    @user_errors
    def refuse(value: str) -> None:
        raise ValueError(f"`value` has to be short, but is {value!r}")

    sentence = f"`value` has to be short, but is {HOSTILE!r}"
    callers = ((as_page(), True), (as_page({"x-gradio-user": "api"}), False), (as_page({"a": "b"}), False),
               (None, False))
    for request, escaped in callers:
        with _Answering(request), pytest.raises(gr.Error) as raised:
            refuse(HOSTILE)
        shown = raised.value.message
        assert (shown != sentence) == escaped, f"for {request and dict(request.headers)} the message is {shown!r}"
        assert html.unescape(shown) == sentence, f"the message lost its characters: {shown!r}"
        assert message(raised.value) == sentence, f"message() must give the sentence itself: {message(raised.value)!r}"
        assert not injected(shown) or not escaped, f"the page's message makes elements: {injected(shown)}"


# --- every URL key --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_views(tiny_gpt2_dir: Path) -> tuple[gr.Blocks, dict[str, deeplinks.TabView], Any]:
    """The whole app on the tiny GPT-2, its tabs' URL fields, and the handler that restores a link."""
    os.environ["STEPGEN_MODEL"] = str(tiny_gpt2_dir)
    import app

    views: dict[str, Any] = {}
    real = deeplinks.wire

    def spy(demo: gr.Blocks, model_state: Any, status: Any, tab_views: dict[str, Any], **more: Any) -> Any:
        views.update(tab_views)
        return real(demo, model_state, status, tab_views, **more)

    deeplinks.wire = spy
    try:
        demo = app.build_demo()
    finally:
        deeplinks.wire = real
    restore = next(dep.fn for dep in demo.fns.values() if getattr(dep.fn, "__name__", "") == "restore")
    return demo, {tab: deeplinks.tab_view(tab, built) for tab, built in views.items()}, restore


def url_keys(views: dict[str, deeplinks.TabView]) -> list[tuple[str, str]]:
    """(tab, key) for every key a link may carry: the reserved ones, then every tab's fields."""
    keys = [("next-token", "model"), ("next-token", "tab"), ("step", "path"), ("step", "branches")]
    return keys + [(tab, key) for tab, view in views.items() for key in view.fields]


def test_every_url_key_shows_a_hostile_value_as_text(app_views: Any, tiny_gpt2_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    demo, views, restore = app_views
    notices: list[str] = []
    monkeypatch.setattr(gr, "Warning", lambda text, *a, **k: notices.append(text))
    keys = url_keys(views)
    assert len(keys) > 20 and ("playground", "stop_strings") in keys, f"the app's URL keys were not all found: {keys}"
    wrong: list[str] = []
    for tab, key in keys:
        notices.clear()
        query = {"tab": HOSTILE} if key == "tab" else {"tab": tab, key: HOSTILE}
        request = as_page(query_params=query)
        with _Answering(request):
            out = restore(request, str(tiny_gpt2_dir))
        shown = list(notices)
        for component, value in (out.items() if isinstance(out, dict) else ()):
            if isinstance(component, (gr.Markdown, gr.HTML)):
                value = value.get("value") if isinstance(value, dict) else getattr(value, "value", value)
                shown.extend([value] if isinstance(value, str) else [])
        for text in shown:
            if injected(text):
                wrong.append(f"{key}: {injected(text)} in {text!r}")
        for text in notices:  # a notice that quotes the value quotes it whole
            if "evil" in reads(text) and ANCHOR not in reads(text) and repr(HOSTILE) not in reads(text):
                wrong.append(f"{key}: the notice shows {reads(text)!r}")
        if key in ("tab", "path", "branches") and not notices:
            wrong.append(f"{key}: a hostile value raised no notice")
        if key == "model" and not any("evil" in reads(text) for text in shown):  # said once, in the status line
            wrong.append(f"{key}: nothing on the page says the link's model could not be loaded")
    assert not wrong, "values from a link reached the page as markup:\n" + "\n".join(wrong)


# --- every endpoint parameter ---------------------------------------------------------------------------------


VALID: dict[str, Any] = {"prompt": "Hi", "text": "Hi", "other": "", "ids": [1], "max_new_tokens": 2,
                         "messages": [{"role": "user", "content": "Hi"}]}
"""A good value for each parameter an endpoint needs (or, for ``max_new_tokens``, one that keeps a run short)."""


def endpoints(demo: gr.Blocks) -> dict[str, Any]:
    return {dep.api_name: dep.fn for dep in demo.fns.values()
            if dep.api_name and getattr(dep, "api_visibility", "public") == "public"}


def test_every_endpoint_parameter_shows_a_hostile_value_as_text(app_views: Any) -> None:
    demo, _, _ = app_views
    found = endpoints(demo)
    assert {"next_token", "step", "generate", "tokenize", "load_model"} <= set(found), sorted(found)
    wrong: list[str] = []
    refused = 0
    for name, fn in found.items():
        for parameter in inspect.signature(fn).parameters.values():
            values = [HOSTILE, [HOSTILE]] if "list" in str(parameter.annotation) else [HOSTILE]
            if parameter.name == "messages":
                values = [[{"role": "user", "content": HOSTILE}], [{"role": HOSTILE, "content": "hi"}]]
            for value in values:
                given = {key: VALID[key] for key, p in inspect.signature(fn).parameters.items()
                         if key in VALID and (p.default is inspect.Parameter.empty or key == "prompt")}
                given[parameter.name] = value
                for request in (as_page(), as_page({"x-gradio-user": "api"})):
                    try:
                        with _Answering(request):
                            result = fn(**given)
                            if inspect.isgenerator(result):
                                list(result)
                        break  # accepted: no message to look at, and an API caller would get the same answer
                    except gr.Error as error:
                        refused += 1
                        shown, sentence = error.message, message(error)
                        if request.headers.get("x-gradio-user") == "api":
                            if shown != sentence:
                                wrong.append(f"/{name} {parameter.name}: the API gets {shown!r}, not {sentence!r}")
                        elif injected(shown) or reads(shown).strip() != sentence.strip():
                            wrong.append(f"/{name} {parameter.name}: the page reads {reads(shown)!r} and gets "
                                         f"{injected(shown)} for {sentence!r}")
    assert refused > 10, f"only {refused} hostile values were refused: the endpoints were not reached"
    assert not wrong, "endpoint messages reached the page as markup:\n" + "\n".join(wrong)


@pytest.mark.browser
def test_the_api_error_gives_a_hostile_value_as_its_characters(client: object) -> None:
    """Through a real server: gradio_client gets the sentence as it is, not escaped for a page."""
    for api_name, arguments in (("/next_token", {"prompt": "Hi", "model": HOSTILE}),
                                ("/generate", {"prompt": "Hi", "max_new_tokens": HOSTILE}),
                                ("/tokenize", {"text": "Hi", "model": HOSTILE})):
        with pytest.raises(Exception) as raised:
            client.predict(**arguments, api_name=api_name)
        assert ANCHOR in str(raised.value) or repr(HOSTILE) in str(raised.value), (
            f"{api_name} did not give the value as its characters: {raised.value}")
        assert "&#" not in str(raised.value), f"{api_name} sent a page's escaping to an API caller: {raised.value}"


# --- model names: allowlists, public hosts, the cache ---------------------------------------------------------


def _never(name: str, **_: object) -> object:
    raise AssertionError(f"nothing may be loaded, but {name!r} was")


def test_with_an_allowlist_a_path_outside_it_is_refused(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    allowed = str(tiny_gpt2_dir)
    models = registry.ModelRegistry(allowed=[allowed], loader=_never)
    for name in (str(tmp_path), str(tiny_gpt2_dir.parent), f"{allowed}/..", f"{allowed}/../{tiny_gpt2_dir.name}",
                 "../" + tiny_gpt2_dir.name, "./" + tiny_gpt2_dir.name, f"{tmp_path}/model.gguf"):
        with pytest.raises(ModelLoadError, match="not available here"):
            models.get(name)


@pytest.mark.parametrize(("env", "public"), [
    ({}, False), ({"GRADIO_SERVER_NAME": "127.0.0.1"}, False), ({"GRADIO_SERVER_NAME": "localhost"}, False),
    ({"GRADIO_SERVER_NAME": "::1"}, False), ({"GRADIO_SERVER_NAME": "0.0.0.0"}, True),
    ({"GRADIO_SERVER_NAME": "192.168.1.5"}, True), ({"SPACE_ID": "someone/stepgen"}, True),
])
def test_a_public_host_loads_only_the_offered_models_unless_opened(env: dict[str, str], public: bool,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("GRADIO_SERVER_NAME", "SPACE_ID", "STEPGEN_ALLOWED_MODELS", "STEPGEN_MODEL"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    assert registry.is_public() == public, f"{env} is {'not ' if public else ''}public"
    allowed = registry.allowed_from_env()
    if not public:
        assert allowed is None, f"a loopback host must stay open, but allows only {allowed}"
        return
    assert allowed is not None and set(registry.offered_names()) | {registry.default_model()} == set(allowed), allowed
    with pytest.raises(ModelLoadError, match="not available here"):
        registry.ModelRegistry(allowed=allowed, loader=_never).get("/etc")
    monkeypatch.setenv("STEPGEN_ALLOWED_MODELS", "*")
    assert registry.allowed_from_env() is None, "`*` must open a public host to any model"
    monkeypatch.setenv("STEPGEN_ALLOWED_MODELS", "gpt2")
    assert registry.allowed_from_env() == ("gpt2",), "the host's own list must win on a public host"


def test_a_public_host_still_serves_its_start_up_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SPACE_ID", "someone/stepgen")
    monkeypatch.delenv("STEPGEN_ALLOWED_MODELS", raising=False)
    monkeypatch.setenv("STEPGEN_MODEL", str(tmp_path))
    assert str(tmp_path) in (registry.allowed_from_env() or ()), "the host's start-up model must stay loadable"


def test_app_host_argument_makes_the_registry_public(monkeypatch: pytest.MonkeyPatch) -> None:
    import app

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.setattr(app, "get_model", lambda name: (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit):
        app.main(["--host", "0.0.0.0"])
    assert registry.is_public(), "`--host 0.0.0.0` listens beyond loopback, but the registry does not know it"


def test_trust_remote_code_is_never_enabled(tiny_gpt2_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    calls: list[dict[str, Any]] = []
    for auto in (transformers.AutoTokenizer, transformers.AutoModelForCausalLM):
        real = auto.from_pretrained.__func__

        def spy(cls: Any, *args: Any, _real: Any = real, **kwargs: Any) -> Any:
            calls.append(kwargs)
            return _real(cls, *args, **kwargs)

        monkeypatch.setattr(auto, "from_pretrained", classmethod(spy))
    loading.load_model(str(tiny_gpt2_dir))
    assert len(calls) == 2, f"expected a tokenizer and a model load, saw {len(calls)}"
    assert all(call.get("trust_remote_code") is False for call in calls), f"trust_remote_code in {calls}"
    source = Path(loading.__file__).read_text()
    assert "trust_remote_code=True" not in source, "the loading path enables remote code somewhere"


@pytest.mark.parametrize("file_name", ["..gguf", "...gguf", "..\\..\\win.gguf", " .gguf", "$(x);`y`.gguf",
                                       "\u202e.gguf"])
def test_the_warm_cache_stays_inside_its_folder(file_name: str, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The cache folder is named after the file, however the model name reaches it (``../``, absolute, odd names)."""
    root = tmp_path / "cache"
    monkeypatch.setenv("STEPGEN_CACHE_DIR", str(root))
    (tmp_path / "deep" / "er").mkdir(parents=True)
    gguf = tmp_path / "deep" / file_name
    gguf.write_bytes(b"GGUF")
    monkeypatch.chdir(tmp_path / "deep" / "er")
    for name in (str(gguf), f"../{file_name}", f"{tmp_path}/deep/er/../{file_name}", f"../../deep/{file_name}"):
        source, local, gguf_file = loading.resolve(name)
        assert source == "gguf", f"{name!r} is not read as a GGUF file: {source}"
        folder = loading.cache_folder(local / gguf_file)
        assert folder.resolve().parent == root.resolve(), f"the model {name!r} steers the warm cache to {folder}"
