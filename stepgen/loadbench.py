"""``python -m stepgen.bench --load``: the whole app under many users at once, measured from outside.

The app (``app.py``) is started as a child process on loopback, on a free port,
and driven through its JSON endpoints with ``gradio_client`` (a client package;
``gradio`` itself is never imported here, and the server is a separate process,
so that its memory and threads are its own). Three phases:

1. idle: one caller, one request at a time (``tokenize``, ``next_token``, ``step``);
2. long runs: the same caller while ``long_sessions`` sessions keep running
   long generations: interactive work should stay within 3 x its idle p95;
3. load: ``sessions`` sessions for ``seconds`` seconds, each mixing tokenize,
   next-token (short prompts and 1,000-token ids), steps and short generations,
   beside the long generations.

Everything is bounded: each session stops at the deadline or after
:data:`MAX_REQUESTS` requests, long runs are cancelled at the deadline, and the
server is stopped at the end whatever happened. The report gives p50/p95 per
endpoint, the errors (there should be none), and the server's memory (RSS) and
thread count before, at the peak and after, read from ``/proc`` (Linux).
This module only measures: it changes nothing in the app.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stepgen.bench import Figure

ROOT = Path(__file__).resolve().parent.parent
MAX_REQUESTS = 10_000
"""The most requests one session sends, whatever the duration."""
HTTP_TIMEOUT = 300.0
"""Seconds a client waits for an HTTP answer: a loaded server is slow, not failing (gradio_client's own 5 s
would count a slow answer as an error)."""
PROMPTS = ("It was a dark and stormy night; the", "The capital of France is", "Once upon a time",
           "def add(a, b):", "Tokens are")
TEXT = "It was a dark and stormy night; the rain fell in torrents, except at occasional intervals. "
INTERACTIVE = ("tokenize", "next_token", "step")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_figures(pid: int) -> dict[str, float]:
    """The process's resident memory (MB), thread count and CPU seconds so far, from ``/proc``."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {"rss_mb": int(fields["VmRSS"].split()[0]) / 1024, "threads": int(fields["Threads"]),
            "cpu_s": (int(stat[11]) + int(stat[12])) / ticks}


def connect(url: str) -> Any:
    """A ``gradio_client`` session on ``url`` that waits :data:`HTTP_TIMEOUT` for each answer."""
    from gradio_client import Client

    return Client(url, verbose=False, httpx_kwargs={"timeout": HTTP_TIMEOUT})


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


