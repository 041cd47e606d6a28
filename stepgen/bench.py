"""``python -m stepgen.bench``: the speed and memory figures, and their targets.

Each figure is measured on the embedded model (SmolLM2-135M-Instruct) in one
run and printed as a readable table and as JSON (``--json PATH`` writes it to a
file too). A figure may carry a target; ``--check`` exits 1 when one is missed.
Timings take the best of a few repeats, so a busy machine inflates them less.

Figures are grouped in sections (``--only load,forward`` runs some of them).
``--load`` instead serves the whole app and measures it under many users at
once (:mod:`stepgen.loadbench`).
Each section is a function ``section(ctx) -> list[Figure]`` listed in
:data:`SECTIONS`; this module only measures, it changes nothing.

Longer than the ~300-line guide on purpose: each section is one measurement
with its own set-up, and they share the context, the table and the targets;
split, every section would import the same scaffolding.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    unit: str
    target: str | None = None
    """A readable target such as ``<= 0.2`` (compared with ``value``)."""
    note: str = ""

    @property
    def ok(self) -> bool | None:
        if self.target is None:
            return None
        op, bound = self.target.split()
        return {"<=": self.value <= float(bound), ">=": self.value >= float(bound)}[op]


@dataclass
class Context:
    """What sections share: the loaded embedded model and scratch space."""

    cache_dir: Path
    loaded: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


def best_of(repeats: int, fn: Callable[[], Any]) -> float:
    """The fastest of ``repeats`` timed calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def prompt_ids(loaded: Any, length: int) -> torch.Tensor:
    """``length`` real token ids of English text (repeated as needed), shape (1, length)."""
    text = "It was a dark and stormy night; the rain fell in torrents, except at occasional intervals. " * 200
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"][:length]
    return torch.tensor([ids], device=loaded.device)


# --- sections -------------------------------------------------------------------


def section_load(ctx: Context) -> list[Figure]:
    """Cold load (GGUF dequantisation), first launch (with writing the cache), warm load."""
    import os

    from stepgen.loading import load_model

    os.environ["STEPGEN_CACHE_DIR"] = str(ctx.cache_dir)
    started = time.perf_counter()
    load_model("embedded", use_cache=False)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    load_model("embedded")  # dequantises again and writes the cache
    first = time.perf_counter() - started
    started = time.perf_counter()
    ctx.loaded = load_model("embedded")
    warm = time.perf_counter() - started
    assert ctx.loaded.from_cache, "the warm load did not come from the cache"
    return [
        Figure("cold_load", cold, "s", note="GGUF read and dequantised"),
        Figure("first_launch_load", first, "s", note="cold load plus writing the warm cache"),
        Figure("warm_load", warm, "s", note="dense copy from the warm cache"),
        Figure("warm_over_cold", warm / cold, "x", target="<= 0.2"),
    ]


def _ensure_model(ctx: Context) -> Any:
    if ctx.loaded is None:
        from stepgen.registry import get_model

        ctx.loaded = get_model("embedded")
    return ctx.loaded


def section_forward(ctx: Context) -> list[Figure]:
    """One forward pass over a 512-token prompt, and greedy generate() speed."""
    loaded = _ensure_model(ctx)
    ids = prompt_ids(loaded, 512)
    with torch.no_grad():
        forward = best_of(3, lambda: loaded.model(ids))
    short = prompt_ids(loaded, 16)
    new_tokens = 64

    def run() -> None:
        loaded.model.generate(
            short, attention_mask=torch.ones_like(short), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
            do_sample=False, pad_token_id=loaded.tokenizer.eos_token_id,
        )

    seconds = best_of(2, run)
    return [
        Figure("forward_512", forward, "s", note="one forward pass, 512-token prompt"),
        Figure("generate_tokens_per_second", new_tokens / seconds, "tok/s", note=f"greedy, {new_tokens} new tokens"),
    ]


