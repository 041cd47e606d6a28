"""The load benchmark in a tiny form: five sessions (each starting on another endpoint, so that every one is
measured) and one long run for a few seconds, on a tiny model served in a child process.

Only the report's shape and its errors are checked (none); its timings are the benchmark's business.
"""

from __future__ import annotations

from pathlib import Path

from stepgen import loadbench

ENDPOINTS = {"tokenize", "next_token", "next_token_1000_ids", "step", "generate_short", "generate_long"}


def test_a_tiny_load_run_reports_every_figure_and_no_error(long_tiny_dir: Path) -> None:
    report = loadbench.run_load(str(long_tiny_dir), sessions=5, long_sessions=1, seconds=4, probe_rounds=2,
                                long_tokens=40, short_tokens=3, settle=0.5)
    failures = {name: entry["first_errors"] for name, entry in report["endpoints"].items() if entry["errors"]}
    assert report["errors"] == 0, f"the load run met errors: {failures}"
    assert report["server_alive"], "the server died under the load"
    assert ENDPOINTS <= set(report["endpoints"]), f"endpoints measured: {sorted(report['endpoints'])}"
    for name, entry in report["endpoints"].items():
        assert entry["count"] > 0 and 0 < entry["p50"] <= entry["p95"], f"{name}: {entry}"
    for key in ("rss_mb", "threads"):
        seen = report["server"][key]
        assert set(seen) == {"before", "peak", "after"} and seen["peak"] >= seen["before"] > 0, f"{key}: {seen}"
    for part in ("idle_p95", "with_long_runs_p95", "ratio_with_long_runs", "ratio_under_load"):
        assert set(report[part]) == set(loadbench.INTERACTIVE) and all(v > 0 for v in report[part].values()), \
            f"{part}: {report[part]}"
    names = {figure.name for figure in loadbench.figures(report)}
    assert {"load_errors", "server_rss_mb_peak", "long_runs_step_over_idle", "load_tokenize_p95"} <= names, names
