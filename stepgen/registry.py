"""The models this process has loaded, shared by every session.

A model is loaded once per process, even when many sessions ask for it at the
same moment: the first asker loads it while the others wait for the same
object, or for the same error when the load fails (a later request tries
again). At most ``max_models`` stay loaded; the least recently used one is
dropped first. ``allowed`` refuses every other name before anything is read:
the host's ``STEPGEN_ALLOWED_MODELS`` (``*`` opens it to any name), else, on a
public host (a Space, or a server listening beyond loopback), the models it
offers, so that no visitor can make it read a local path or download a model.
It also says what a model picker should offer: with the hub switched off, what
can load first and the rest marked as needing the network (it reads
huggingface_hub's cache index, loads nothing).

This module neither knows how to load a model (:mod:`stepgen.loading`) nor
which model a session is looking at (that is the session's own state).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future

from stepgen.embedded import EMBEDDED_NAME, embedded_gguf, is_embedded
from stepgen.loading import NO_NAME, LoadedModel, ModelLoadError, Progress, hub_reachable, load_model

HUB_CHOICES = ("distilgpt2", "gpt2", "Qwen/Qwen2-0.5B", "HuggingFaceTB/SmolLM2-135M")
"""Hub models offered in the picker (any other causal LM id can be typed)."""

Loader = Callable[..., LoadedModel]

NEEDS_NETWORK = " (needs the network)"
"""How a picker marks a hub model that cannot load while the hub is switched off (it is not in the cache)."""


def cached_hub_models() -> list[str]:
    """The hub models already in huggingface_hub's local cache (they load without the network)."""
    from huggingface_hub import scan_cache_dir

    try:
        repos = scan_cache_dir().repos
    except Exception:  # no cache folder yet, or one huggingface_hub cannot read: nothing cached
        return []
    return sorted(repo.repo_id for repo in repos if repo.repo_type == "model")


def canonical(name: str) -> str:
    """One spelling per model, so that aliases share one loaded copy."""
    if not isinstance(name, str):
        raise ModelLoadError(f"`model` has to be a model name (text), but is {name!r}")
    name = name.strip()
    return EMBEDDED_NAME if is_embedded(name) else name


def default_model() -> str:
    """The start-up model: ``STEPGEN_MODEL``, else the embedded one when installed, else distilgpt2."""
    configured = os.environ.get("STEPGEN_MODEL", "").strip()
    if configured:
        return canonical(configured)
    return EMBEDDED_NAME if embedded_gguf() is not None else "distilgpt2"


OPEN = "*"
"""In ``STEPGEN_ALLOWED_MODELS``: any name may be loaded, even on a public host."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Addresses only this machine reaches."""


def offered_names() -> list[str]:
    """The models offered with no allowlist: the embedded one when installed, then :data:`HUB_CHOICES`."""
    names = [EMBEDDED_NAME] if embedded_gguf() is not None else []
    return names + [name for name in HUB_CHOICES if name not in names]


def is_public() -> bool:
    """True on a Space (``SPACE_ID``) or when the server listens beyond loopback (``GRADIO_SERVER_NAME``)."""
    host = os.environ.get("GRADIO_SERVER_NAME", "").strip().strip("[]").lower()
    return bool(os.environ.get("SPACE_ID", "").strip()) or host not in ("", *LOOPBACK)


def allowed_from_env() -> tuple[str, ...] | None:
    """The allowlist in ``STEPGEN_ALLOWED_MODELS`` (comma-separated; ``*`` means none), or None for no limit.

    Unset on a public host (:func:`is_public`), it is the offered models and the start-up one.
    """
    raw = os.environ.get("STEPGEN_ALLOWED_MODELS", "")
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if OPEN in parts:
        return None
    if not parts and is_public():
        parts = [default_model(), *offered_names()]
    names = tuple(dict.fromkeys(canonical(part) for part in parts))
    return names or None


