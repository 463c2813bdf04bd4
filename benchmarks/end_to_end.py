"""The whole pipeline (``outcomes run``) on simulated studies: wall time and peak memory.

For each size the simulator writes a study (canonical CSVs), and ``outcomes run`` runs on it
as a separate process with the project's ``analysis.toml`` (inputs and outputs redirected to
the scratch folder): ingest, validate, derive, every analysis of the plan, the tables and the
report in whatever formats the configuration asks for. Measured: the wall time and CPU time
of the command, and the peak memory of its process tree (the command, its worker processes
and any browser it starts), as proportional set size (pages shared by forked workers counted
once) and as resident set size (counted in every process: an upper bound). The command's
progress lines are echoed. Each size is run twice: a first run that fits every model
(``--refit``), then the same command again, which reads the unchanged fits back from the
processed folder's model cache (:mod:`pipeline.plan_cache`).

Usage::

    python benchmarks/end_to_end.py [--sizes 2000 20000 100000] [--seed 7]

Results: ``reports/benchmarks/end_to_end.csv`` and ``end_to_end.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from harness import (
    DEFAULT_OUT,
    DEFAULT_WORK,
    machine,
    markdown_table,
    run_child,
    simulated_study,
    write_config,
    write_results,
)

GOALS = {2000: "< 20 s", 100000: "< 180 s and < 4 GB"}
RUNS = (
    ("first run", ["--refit"]),  # every model fitted, whatever an earlier run left
    ("re-run", []),  # the same inputs again: unchanged fits read back (pipeline.plan_cache)
)


def _data_lines(path: Path) -> int:
    """Rows of a CSV file (lines minus the header)."""
    with open(path, "rb") as handle:
        return sum(1 for _ in handle) - 1


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write ``end_to_end.csv`` and ``end_to_end.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)

    outcomes = Path(sys.executable).with_name("outcomes")
    command = [str(outcomes)] if outcomes.exists() else [sys.executable, "-m", "pipeline.cli"]
    rows = []
    for size in args.sizes:
        study = simulated_study(size, args.seed, args.work)
        config = write_config(study, args.work / f"pipeline-{size}")
        for label, extra in RUNS:
            print(f"  [{size:,} patients] {label}: outcomes run --config {config}", file=sys.stderr)
            run = run_child([*command, "run", "--config", str(config), *extra])
            status = "ok" if run.returncode == 0 else f"exit {run.returncode}: {run.stderr_tail}"
            rows.append(
                {
                    "patients": size,
                    "run": label,
                    "assessments": _data_lines(study / "assessments.csv"),
                    "sessions": _data_lines(study / "sessions.csv"),
                    "seconds": run.seconds,
                    "cpu_seconds": run.cpu_seconds,
                    "peak_memory_mb": run.peak_pss_mb,
                    "peak_rss_sum_mb": run.peak_rss_mb,
                    "largest_process_mb": run.largest_process_mb,
                    "load_average": run.load_average,
                    "goal": GOALS.get(size, ""),
                    "status": status,
                }
            )
            print(
                f"  [{size:,} patients] {label}: {run.seconds:.1f} s, "
                f"peak {run.peak_pss_mb:,.0f} MB, {status}",
                file=sys.stderr,
            )
    table = pd.DataFrame(rows)
    text = "\n".join(
        [
            "# Whole pipeline: `outcomes run` on simulated studies",
            "",
            f"Machine: {machine()}. Studies from `outcomes simulate --seed {args.seed}`; "
            "the project's `analysis.toml` with inputs and outputs redirected. "
            "`peak_memory_mb`: highest proportional set size (PSS) summed over the command's "
            "process tree (the command, its forked model workers, the browser printing the "
            "PDF), sampled every 0.2 s: pages the forked workers share with the parent are "
            "counted once. `peak_rss_sum_mb` counts them in every process (an upper bound); "
            "`largest_process_mb` is the peak resident memory of the largest single process. "
            "`cpu_seconds`: user + system time of the whole tree. `load_average`: the "
            "machine's 1-minute load when the run ended (2 cores; other work slows the run).",
            "",
            markdown_table(table, floats="{:,.1f}"),
            "",
        ]
    )
    for path in write_results(args.out, "end_to_end", table, text):
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
