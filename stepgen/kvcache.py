"""A shared, prefix-keyed store of KV caches: the model never re-reads a text it has seen.

:meth:`KVStore.logits` returns the model's last logits for a list of token ids.
When the store holds a sequence sharing a prefix with the request (the request
extends it, equals it, or is a prefix of it, or forks from it), that sequence's
KV cache is reused and only the tokens after the shared prefix go through the
model. Stepping one token at a time, undoing and branching therefore cost one
token's forward pass each, whatever the length of the text.

How caches are shared without copying: transformers' ``DynamicLayer.update``
concatenates into *new* tensors and ``crop`` only re-slices, so a stored cache
is never written to. A request works on a shallow copy of the stored cache
(new layer objects pointing at the same tensors, cropped by view), and the
entry it produces either owns fresh tensors or views of an entry it is a
prefix of. Memory is counted per tensor storage, so shared storage counts once.

The store is bounded by a memory budget in bytes (``STEPGEN_KV_BUDGET_MB``,
default 512): the least recently used entries go first, and an evicted
sequence is simply recomputed next time. It is thread-safe (forward passes run
outside the lock) and keyed per loaded model. It keeps token ids, caches and
logits only: it knows nothing of settings, sampling or text.

Just over the ~300-line guide: the store, its byte budget and its eviction are
one idea.
"""

from __future__ import annotations

import copy
import inspect
import math
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

DEFAULT_BUDGET_MB = 512

ModelKey = tuple[str, int]


@dataclass(frozen=True)
class Lookup:
    """The answer to one request: the logits and how much work the cache saved."""

    logits: torch.Tensor
    """The model's logits for the token after the ids, shape (vocab,), float32 (a private copy)."""
    reused: int
    """Tokens whose cached keys and values were reused."""
    computed: int
    """Tokens that went through the model for this request (0 when the answer was stored)."""


class _Entry:
    """One cached sequence: its ids, a cache covering all of them, and its last logits."""

    __slots__ = ("model_key", "ids", "array", "cache", "logits", "storages")

    def __init__(self, model_key: ModelKey, ids: tuple[int, ...], cache: Any, logits: torch.Tensor) -> None:
        self.model_key = model_key
        self.ids = ids
        self.array = np.asarray(ids, dtype=np.int64)
        self.cache = cache
        self.logits = logits
        self.storages = _storages(cache, logits)


def _storages(cache: Any, logits: torch.Tensor) -> dict[tuple[torch.device, int], int]:
    """The distinct tensor storages an entry keeps alive, with their sizes in bytes."""
    found: dict[tuple[torch.device, int], int] = {}
    tensors = [logits]
    for layer in getattr(cache, "layers", []):
        tensors.extend(t for t in (getattr(layer, "keys", None), getattr(layer, "values", None)) if t is not None)
    for tensor in tensors:
        storage = tensor.untyped_storage()
        found[(tensor.device, storage.data_ptr())] = storage.nbytes()
    return found


def budget_from_env(default_mb: int = DEFAULT_BUDGET_MB) -> int:
    """The budget in bytes from ``STEPGEN_KV_BUDGET_MB`` (megabytes, 0 switches caching off).

    ``float`` also reads ``inf`` and ``nan``; neither is a budget (an endless one would keep every cache), so
    they are refused with the rest, as is a number whose bytes overflow a float.
    """
    raw = os.environ.get("STEPGEN_KV_BUDGET_MB", "").strip()
    if not raw:
        return default_mb * 2**20
    try:
        nbytes = float(raw) * 2**20
    except ValueError:
        nbytes = math.nan
    if not (math.isfinite(nbytes) and nbytes >= 0):
        raise ValueError(f"STEPGEN_KV_BUDGET_MB has to be a finite number of megabytes >= 0, but is {raw!r}")
    return int(nbytes)


def _reusable(cache: Any) -> bool:
    """Caches we know how to share: dynamic layers that grow by concatenation."""
    layers = getattr(cache, "layers", None)
    return isinstance(cache, DynamicCache) and bool(layers) and all(
        type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers
    )


def _croppable(cache: Any) -> bool:
    """Sliding windows forget old tokens, so only plain dynamic layers can be cut back."""
    return all(type(layer) is DynamicLayer for layer in cache.layers)


def _fork(cache: Any, keep: int) -> Any:
    """A cache for the first ``keep`` tokens of ``cache`` that shares its tensors and never writes to them."""
    forked = copy.copy(cache)
    forked.layers = [copy.copy(layer) for layer in cache.layers]
    length = cache.get_seq_length()
    if keep < length:
        forked.crop(keep - length)  # transformers 5: a negative count of tokens to remove
    return forked


def _common_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(a.size, b.size)
    if n == 0:
        return 0
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if differ.size else n