def max_models_from_env(default: int = 2) -> int:
    raw = os.environ.get("STEPGEN_MAX_MODELS", "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"STEPGEN_MAX_MODELS has to be a positive integer, but is {raw!r}") from None
    if value < 1:
        raise ValueError(f"STEPGEN_MAX_MODELS has to be a positive integer, but is {value}")
    return value


class ModelRegistry:
    """Loaded models, at most ``max_models`` of them, each loaded once."""

    def __init__(
        self,
        *,
        max_models: int = 2,
        allowed: Iterable[str] | None = None,
        loader: Loader = load_model,
    ) -> None:
        if max_models < 1:
            raise ValueError(f"`max_models` has to be a positive integer, but is {max_models}")
        self.max_models = max_models
        self.allowed = None if allowed is None else tuple(canonical(name) for name in allowed)
        self._loader = loader
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, Future[LoadedModel]] = {}
        """Loads under way, by name: the askers who arrive meanwhile wait for their outcome."""

    def check_allowed(self, name: str) -> str:
        """The canonical name, or ModelLoadError when the allowlist refuses it."""
        key = canonical(name)
        if not key:
            raise ModelLoadError(NO_NAME)
        if self.allowed is not None and key not in self.allowed:
            raise ModelLoadError(
                f"'{name.strip()}' is not available here; this app serves only: {', '.join(self.allowed)}."
            )
        return key

    def choices(self) -> list[str]:
        """Names to offer in a model picker."""
        return list(self.allowed) if self.allowed is not None else offered_names()

    def offered(self) -> list[tuple[str, str]]:
        """(label, name) pairs for a model picker: with the hub switched off (``HF_HUB_OFFLINE``) or out of
        reach (:func:`~stepgen.loading.hub_reachable`), what can load first (the embedded model, models loaded
        or cached) and every other hub model marked as needing the network; online, the names of
        :meth:`choices`."""
        names = list(dict.fromkeys([*self.loaded(), *self.choices()]))
        if self.allowed is not None or hub_reachable():
            return [(name, name) for name in names]
        cached = set(cached_hub_models())
        ready = [name for name in names if name not in HUB_CHOICES or name in cached]
        ready += [name for name in sorted(cached) if name not in ready]
        return [(name, name) for name in ready] + [(name + NEEDS_NETWORK, name) for name in names
                                                   if name not in ready]

    def loaded(self) -> list[str]:
        """Names loaded now, least recently used first."""
        with self._lock:
            return list(self._models)

    def get(self, name: str, *, progress: Progress | None = None) -> LoadedModel:
        """The loaded model called ``name``, loading it first if need be.

        Askers who arrive while it is loading get the same model, or the same error: a failing load (the hub
        out of reach) then costs each of them one wait, not one attempt each in turn.
        """
        key = self.check_allowed(name)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            pending = self._loading.get(key)
            ours = pending is None
            if ours:
                pending = self._loading[key] = Future()
        if not ours:  # one load per model: wait for its model, or its error, rather than loading again
            return pending.result()
        try:
            loaded = self._loader(key, progress=progress)
        except BaseException as error:
            with self._lock:
                del self._loading[key]  # a request that comes later tries again
            pending.set_exception(error)
            raise
        with self._lock:
            self._models[key] = loaded
            self._models.move_to_end(key)
            while len(self._models) > self.max_models:
                self._models.popitem(last=False)
            del self._loading[key]
        pending.set_result(loaded)
        return loaded


_default: ModelRegistry | None = None
_default_lock = threading.Lock()


def get_registry() -> ModelRegistry:
    """The process-wide registry, configured from the environment on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ModelRegistry(max_models=max_models_from_env(), allowed=allowed_from_env())
        return _default


def get_model(name: str, *, progress: Progress | None = None) -> LoadedModel:
    """Shorthand for ``get_registry().get(name)``."""
    return get_registry().get(name, progress=progress)