def section_offline(ctx: Context) -> list[Figure]:
    """How long asking for a hub model takes to fail when the hub cannot be reached (a black-holed address)."""
    import os

    import huggingface_hub.constants as hub_constants

    from stepgen.loading import ModelLoadError, load_model

    saved = {key: os.environ.get(key) for key in ("HF_ENDPOINT", "HF_HUB_OFFLINE")}
    saved_flag = hub_constants.HF_HUB_OFFLINE
    os.environ["HF_ENDPOINT"] = "http://10.255.255.1"  # not routed: connections hang until our timeout
    os.environ["HF_HUB_OFFLINE"] = "0"
    hub_constants.HF_HUB_OFFLINE = False
    started = time.perf_counter()
    try:
        load_model("someone/not-cached-model")
    except ModelLoadError:
        pass
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        hub_constants.HF_HUB_OFFLINE = saved_flag
    return [Figure("hub_unreachable_failure", time.perf_counter() - started, "s", target="<= 10",
                   note="a hub id asked for while the hub is out of reach")]


def section_step(ctx: Context) -> list[Figure]:
    """One step at a 1024-token prefix: against a bare cached forward pass, the re-run-everything loop, and
    the KV store's memory while 50 sessions step.

    Both the steps and the bare passes go on from the same 1024-token prefix for a dozen tokens, each one
    extending the sequence before it, as a session does; the median of each is compared. A step is the whole
    job: choose the token, run it through the model on the cached prefix, build the next distribution.
    """
    import statistics
    from concurrent.futures import ThreadPoolExecutor

    from stepgen import stepping
    from stepgen.kvcache import KVStore
    from stepgen.settings import DecodingSettings

    loaded = _ensure_model(ctx)
    ids = prompt_ids(loaded, 1024)
    prefix = ids[0].tolist()
    settings = DecodingSettings()
    token = torch.tensor([[prefix[-1]]], device=loaded.device)
    steps_timed = 12

    def bare_run() -> list[float]:
        cache = loaded.model(ids, use_cache=True).past_key_values
        times = []
        for _ in range(steps_timed):
            started = time.perf_counter()
            loaded.model(input_ids=token, past_key_values=cache, use_cache=True, logits_to_keep=1)
            times.append(time.perf_counter() - started)
        return times

    def step_run(first_token: int) -> list[float]:
        # fresh tokens each run: stepping remembers recent distributions, and a remembered one costs nothing
        store = KVStore(2**30)
        sequence = list(prefix)
        store.logits(loaded, sequence)  # where a session stands before its first step (untimed)
        times = []
        for repeat in range(steps_timed):
            started = time.perf_counter()
            result = stepping.step(loaded, sequence, settings, "token", token_id=first_token + repeat, store=store)
            times.append(time.perf_counter() - started)
            sequence = list(result.ids)
        return times

    bare_times: list[float] = []
    step_times: list[float] = []
    for run in range(2):  # alternated, so that both see the same machine load
        bare_times += bare_run()
        step_times += step_run(first_token=100 + run * steps_timed)
    bare_seconds, step_seconds = statistics.median(bare_times), statistics.median(step_times)
    classic = best_of(2, lambda: loaded.model(torch.cat([ids, token], dim=1)).logits[0, -1].argmax())

    sessions, steps, budget = 50, 4, 64 * 2**20
    shared = KVStore(budget)
    peak = [0]

    def session(index: int) -> None:
        state = stepping.start(loaded.name, [index + 1] + prefix[:63], seed=index)
        for _ in range(steps):
            state, _ = stepping.advance(loaded, state, settings, "sample", store=shared)
            peak[0] = max(peak[0], shared.nbytes)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(session, range(sessions)))
    return [
        Figure("step_1024", step_seconds, "s",
               note="median step from a 1024-token prefix: choose, run through the model, next distribution"),
        Figure("bare_cached_forward_1024", bare_seconds, "s",
               note="median model(one token, DynamicCache) from the same 1024-token prefix"),
        Figure("step_over_bare_forward", step_seconds / bare_seconds, "x", target="<= 1.25"),
        Figure("rerun_loop_1024", classic, "s", note="the classic notebooks' loop: the whole text again per token"),
        Figure("rerun_loop_over_step", classic / step_seconds, "x", target=">= 20"),
        Figure("kv_store_peak_over_budget", peak[0] / budget, "x", target="<= 1",
               note=f"{sessions} sessions x {steps} sampled steps on 64-token prompts, budget 64 MB, "
                    f"{shared.stats['evictions']} evictions"),
    ]


