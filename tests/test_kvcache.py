"""The prefix-keyed KV store: cached logits equal a full recompute, reuse happens, the budget holds.

Tolerance: logits from a reused cache differ from a full forward pass only by
float32 rounding of a different summation order (we see about 3e-6 on the tiny
models); we allow 1e-4 on logits, and require identical argmax ids elsewhere.
"""

from __future__ import annotations

import threading

import pytest
import torch

from stepgen.kvcache import KVStore, budget_from_env

TOLERANCE = 1e-4
PROMPT = "It was a dark and stormy night; the rain fell in torrents"


def _full(loaded: object, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return loaded.model(torch.tensor([ids])).logits[0, -1].float()


def _close(loaded: object, store: KVStore, ids: list[int]) -> tuple[int, int]:
    lookup = store.logits(loaded, ids)
    gap = float((lookup.logits - _full(loaded, ids)).abs().max())
    assert gap < TOLERANCE, f"cached logits for {len(ids)} ids differ from a full recompute by {gap}"
    return lookup.reused, lookup.computed


def test_extend_equal_prefix_and_fork_reuse_the_cache(tiny: object) -> None:
    store = KVStore(2**26)
    ids = tiny.tokenizer(PROMPT)["input_ids"]
    n = len(ids)
    assert _close(tiny, store, ids) == (0, n), "a first request computes every token"
    assert _close(tiny, store, ids + [7]) == (n, 1), "extending by one token runs one token"
    assert _close(tiny, store, ids + [7, 9, 11]) == (n + 1, 2), "extending by two runs two"
    assert _close(tiny, store, ids + [7, 9, 11]) == (n + 3, 0), "an equal request is answered from the store"
    assert _close(tiny, store, ids[:5]) == (4, 1), "a prefix (undo) runs only its last token"
    assert _close(tiny, store, ids[:5]) == (5, 0), "a prefix asked for again is answered from the store"
    assert _close(tiny, store, ids + [8]) == (n, 1), "a fork reuses the shared prefix"
    assert store.stats["misses"] == 1, f"only the first request should miss the store: {store.stats}"


def test_a_long_walk_of_steps_matches_full_recompute(tiny_llama: object) -> None:
    store = KVStore(2**26)
    ids = tiny_llama.tokenizer(PROMPT)["input_ids"]
    for _ in range(40):
        logits = store.logits(tiny_llama, ids).logits
        ids = ids + [int(logits.argmax())]
    assert _close(tiny_llama, store, ids)[1] == 1, "the last step of a walk should compute only its new token"
    assert len(store) == 1, f"stepping along one path keeps one entry, not {len(store)}"


def test_stored_caches_are_never_written_by_later_requests(tiny_gpt2: object) -> None:
    store = KVStore(2**26)
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    store.logits(tiny_gpt2, ids + [3, 4, 5])
    store.logits(tiny_gpt2, ids)  # a view of the longer entry
    for token in (6, 7, 8):  # forks from the shared prefix, each writing its own token
        _close(tiny_gpt2, store, ids + [token])
    _close(tiny_gpt2, store, ids + [3, 4, 5])
    _close(tiny_gpt2, store, ids + [3, 4, 5, 6])


def test_memory_stays_within_the_budget_and_evicted_sequences_come_back(tiny_gpt2: object) -> None:
    probe = KVStore(2**26)
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    probe.logits(tiny_gpt2, ids)
    one = probe.nbytes
    store = KVStore(int(one * 3.5))
    paths = [[token] + ids for token in range(10)]  # share no prefix: each needs its own cache
    for path in paths:
        store.logits(tiny_gpt2, path)
        assert store.nbytes <= store.budget_bytes, f"{store.nbytes} bytes held, budget {store.budget_bytes}"
    assert store.stats["evictions"] >= 6 and len(store) <= 3, (store.stats, len(store))
    assert _close(tiny_gpt2, store, paths[0]) == (0, len(paths[0])), "an evicted sequence is recomputed"
    assert store.nbytes <= store.budget_bytes, f"{store.nbytes} bytes held after recomputing, budget {store.budget_bytes}"


def test_shared_storage_is_counted_once(tiny_gpt2: object) -> None:
    store = KVStore(2**26)
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    store.logits(tiny_gpt2, ids)
    whole = store.nbytes
    store.logits(tiny_gpt2, ids[:-2])  # views of the entry above, plus its own logits
    logits_bytes = tiny_gpt2.vocab_size * 4
    assert store.nbytes == whole + logits_bytes, (store.nbytes, whole, logits_bytes)
    store.clear()
    assert store.nbytes == 0 and len(store) == 0, f"clear() left {len(store)} entries, {store.nbytes} bytes"


def test_a_zero_budget_caches_nothing_but_answers(tiny_gpt2: object) -> None:
    store = KVStore(0)
    ids = tiny_gpt2.tokenizer(PROMPT)["input_ids"]
    assert _close(tiny_gpt2, store, ids) == (0, len(ids)), "with no budget every token is computed"
    assert _close(tiny_gpt2, store, ids + [3]) == (0, len(ids) + 1), "with no budget nothing may be reused"
    assert len(store) == 0 and store.nbytes == 0, f"a zero budget kept {len(store)} entries, {store.nbytes} bytes"


def test_models_are_kept_apart(tiny_gpt2: object, tiny_llama: object) -> None:
    store = KVStore(2**26)
    ids = [5, 6, 7, 8, 9]
    _close(tiny_gpt2, store, ids)
    assert _close(tiny_llama, store, ids) == (0, 5), "one model's cache served another"


def test_many_threads_share_one_store(tiny_llama: object) -> None:
    store = KVStore(2**22)
    base = tiny_llama.tokenizer(PROMPT)["input_ids"]
    failures: list[str] = []

    def walk(seed: int) -> None:
        ids = [seed + 3] + base
        for step in range(6):
            lookup = store.logits(tiny_llama, ids)
            gap = float((lookup.logits - _full(tiny_llama, ids)).abs().max())
            if gap >= TOLERANCE:
                failures.append(f"thread {seed} step {step}: {gap}")
            ids = ids + [int(lookup.logits.argmax())]
            if store.nbytes > store.budget_bytes:
                failures.append(f"over budget: {store.nbytes}")

    threads = [threading.Thread(target=walk, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures


def test_budget_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEPGEN_KV_BUDGET_MB", "1.5")
    assert budget_from_env() == int(1.5 * 2**20), f"1.5 MB is {int(1.5 * 2**20)} bytes, not {budget_from_env()}"
    monkeypatch.setenv("STEPGEN_KV_BUDGET_MB", "0")
    assert budget_from_env() == 0, "0 switches caching off"
    for raw in ("inf", "nan", "-inf", "1e308", "-1", "lots"):
        monkeypatch.setenv("STEPGEN_KV_BUDGET_MB", raw)
        refused = rf"STEPGEN_KV_BUDGET_MB has to be a finite number of megabytes >= 0, but is '{raw}'"
        with pytest.raises(ValueError, match=refused):
            budget_from_env()
    with pytest.raises(ValueError, match="`budget_bytes` has to be an integer >= 0"):
        KVStore(-1)


def test_an_empty_request_is_refused(tiny_gpt2: object) -> None:
    with pytest.raises(ValueError, match="`ids` has to hold at least one token id"):
        KVStore(2**20).logits(tiny_gpt2, [])


@pytest.mark.slow
def test_embedded_cached_steps_equal_full_recompute(embedded: object) -> None:
    store = KVStore(2**28)
    ids = embedded.tokenizer("It was a dark and stormy night; the rain fell in torrents")["input_ids"]
    for _ in range(10):
        lookup = store.logits(embedded, ids)
        ids = ids + [int(lookup.logits.argmax())]
    for request in (ids, ids[:-4], ids[:-4] + [42]):
        lookup = store.logits(embedded, request)
        gap = float((lookup.logits - _full(embedded, request)).abs().max())
        assert gap < TOLERANCE, f"cached logits differ from a full recompute by {gap} at {len(request)} tokens"
        assert lookup.computed == 1, f"a cached step should compute one token, not {lookup.computed}"