class Server:
    """``app.py`` in a child process on ``127.0.0.1`` and a free port; a context manager that always stops it."""

    def __init__(self, model: str, *, start_timeout: float = 300.0, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.model, self.start_timeout, self.env = model, start_timeout, env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **self.env}
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--model", self.model, "--host", "127.0.0.1",
             "--port", str(self.port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app ended before serving: {self.process.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError(f"the app did not serve within {self.start_timeout:.0f} s") from None
                time.sleep(0.25)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def figures(self) -> dict[str, float]:
        assert self.process is not None, "the server is not running"
        return server_figures(self.process.pid)


class Record:
    """Latencies and errors by endpoint, from many threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[str, list[float]] = {}
        self.errors: dict[str, list[str]] = {}

    def timed(self, name: str, call: Callable[[], Any]) -> None:
        started = time.perf_counter()
        try:
            call()
        except Exception as error:  # counted and reported: a load test must not stop at the first one
            with self.lock:
                self.errors.setdefault(name, []).append(f"{type(error).__name__}: {error}"[:300])
            return
        with self.lock:
            self.seconds.setdefault(name, []).append(time.perf_counter() - started)

    def summary(self) -> dict[str, dict[str, Any]]:
        names = sorted(set(self.seconds) | set(self.errors))
        return {name: {"count": len(self.seconds.get(name, [])), "errors": len(self.errors.get(name, [])),
                       "p50": percentile(self.seconds.get(name, []), 0.5),
                       "p95": percentile(self.seconds.get(name, []), 0.95),
                       "first_errors": self.errors.get(name, [])[:3]} for name in names}


def _calls(client: Any, long_ids: list[int], short_tokens: int) -> list[tuple[str, Callable[[], Any]]]:
    """One round of a session's mixed work, by endpoint name."""
    prompt = PROMPTS[int(time.perf_counter() * 1000) % len(PROMPTS)]
    return [
        ("tokenize", lambda: client.predict(text=prompt, api_name="/tokenize")),
        ("next_token", lambda: client.predict(prompt=prompt, api_name="/next_token")),
        ("next_token_1000_ids", lambda: client.predict(token_ids=long_ids, api_name="/next_token")),
        ("step", lambda: client.predict(prompt=prompt, strategy="sample", seed=3, api_name="/step")),
        ("generate_short", lambda: client.predict(prompt=prompt, max_new_tokens=short_tokens,
                                                  api_name="/generate")),
    ]


def _probe(client: Any, record: Record, rounds: int) -> None:
    """The interactive endpoints, one request at a time."""
    prompt = PROMPTS[0]
    for _ in range(rounds):
        record.timed("tokenize", lambda: client.predict(text=prompt, api_name="/tokenize"))
        record.timed("next_token", lambda: client.predict(prompt=prompt, api_name="/next_token"))
        record.timed("step", lambda: client.predict(prompt=prompt, strategy="greedy", api_name="/step"))


def _long_runs(url: str, record: Record, stop: threading.Event, long_tokens: int) -> None:
    """Long generations, one after another, until ``stop``; the one running then is cancelled."""
    client = connect(url)
    for _ in range(MAX_REQUESTS):
        if stop.is_set():
            return
        started = time.perf_counter()
        job = client.submit(prompt=PROMPTS[0], max_new_tokens=long_tokens, min_new_tokens=long_tokens,
                            api_name="/generate")
        while not job.done() and not stop.wait(0.1):
            pass
        if not job.done():
            job.cancel()
            return
        try:
            job.result()
        except Exception as error:  # counted like every other error
            with record.lock:
                record.errors.setdefault("generate_long", []).append(f"{type(error).__name__}: {error}"[:300])
            continue
        with record.lock:
            record.seconds.setdefault("generate_long", []).append(time.perf_counter() - started)


def _session(url: str, record: Record, deadline: float, long_ids: list[int], short_tokens: int,
             index: int) -> None:
    """Rounds of mixed work until ``deadline``; session ``index`` starts its rounds at the ``index``-th call, so
    that the sessions do not all ask for the same thing at once."""
    try:
        client = connect(url)
    except Exception as error:  # a session that cannot connect is an error of the load, not of this script
        with record.lock:
            record.errors.setdefault("connect", []).append(f"{type(error).__name__}: {error}"[:300])
        return
    sent = 0
    while time.monotonic() < deadline and sent < MAX_REQUESTS:
        calls = _calls(client, long_ids, short_tokens)
        shift = index % len(calls)
        for name, call in calls[shift:] + calls[:shift]:
            if time.monotonic() >= deadline:
                return
            record.timed(name, call)
            sent += 1


def _watch(server: Server, peak: dict[str, float], stop: threading.Event) -> None:
    """Keep the highest memory and thread count the server reaches, until ``stop``."""
    while not stop.wait(0.5):
        try:
            now = server.figures()
        except OSError:
            return
        peak["rss_mb"] = max(peak["rss_mb"], now["rss_mb"])
        peak["threads"] = max(peak["threads"], now["threads"])


def run_load(model: str = "embedded", *, sessions: int = 24, long_sessions: int = 4, seconds: float = 120.0,
             probe_rounds: int = 20, long_tokens: int = 400, short_tokens: int = 8,
             settle: float = 3.0) -> dict[str, Any]:
    """Start the app on ``model``, measure the three phases, stop it, and return the report (plain data)."""
    with Server(model) as server:  # the app as configured (its queue bound included)
        client = connect(server.url)
        long_ids = client.predict(text=TEXT * 60, api_name="/tokenize")["ids"][:1000]
        idle, with_long, load = Record(), Record(), Record()
        _probe(client, Record(), 2)  # warm-up: first calls compile and fill caches
        before = server.figures()
        peak = dict(before)
        watching = threading.Event()
        watcher = threading.Thread(target=_watch, args=(server, peak, watching), daemon=True)
        watcher.start()
        _probe(client, idle, probe_rounds)

        stop_long = threading.Event()
        long_threads = [threading.Thread(target=_long_runs, args=(server.url, load, stop_long, long_tokens),
                                         daemon=True) for _ in range(long_sessions)]
        for thread in long_threads:
            thread.start()
        # the long runs have started once the server works on them: wait for its CPU time to move on
        busy_from = server.figures()["cpu_s"]
        while long_sessions and server.figures()["cpu_s"] < busy_from + 1.0:
            time.sleep(0.1)
        _probe(client, with_long, probe_rounds)

        deadline = time.monotonic() + seconds
        workers = [threading.Thread(target=_session, args=(server.url, load, deadline, long_ids, short_tokens, index),
                                    daemon=True) for index in range(sessions)]
        for thread in workers:
            thread.start()
        time.sleep(max(0.0, deadline - time.monotonic()))
        stop_long.set()  # at the deadline: the sessions' last requests need not wait behind long runs
        for thread in long_threads + workers:
            thread.join(timeout=300)
        time.sleep(settle)  # let cancelled runs wind down before the "after" figures
        after = server.figures()
        watching.set()
        watcher.join()
        alive = server.process is not None and server.process.poll() is None
    idle_p95 = {name: percentile(idle.seconds.get(name, []), 0.95) for name in INTERACTIVE}
    long_p95 = {name: percentile(with_long.seconds.get(name, []), 0.95) for name in INTERACTIVE}
    endpoints = load.summary()
    errors = sum(entry["errors"] for entry in endpoints.values()) + sum(
        len(found) for record in (idle, with_long) for found in record.errors.values())
    return {
        "model": model, "sessions": sessions, "long_sessions": long_sessions, "seconds": seconds,
        "requests": sum(entry["count"] + entry["errors"] for entry in endpoints.values()),
        "endpoints": endpoints, "errors": errors, "server_alive": alive,
        "server": {key: {"before": before[key], "peak": peak[key], "after": after[key]}
                   for key in ("rss_mb", "threads")},
        "idle_p95": idle_p95, "with_long_runs_p95": long_p95,
        "ratio_with_long_runs": {name: long_p95[name] / idle_p95[name] if idle_p95[name] else 0.0
                                 for name in INTERACTIVE},
        "ratio_under_load": {name: endpoints.get(name, {}).get("p95", 0.0) / idle_p95[name] if idle_p95[name]
                             else 0.0 for name in INTERACTIVE},
    }


def figures(report: dict[str, Any]) -> list[Figure]:
    """The report as bench figures: latencies per endpoint, errors, the server's memory and threads, the ratios."""
    out = [Figure("load_requests", report["requests"], "requests",
                  note=f"{report['sessions']} sessions + {report['long_sessions']} long runs, {report['seconds']:g} s"),
           Figure("load_errors", report["errors"], "errors", target="<= 0")]
    for name, entry in report["endpoints"].items():
        out += [Figure(f"load_{name}_p50", entry["p50"], "s", note=f"{entry['count']} requests"),
                Figure(f"load_{name}_p95", entry["p95"], "s")]
    for key, unit in (("rss_mb", "MB"), ("threads", "threads")):
        for when, value in report["server"][key].items():
            out.append(Figure(f"server_{key}_{when}", value, unit))
    for name in INTERACTIVE:
        out += [Figure(f"idle_{name}_p95", report["idle_p95"][name], "s", note="one caller, idle server"),
                Figure(f"long_runs_{name}_p95", report["with_long_runs_p95"][name], "s",
                       note=f"one caller beside {report['long_sessions']} long generations"),
                Figure(f"long_runs_{name}_over_idle", report["ratio_with_long_runs"][name], "x", target="<= 3"),
                Figure(f"load_{name}_over_idle", report["ratio_under_load"][name], "x",
                       note="p95 in the full load against idle (reference)")]
    return out
