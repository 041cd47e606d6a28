"""Loading models from folders, GGUF files and the hub, and every way that fails."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
import torch

from stepgen import loading
from stepgen.loading import ModelLoadError, load_model, resolve


def test_folder_model_loads_in_eval_mode_with_its_facts(tiny_gpt2_dir: Path) -> None:
    loaded = load_model(str(tiny_gpt2_dir))
    assert loaded.source == "folder", loaded.source
    assert not loaded.model.training, "the model must be in eval mode"
    assert loaded.device == torch.device("cpu"), loaded.device
    assert loaded.context_length == 128, loaded.context_length
    assert loaded.special_tokens["eos"] == (0, "<|endoftext|>"), loaded.special_tokens
    assert loaded.has_chat_template is False, "the tiny GPT-2 has no chat template"
    assert loaded.vocab_size == len(loaded.tokenizer), (loaded.vocab_size, len(loaded.tokenizer))


def test_llama_folder_knows_its_chat_template(tiny_llama: object) -> None:
    assert tiny_llama.has_chat_template is True, "the tiny Llama's tokenizer carries a chat template"
    assert tiny_llama.special_tokens["bos"] == (1, "<s>"), tiny_llama.special_tokens


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "No model name given"),
        ("   ", "No model name given"),
        ("./no/such/folder", "No file or folder at './no/such/folder'"),
        ("/definitely/missing.gguf", "No file or folder"),
        ("not a model!!", "neither a local folder"),
        ("/" + "a" * 300, "No file or folder at '/aaa"),  # longer than a file name may be
        ("./a\x00b", "No file or folder at"),  # a NUL byte
        ("./\ud83d.gguf", "No file or folder at"),  # a lone surrogate
        ("a" * 300, "not in the local cache"),  # a hub id, as far as its letters go
        ("~0", "No file or folder at '~0'"),  # the home of a user who does not exist
    ],
)
def test_impossible_names_are_refused_with_a_reason(name: str, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        load_model(name)


def test_folder_without_a_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="holds no model"):
        load_model(str(tmp_path))


def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model" * 10)
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        load_model(str(fake))


def test_a_truncated_gguf_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 40)
    with pytest.raises(ModelLoadError, match="Could not load 'broken.gguf'|Could not load .*broken.gguf"):
        load_model(str(broken))


def test_a_folder_with_a_corrupt_checkpoint_is_refused(tmp_path: Path, tiny_gpt2_dir: Path) -> None:
    for item in tiny_gpt2_dir.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelLoadError, match="Could not load"):
        load_model(str(tmp_path))


def test_hub_id_while_offline_is_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE=1"):
        load_model("distilgpt2")


def test_hub_out_of_reach_is_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hub_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(ModelLoadError, match="Cannot reach the Hugging Face Hub"):
        load_model("someone/some-model")


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_unknown_hub_id_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants as hub_constants

    server = http.server.HTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(ModelLoadError, match="No public model called 'nobody/no-such-model'"):
            load_model("nobody/no-such-model")
    finally:
        server.shutdown()


def test_resolve_tells_kinds_apart(tiny_gpt2_dir: Path) -> None:
    assert resolve(str(tiny_gpt2_dir))[0] == "folder", resolve(str(tiny_gpt2_dir))
    assert resolve("distilgpt2") == ("hub", None, None), resolve("distilgpt2")
    assert resolve("Qwen/Qwen2-0.5B") == ("hub", None, None), resolve("Qwen/Qwen2-0.5B")


def test_a_failed_cache_write_leaves_no_partial_copy(tiny_gpt2_dir: Path, tmp_path: Path) -> None:
    """A full disk must not leave a half-written copy behind: every launch would retry and add another."""
    loaded = load_model(str(tiny_gpt2_dir))

    def disk_full(folder: object, **kwargs: object) -> None:
        (Path(folder) / "model.safetensors").write_bytes(b"\x00" * 1000)  # part of the weights made it
        raise OSError(28, "No space left on device")

    loaded.model.save_pretrained = disk_full
    target = tmp_path / "cache" / "model-v1"
    loading._write_cache(loaded.model, loaded.tokenizer, target, lambda message: None)
    assert not target.exists(), "a failed write must not leave a cache that looks usable"
    left = [item.name for item in target.parent.iterdir()]
    assert left == [], f"the failed write left {left} in the cache folder"


@pytest.mark.slow
def test_embedded_model_completes_a_fact(embedded: object) -> None:
    tokenizer, model = embedded.tokenizer, embedded.model
    inputs = tokenizer("The capital of France is", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=8, do_sample=False)
    text = tokenizer.decode(out[0, inputs["input_ids"].shape[1]:])
    assert "paris" in text.lower(), f"expected Paris in the continuation, got {text!r}"
    assert embedded.source == "embedded" and embedded.has_chat_template, (embedded.source, embedded.has_chat_template)
    assert embedded.context_length == 8192, embedded.context_length


@pytest.mark.slow
def test_embedded_model_warm_start_gives_the_same_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In an empty cache folder the first load dequantises and writes the cache; the second reads it."""
    monkeypatch.setenv("STEPGEN_CACHE_DIR", str(tmp_path))
    embedded = load_model("embedded")
    assert not embedded.from_cache, f"the first load into the empty {tmp_path} cannot come from a cache"
    assert list(tmp_path.glob("*/done")), f"the first load did not write a complete cache in {tmp_path}"
    warm = load_model("embedded")
    assert warm.from_cache, f"the second load should come from the warm cache in {tmp_path}"
    assert not list(tmp_path.glob(".partial-*")), "no half-written cache is left behind"
    ids = embedded.tokenizer("It was a dark and stormy", return_tensors="pt")["input_ids"]
    warm_ids = warm.tokenizer("It was a dark and stormy", return_tensors="pt")["input_ids"]
    assert warm_ids.tolist() == ids.tolist(), "the cached tokenizer must give the same ids"
    with torch.no_grad():
        cold_logits = embedded.model(ids).logits
        warm_logits = warm.model(ids).logits
    assert torch.equal(cold_logits, warm_logits), "the cached model must compute exactly the same logits"
