"""Work stops when nobody waits: cancelled and abandoned generations leave nothing behind.

A cancelled run is a ``gradio_client`` job cancelled mid-stream; an abandoned one is a caller that joins the
queue over plain HTTP, reads the stream until tokens flow, and hangs up (what a closed browser tab does to the
server). After three of each to warm up (the thread pools of Gradio and the client grow to their working size)
and twenty more of each, no generate() worker is left, the sampling lock is free, no thread is left and the
process's threads (outside bounded pools and the native threads torch gives a pooled thread) and memory are
within 10 % of where they started, and a seeded sampling run still gives the same text.
Waits follow the server's own events (the worker threads ending), bounded so that a hang fails.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from pathlib import Path

import httpx
import torch

from stepgen import generation
from stepgen.loadbench import server_figures

PROMPT = "It was a dark and stormy night; the"
LONG = {"max_new_tokens": 1000, "min_new_tokens": 1000}
SEEDED = {"max_new_tokens": 12, "do_sample": True, "seed": 11, "temperature": 1.3}
RUNS = 20
WARM_UP = 3


POOLS = ("ThreadPoolExecutor-", "AnyIO worker thread", "tqdm_monitor")
"""Threads of bounded pools (Python's executors, AnyIO's workers, tqdm's monitor): they grow to their working size
and then stay, up to their limit, which is no leak; every other thread counts."""


def _threads() -> tuple[int, set[str], int]:
    """The process's threads outside those pools (native ones included), the names of its own Python ones, and
    how many pooled Python threads there are."""
    python = threading.enumerate()
    pooled = sum(thread.name.startswith(POOLS) for thread in python)
    own = {thread.name for thread in python if not thread.name.startswith(POOLS)}
    return int(server_figures(os.getpid())["threads"]) - pooled, own, pooled


def _workers() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "stepgen-generate"]


def _ended(what: str) -> None:
    for worker in _workers():
        worker.join(timeout=10)
    assert not _workers(), f"generate() workers outlived {what}: {_workers()}"


def abandon(client: object, **arguments: object) -> None:
    """Start ``/generate`` as a browser would, read its stream until a token arrives, then hang up."""
    from gradio_client import utils

    fn_index = client._infer_fn_index("/generate", None)
    endpoint = client.endpoints[fn_index]
    data = utils.construct_args(endpoint.parameters_info, (), arguments)
    session = secrets.token_hex(6)
    with httpx.Client(timeout=30) as http:
        joined = http.post(client.sse_data_url, json={"data": data, "fn_index": fn_index, "session_hash": session})
        assert joined.status_code == 200, f"joining the queue failed: {joined.status_code} {joined.text}"
        with http.stream("GET", client.sse_url, params={"session_hash": session}) as events:
            for line in events.iter_lines():
                if line.startswith("data:") and json.loads(line[5:]).get("msg") == "process_generating":
                    return  # leaving the block closes the connection mid-run
                assert "process_completed" not in line, f"the run ended before it could be abandoned: {line}"


def _rounds(client: object, model: str, runs: int) -> None:
    """``runs`` cancelled runs, then ``runs`` abandoned ones, each ended before the next starts."""
    for _ in range(runs):
        job = client.submit(prompt=PROMPT, model=model, api_name="/generate", **LONG)
        for update in job:  # the first streamed update: the run is under way
            if update.get("status") == "running":
                break
        job.cancel()
        _ended("a cancelled run")
    for _ in range(runs):
        abandon(client, prompt=PROMPT, model=model, **LONG)
        _ended("an abandoned run")


def test_cancelled_and_abandoned_runs_leave_nothing_behind(client: object, long_tiny_dir: Path) -> None:
    model = str(long_tiny_dir)
    first = client.predict(prompt=PROMPT, api_name="/generate", **SEEDED)["sequences"][0]["token_ids"]
    _rounds(client, model, WARM_UP)  # the thread pools of Gradio and the client grow to their working size
    start, (threads, names, _) = server_figures(os.getpid()), _threads()
    _rounds(client, model, RUNS)
    assert not generation._SAMPLING_LOCK.locked(), "the sampling lock is still held"
    for thread in threading.enumerate():  # one still winding down (a stream's heartbeat) gets its time to end
        if thread.name not in names and not thread.name.startswith(POOLS):
            thread.join(timeout=10)
    end, (threads_after, names_after, pooled) = server_figures(os.getpid()), _threads()
    assert names_after <= names, f"threads the runs left behind: {sorted(names_after - names)}"
    # A pooled thread that runs the model for the first time gets torch's own team of native threads (one
    # fewer than torch's thread count): bounded by the pools, it is no leak. One thread left per run is.
    allowance = threads * 0.1 + pooled * (torch.get_num_threads() - 1)
    assert 2 * RUNS > allowance, f"a leak of a thread per run ({2 * RUNS}) would pass within {allowance:.1f}"
    assert threads_after <= threads + allowance, (
        f"threads outside the pools grew from {threads} to {threads_after} over the runs (allowed: "
        f"{allowance:.1f}): {sorted(t.name for t in threading.enumerate())}")
    assert end["rss_mb"] <= start["rss_mb"] * 1.1, (f"memory grew from {start['rss_mb']:.0f} MB to "
                                                    f"{end['rss_mb']:.0f} MB over the runs")
    again = client.predict(prompt=PROMPT, api_name="/generate", **SEEDED)["sequences"][0]["token_ids"]
    assert again == first, f"the seeded run wrote {again} after the abandoned runs, {first} before them"