def section_playground(ctx: Context) -> list[Figure]:
    """128 greedy tokens streamed with per-token probabilities, against a bare generate() of the same tokens.

    :func:`stepgen.generation.stream` runs ``generate()`` in a thread of its own (streaming from ``generate()``
    needs one, as transformers' own streamers do), and the app calls it from Gradio's thread pool anyway. With
    OpenMP, torch's CPU backend, each thread that runs torch work keeps its own pool of helper threads; once the
    main thread has one, a pool in another thread gives libgomp more threads than a 2-core machine has cores, so it
    stops spin-waiting between parallel regions and sleeps: any ``generate()`` outside the main thread is then 5
    to 20 % slower here (freeing the main thread's pool with ``omp_pause_resource_all`` closes the gap). The target
    therefore compares the stream with a bare ``generate()`` run the same way, in a fresh thread: what streaming
    and the per-token numbers add. The bare call on the main thread is measured too, with its ratio, for reference.
    """
    import threading

    from stepgen.generation import stream
    from stepgen.request import GenerationRequest

    loaded = _ensure_model(ctx)
    prompt = "It was a dark and stormy night; the rain fell in torrents, except at occasional intervals."
    new_tokens = 128
    request = GenerationRequest(max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    ids = torch.tensor([loaded.tokenizer(prompt)["input_ids"]], device=loaded.device)
    kwargs = request.generate_kwargs(loaded.tokenizer)

    def bare() -> None:
        loaded.model.generate(ids, attention_mask=torch.ones_like(ids), **kwargs)

    def bare_in_a_thread() -> None:
        worker = threading.Thread(target=bare)
        worker.start()
        worker.join()

    def streamed() -> None:
        for update in stream(loaded, prompt, request):
            if update.result is not None:
                assert len(update.result.sequences[0].tokens) == new_tokens, "the stream wrote too few tokens"

    best = {"main": float("inf"), "thread": float("inf"), "stream": float("inf")}
    for _ in range(4):  # interleaved, so that all three see the same machine load
        best["main"] = min(best["main"], best_of(1, bare))
        best["thread"] = min(best["thread"], best_of(1, bare_in_a_thread))
        best["stream"] = min(best["stream"], best_of(1, streamed))
    return [
        Figure("generate_bare_128", best["main"], "s", note="model.generate(), greedy, 128 new tokens, main thread"),
        Figure("generate_bare_128_thread", best["thread"], "s", note="the same call in a fresh thread"),
        Figure("playground_stream_128", best["stream"], "s",
               note="the same tokens streamed, with model and final probability, rank and entropy per token"),
        Figure("playground_over_bare_generate", best["stream"] / best["thread"], "x", target="<= 1.10",
               note="against the bare call in a thread, as the app runs it"),
        Figure("playground_over_bare_generate_main_thread", best["stream"] / best["main"], "x",
               note="against the bare call on the main thread (reference)"),
    ]


def section_contrastive(ctx: Context) -> list[Figure]:
    """One token of contrastive search (k=4) against one greedy step, both cached, from a 64-token prompt.

    A greedy step is one token through the model on the KV cache and the argmax of its logits. A contrastive token
    is the whole step of :func:`stepgen.contrastive.contrastive_steps`: the settings, the top 4, the 4 candidates
    through the model as one batch on the cache repeated 4 times, the degeneration penalty, the chosen row's cache
    kept, and the token's numbers. Each goes on for 16 tokens; the medians are compared (the prompt's own forward
    pass, which both need once, is left out). On a machine whose cores are busy with other work the batch of 4
    suffers most: its matrix products run on all of torch's threads and wait at every barrier for a thread that
    lost its core, while a single row's run on one, so the ratio then grows well beyond what the work costs.
    """
    import statistics

    from stepgen.contrastive import contrastive_steps

    loaded = _ensure_model(ctx)
    ids = prompt_ids(loaded, 64)
    tokens, k = 16, 4

    def greedy_run() -> list[float]:
        out = loaded.model(ids, use_cache=True)
        cache, token = out.past_key_values, out.logits[:, -1].argmax(dim=-1, keepdim=True)
        times = []
        for _ in range(tokens):
            started = time.perf_counter()
            out = loaded.model(input_ids=token, past_key_values=cache, use_cache=True)
            token = out.logits[:, -1].argmax(dim=-1, keepdim=True)
            times.append(time.perf_counter() - started)
        return times

    def contrastive_run() -> list[float]:
        steps = contrastive_steps(loaded, ids[0].tolist(), penalty_alpha=0.6, top_k=k, max_new_tokens=tokens + 1,
                                  min_new_tokens=tokens + 1)
        next(steps)  # the prompt's forward pass and the first token (untimed)
        times = []
        for _ in range(tokens):
            started = time.perf_counter()
            next(steps)
            times.append(time.perf_counter() - started)
        steps.close()
        return times

    greedy_times: list[float] = []
    contrastive_times: list[float] = []
    for _ in range(2):  # alternated, so that both see the same machine load
        greedy_times += greedy_run()
        contrastive_times += contrastive_run()
    greedy, contrastive = statistics.median(greedy_times), statistics.median(contrastive_times)
    return [
        Figure("greedy_cached_step_64", greedy, "s", note="median greedy step: one token on the KV cache, argmax"),
        Figure("contrastive_token_k4_64", contrastive, "s",
               note=f"median contrastive search token, top_k={k}: {k} candidates as one batch on the cache"),
        Figure("contrastive_over_greedy_step", contrastive / greedy, "x", target="<= 2"),
    ]


def section_beams(ctx: Context) -> list[Figure]:
    """A 5-beam, 40-token beam search watched for its tree, against the same generate() call without it.

    Both run in a fresh thread, as the app runs them (see :func:`section_playground`), with the outputs the
    playground's beam path always asks for (``output_scores``, ``output_logits``); the watched run adds the
    observer and builds the tree from the outputs. The whole playground run (the per-token numbers read off the
    outputs too) is measured for reference.
    """
    import threading

    from transformers import LogitsProcessorList, MaxLengthCriteria, StoppingCriteriaList

    from stepgen.beamtree import BeamObserver, beam_tree
    from stepgen.generation import generate
    from stepgen.request import GenerationRequest

    loaded = _ensure_model(ctx)
    prompt = "The best thing about learning to cook is"
    beams, new_tokens = 5, 40
    request = GenerationRequest(max_new_tokens=new_tokens, min_new_tokens=new_tokens, num_beams=beams)
    ids = torch.tensor([loaded.tokenizer(prompt)["input_ids"]], device=loaded.device)
    call = dict(request.generate_kwargs(loaded.tokenizer), input_ids=ids, attention_mask=torch.ones_like(ids),
                return_dict_in_generate=True, output_scores=True, output_logits=True)

    def in_a_thread(fn: Callable[[], Any]) -> Callable[[], None]:
        def run() -> None:
            worker = threading.Thread(target=fn)
            worker.start()
            worker.join()
        return run

    def bare() -> None:
        loaded.model.generate(**call)

    def watched() -> None:
        observer = BeamObserver(ids.shape[1], [("length", MaxLengthCriteria(ids.shape[1] + new_tokens))])
        output = loaded.model.generate(**call, logits_processor=LogitsProcessorList([observer.processor]),
                                       stopping_criteria=StoppingCriteriaList([observer.criterion]))
        tree = beam_tree(observer, output, loaded.tokenizer, num_beams=beams, length_penalty=1.0)
        assert len(tree) == new_tokens, f"the tree has {len(tree)} steps"

    def playground() -> None:
        assert generate(loaded, prompt, request).beam_tree is not None, "the playground run has no tree"

    best = {"bare": float("inf"), "watched": float("inf"), "playground": float("inf")}
    for _ in range(3):  # interleaved, so that all three see the same machine load
        best["bare"] = min(best["bare"], best_of(1, in_a_thread(bare)))
        best["watched"] = min(best["watched"], best_of(1, in_a_thread(watched)))
        best["playground"] = min(best["playground"], best_of(1, playground))
    return [
        Figure("beam_generate_5x40", best["bare"], "s", note="model.generate(), 5 beams, 40 new tokens, in a thread"),
        Figure("beam_tree_5x40", best["watched"], "s", note="the same call watched, and its tree built"),
        Figure("beam_tree_over_generate", best["watched"] / best["bare"], "x", target="<= 1.2"),
        Figure("beam_playground_over_generate", best["playground"] / best["bare"], "x",
               note="the whole playground run (tree and per-token numbers) against the bare call (reference)"),
    ]


SECTIONS: dict[str, Callable[[Context], list[Figure]]] = {
    "load": section_load,
    "forward": section_forward,
    "offline": section_offline,
    "step": section_step,
    "playground": section_playground,
    "contrastive": section_contrastive,
    "beams": section_beams,
}


def run(only: list[str] | None = None) -> list[Figure]:
    names = only or list(SECTIONS)
    unknown = [name for name in names if name not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; known: {', '.join(SECTIONS)}")
    torch.set_grad_enabled(False)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="stepgen-bench-") as scratch:
        ctx = Context(cache_dir=Path(scratch))
        for name in names:
            print(f"bench: {name} …", file=sys.stderr, flush=True)
            figures.extend(SECTIONS[name](ctx))
    return figures


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "unit", "target", "ok")]
    for figure in figures:
        ok = {None: "", True: "yes", False: "NO"}[figure.ok]
        rows.append((figure.name, f"{figure.value:.4g}", figure.unit, figure.target or "", ok))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stepgen.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated sections ({', '.join(SECTIONS)})")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    load = parser.add_argument_group("load", "--load serves the app and measures it under many users "
                                     "(stepgen/loadbench.py) instead of the sections")
    load.add_argument("--load", action="store_true", help="run the load benchmark")
    load.add_argument("--model", default="embedded", help="the model the app serves (default: embedded)")
    load.add_argument("--sessions", type=int, default=24, help="concurrent mixed sessions (default 24)")
    load.add_argument("--long-sessions", type=int, default=4, help="sessions running long generations (default 4)")
    load.add_argument("--seconds", type=float, default=120.0, help="duration of the load (default 120)")
    parser.add_argument("--browser", action="store_true",
                        help="measure the page in Chromium instead (stepgen/browserbench.py; starts the app)")
    args = parser.parse_args(argv)
    report = None
    if args.load:
        from stepgen import loadbench

        report = loadbench.run_load(args.model, sessions=args.sessions, long_sessions=args.long_sessions,
                                    seconds=args.seconds)
        figures = loadbench.figures(report)
    elif args.browser:
        from stepgen import browserbench  # Playwright and a server: only when asked for

        figures = browserbench.run()
    else:
        figures = run(args.only.split(",") if args.only else None)
    data = {
        "torch_threads": torch.get_num_threads(),
        "figures": [asdict(figure) | {"ok": figure.ok} for figure in figures],
    }
    if report is not None:
        data["load"] = report
    print(table(figures))
    print(json.dumps(data, indent=2))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    missed = [figure.name for figure in figures if figure.ok is False]
    if missed:
        print(f"bench: targets missed: {', '.join(missed)}", file=sys.stderr)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