class KVStore:
    """KV caches of token sequences, shared by every session and API call."""

    def __init__(self, budget_bytes: int | None = None) -> None:
        budget = budget_from_env() if budget_bytes is None else budget_bytes
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
            raise ValueError(f"`budget_bytes` has to be an integer >= 0, but is {budget!r}")
        self.budget_bytes = budget
        self._entries: OrderedDict[tuple[ModelKey, tuple[int, ...]], _Entry] = OrderedDict()
        self._by_model: dict[ModelKey, dict[tuple[int, ...], _Entry]] = {}
        self._storage_refs: dict[tuple[torch.device, int], list[int]] = {}  # key -> [bytes, entries using it]
        self._bytes = 0
        self._lock = threading.Lock()
        self._watched: set[ModelKey] = set()
        self.stats = {"hits": 0, "reuses": 0, "misses": 0, "evictions": 0}

    # --- what callers use ------------------------------------------------------

    @property
    def nbytes(self) -> int:
        """Bytes held now (each tensor storage counted once)."""
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            for key in list(self._entries):
                self._remove(key)

    @torch.no_grad()
    def logits(self, loaded: Any, ids: list[int] | tuple[int, ...]) -> Lookup:
        """The logits for the token after ``ids``, reusing the longest cached prefix."""
        request = tuple(int(i) for i in ids)
        if not request:
            raise ValueError("`ids` has to hold at least one token id, but is empty")
        model_key = self._model_key(loaded)
        with self._lock:
            exact = self._entries.get((model_key, request))
            if exact is not None:
                self._entries.move_to_end((model_key, request))
                self.stats["hits"] += 1
                return Lookup(exact.logits.clone(), reused=len(request), computed=0)
            source, shared = self._best_source(model_key, request)
            cache, reuse = None, 0
            if source is not None:
                reuse = min(shared, len(request) - 1)
                cache = _fork(source.cache, reuse)
                self._entries.move_to_end((model_key, source.ids))
            self.stats["reuses" if reuse else "misses"] += 1

        model = loaded.model
        new = torch.tensor([request[reuse:]], device=loaded.device)
        kwargs: dict[str, Any] = {"use_cache": True}
        if cache is not None:
            kwargs["past_key_values"] = cache
        if _takes_logits_to_keep(model):
            kwargs["logits_to_keep"] = 1
        out = model(input_ids=new, **kwargs)
        logits = out.logits[0, -1].to(dtype=torch.float32, copy=True)
        produced = out.past_key_values
        if self.budget_bytes and _reusable(produced):
            self._store(model_key, request, produced, logits, source)
        return Lookup(logits.clone(), reused=reuse, computed=len(request) - reuse)

    # --- inside the lock -------------------------------------------------------

    def _best_source(self, model_key: ModelKey, request: tuple[int, ...]) -> tuple[_Entry | None, int]:
        """The cached sequence sharing the longest prefix with ``request`` (and that length)."""
        entries = self._by_model.get(model_key, {})
        parent = entries.get(request[:-1])  # the usual case: one step past a cached sequence
        if parent is not None:
            return parent, len(parent.ids)
        wanted = np.asarray(request, dtype=np.int64)
        best, best_len = None, 0
        for entry in entries.values():
            shared = _common_prefix(entry.array, wanted)
            if shared == len(entry.ids) or _croppable(entry.cache):
                usable = shared
            else:
                usable = 0  # a sliding-window cache can only be extended, not cut back
            # on a tie prefer the shorter sequence: it is then a prefix of the request and can be dropped
            if usable > best_len or (usable and usable == best_len and len(entry.ids) < len(best.ids)):
                best, best_len = entry, usable
        return best, best_len

    def _store(self, model_key: ModelKey, request: tuple[int, ...], produced: Any, logits: torch.Tensor,
               source: _Entry | None) -> None:
        with self._lock:
            if (model_key, request) in self._entries:
                self._entries.move_to_end((model_key, request))
                return
            cache = produced
            if source is not None and len(source.ids) > len(request) and source.ids[: len(request)] == request \
                    and (model_key, source.ids) in self._entries:
                # a prefix of a cached sequence (undo, going back): views of its tensors cost nothing
                cache = _fork(source.cache, len(request))
            self._add(_Entry(model_key, request, cache, logits))
            if source is not None and len(source.ids) < len(request) and request[: len(source.ids)] == source.ids:
                # the source is now a prefix of the new entry, which can answer for it
                self._remove((model_key, source.ids))
            self._evict()

    def _add(self, entry: _Entry) -> None:
        key = (entry.model_key, entry.ids)
        self._entries[key] = entry
        self._by_model.setdefault(entry.model_key, {})[entry.ids] = entry
        for storage, size in entry.storages.items():
            ref = self._storage_refs.get(storage)
            if ref is None:
                self._storage_refs[storage] = [size, 1]
                self._bytes += size
            else:
                ref[1] += 1

    def _remove(self, key: tuple[ModelKey, tuple[int, ...]]) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        model_entries = self._by_model.get(entry.model_key, {})
        model_entries.pop(entry.ids, None)
        if not model_entries:
            self._by_model.pop(entry.model_key, None)
        for storage in entry.storages:
            ref = self._storage_refs[storage]
            ref[1] -= 1
            if ref[1] == 0:
                self._bytes -= ref[0]
                del self._storage_refs[storage]

    def _evict(self) -> None:
        while self._bytes > self.budget_bytes and self._entries:
            self._remove(next(iter(self._entries)))
            self.stats["evictions"] += 1

    def _model_key(self, loaded: Any) -> ModelKey:
        key = (str(loaded.name), id(loaded.model))
        with self._lock:
            if key not in self._watched:
                # a model that is dropped takes its caches with it (and its id can never be mistaken for another's)
                self._watched.add(key)
                weakref.finalize(loaded.model, self._forget_model, key)
        return key

    def _forget_model(self, model_key: ModelKey) -> None:
        with self._lock:
            for ids in list(self._by_model.get(model_key, {})):
                self._remove((model_key, ids))
            self._watched.discard(model_key)


def _takes_logits_to_keep(model: Any) -> bool:
    cached = getattr(model, "_stepgen_logits_to_keep", None)
    if cached is None:
        cached = "logits_to_keep" in inspect.signature(model.forward).parameters
        try:
            model._stepgen_logits_to_keep = cached
        except AttributeError:
            pass
    return cached


_default: KVStore | None = None
_default_lock = threading.Lock()


def get_store() -> KVStore:
    """The process-wide store (budget from ``STEPGEN_KV_BUDGET_MB``), shared by the UI and the API."""
    global _default
    with _default_lock:
        if _default is None:
            _default = KVStore()
        return _default
