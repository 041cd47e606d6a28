"""The process-wide model store: one load per model, a bound, an allowlist."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from stepgen.embedded import EMBEDDED_LABEL
from stepgen.loading import ModelLoadError, load_model
from stepgen.registry import ModelRegistry, allowed_from_env, canonical, default_model, max_models_from_env


def test_many_sessions_asking_at_once_share_one_load(tiny_gpt2_dir: Path) -> None:
    calls: list[str] = []

    def counting_loader(name: str, **kwargs: object) -> object:
        calls.append(name)
        time.sleep(0.2)  # keep the door open for the other askers
        return load_model(name, **kwargs)

    registry = ModelRegistry(loader=counting_loader)
    results: list[object] = []
    threads = [threading.Thread(target=lambda: results.append(registry.get(str(tiny_gpt2_dir)))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [str(tiny_gpt2_dir)], f"expected one load, got {len(calls)}"
    assert len(results) == 8 and all(result is results[0] for result in results), "every session gets the same object"


def test_sessions_waiting_for_a_failing_load_share_its_error() -> None:
    """One load attempt, its error for everyone who waited for it, and a later request may try again."""
    calls: list[str] = []

    def failing_loader(name: str, **kwargs: object) -> object:
        calls.append(name)
        time.sleep(0.3)  # keep the door open for the other askers
        raise ModelLoadError("Cannot reach the Hugging Face Hub")

    registry = ModelRegistry(loader=failing_loader)
    errors: list[BaseException] = []
    waits: list[float] = []

    def ask() -> None:
        started = time.perf_counter()
        try:
            registry.get("someone/model")
        except ModelLoadError as error:
            errors.append(error)
        waits.append(time.perf_counter() - started)

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["someone/model"], f"expected one load attempt for six waiting sessions, got {len(calls)}"
    assert len(errors) == 6, f"every session must get the error, but {6 - len(errors)} did not"
    assert all("Cannot reach" in str(error) for error in errors), [str(error) for error in errors]
    assert max(waits) < 1.0, f"a waiting session waited {max(waits):.1f} s: it must not retry in turn"
    assert not registry._loading, f"the failed load left its lock behind: {list(registry._loading)}"
    with pytest.raises(ModelLoadError, match="Cannot reach"):
        registry.get("someone/model")
    assert len(calls) == 2, "a new request after the failure must try again"
    assert registry.loaded() == [], registry.loaded()


def test_least_recently_used_model_goes_first(tiny_gpt2_dir: Path, tiny_llama_dir: Path, tmp_path: Path) -> None:
    registry = ModelRegistry(max_models=2)
    a, b = str(tiny_gpt2_dir), str(tiny_llama_dir)
    copy = tmp_path / "copy"
    copy.mkdir()
    for item in tiny_gpt2_dir.iterdir():
        (copy / item.name).write_bytes(item.read_bytes())
    registry.get(a)
    registry.get(b)
    registry.get(a)  # a is now the most recent
    registry.get(str(copy))
    assert registry.loaded() == [a, str(copy)], registry.loaded()


def test_allowlist_refuses_other_models_before_reading_anything(tiny_gpt2_dir: Path) -> None:
    def loader(name: str, **kwargs: object) -> object:
        raise AssertionError(f"nothing should be loaded, but {name} was")

    registry = ModelRegistry(allowed=["embedded", "distilgpt2"], loader=loader)
    with pytest.raises(ModelLoadError, match="not available here; this app serves only: embedded, distilgpt2"):
        registry.get(str(tiny_gpt2_dir))
    assert registry.choices() == ["embedded", "distilgpt2"], "the picker offers only the allowed models"


def test_a_failed_load_leaves_the_loaded_models_serving(tiny_gpt2_dir: Path) -> None:
    registry = ModelRegistry()
    first = registry.get(str(tiny_gpt2_dir))
    with pytest.raises(ModelLoadError):
        registry.get("./missing-folder")
    assert registry.loaded() == [str(tiny_gpt2_dir)], registry.loaded()
    assert registry.get(str(tiny_gpt2_dir)) is first, "the loaded model must be served, not loaded again"


def test_environment_configures_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPGEN_ALLOWED_MODELS", f" {EMBEDDED_LABEL}, gpt2 ,,gpt2")
    assert allowed_from_env() == ("embedded", "gpt2"), allowed_from_env()
    monkeypatch.setenv("STEPGEN_MAX_MODELS", "0")
    with pytest.raises(ValueError, match="STEPGEN_MAX_MODELS has to be a positive integer, but is 0"):
        max_models_from_env()
    monkeypatch.setenv("STEPGEN_MODEL", "gpt2")
    assert default_model() == "gpt2", default_model()
    monkeypatch.delenv("STEPGEN_MODEL")
    assert default_model() == "embedded", "the embedded model is installed, so it is the default"
    assert canonical(EMBEDDED_LABEL) == "embedded", canonical(EMBEDDED_LABEL)


def test_offline_pickers_offer_what_can_load_and_mark_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    from stepgen import registry as registry_module

    monkeypatch.setattr(registry_module, "hub_reachable", lambda: False)
    monkeypatch.setattr(registry_module, "cached_hub_models", lambda: ["gpt2", "someone/cached-lm"])
    offered = ModelRegistry().offered()
    labels = dict((name, label) for label, name in offered)
    assert labels["gpt2"] == "gpt2" and labels["someone/cached-lm"] == "someone/cached-lm", (
        f"a cached hub model is marked as needing the network: {offered}")
    assert labels["distilgpt2"] == "distilgpt2" + registry_module.NEEDS_NETWORK, f"not marked: {offered}"
    marked = [index for index, (label, _) in enumerate(offered) if label.endswith(registry_module.NEEDS_NETWORK)]
    assert marked == list(range(len(offered) - len(marked), len(offered))), f"what can load comes first: {offered}"
    monkeypatch.setattr(registry_module, "hub_reachable", lambda: True)
    assert all(label == name for label, name in ModelRegistry().offered()), "online, nothing is marked"


def test_a_machine_with_no_network_marks_hub_models_without_being_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE unset, and the hub's address answers nothing: the picker marks the hub models all the
    same; once the hub answers (a local stand-in), nothing is marked."""
    import http.server
    import threading

    import huggingface_hub.constants as hub_constants

    from stepgen import loading
    from stepgen import registry as registry_module

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(loading, "_probes", {})
    monkeypatch.setattr(registry_module, "cached_hub_models", lambda: [])
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    labels = dict((name, label) for label, name in ModelRegistry().offered())
    assert labels["distilgpt2"] == "distilgpt2" + registry_module.NEEDS_NETWORK, labels
    assert labels["embedded"] == "embedded", labels

    class _Hub(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), _Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        assert loading.hub_reachable(), "the stand-in hub answered"
        assert all(label == name for label, name in ModelRegistry().offered()), "the hub answers: none marked"
        server.shutdown()
        server.server_close()
        assert loading.hub_reachable(), "a probe's answer is kept for a while (one probe a minute, not one a page)"
        monkeypatch.setattr(loading, "PROBE_KEPT_SECONDS", 0.0)
        assert not loading.hub_reachable(), "once it is old, the hub is probed again: gone now"
    finally:
        server.server_close()
