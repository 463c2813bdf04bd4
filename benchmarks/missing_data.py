"""Time the estimand's sensitivity block (issue 19): the demo and simulated studies.

The block is the whole of :func:`pipeline.analyses.missing_data.missing_data_analysis`: the
imputation MMRM, conditional mean imputation under MAR, J2R, CR, CIR, LMCF and the per-patient
estimand strategies, the leave-one-patient-out jackknife, the 21-delta tipping grid with its
tipping search, and the dropout description. Writes ``reports/benchmarks/missing_data.{csv,md}``
with the wall and CPU seconds and the load average beside each (the machine is shared).

Run: ``python benchmarks/missing_data.py [--sizes 240 2000] [--seed 7]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import pandas as pd
from harness import (
    DEFAULT_OUT,
    DEFAULT_WORK,
    ROOT,
    analysis_data,
    commit,
    machine,
    markdown_table,
    simulated_study,
    write_results,
)

from pipeline.analyses.missing_data import missing_data_analysis
from pipeline.config.settings import load_config


def _measure(label: str, data: pd.DataFrame, config, repeat: int) -> dict:
    """Run the block ``repeat`` times; return the median wall and CPU seconds and its counts."""
    load = os.getloadavg()[0]
    walls, cpus, jackknife = [], [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        res = missing_data_analysis(data, config)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        jackknife.append(res.seconds["cmi_wall"])
    return {
        "study": label,
        "patients": int(data["patient_id"].nunique()),
        "runs": repeat,
        "wall_s": statistics.median(walls),
        "cpu_s": statistics.median(cpus),
        "jackknife_wall_s": statistics.median(jackknife),
        "refits": res.cmi.n_refits,
        "mean_newton_steps": res.cmi.mean_newton_steps,
        "fallbacks": res.cmi.n_fallback,
        "load_1min_before": load,
        "load_1min_after": os.getloadavg()[0],
    }


def main() -> None:
    """Time the block on the demo and on simulated studies of each size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--repeat", type=int, default=3, help="runs per study (median)")
    args = parser.parse_args()
    from pipeline import api

    demo = api.load_study(ROOT / "analysis.toml")
    config = load_config(ROOT / "analysis.toml")
    rows = [_measure("demo", demo.data, config, args.repeat)]
    for n in args.sizes:
        folder = simulated_study(n, args.seed, DEFAULT_WORK)
        data, config = analysis_data(folder, DEFAULT_WORK / f"missing-{n}")
        rows.append(_measure(f"simulated {n}", data, config, args.repeat))
    table = pd.DataFrame(rows)
    summary = (
        "# Estimand sensitivity block: time\n\n"
        f"Machine: {machine()}. Code: commit {commit()}. Each row: the median of "
        f"{args.repeat} runs. The load average (1 min) is recorded before and after each "
        "row's runs; wall time above CPU time is waiting for a core (or other work on the "
        "machine). Goals (issue 19): the demo under 30 s, 2,000 patients under 2 minutes.\n\n"
        "The block: imputation MMRM, CMI under five strategies plus the estimand's, "
        "jackknife (up to `[estimand] jackknife_groups` = 500 patients one refit per patient "
        "with observed data, above it one per deleted group of the 500: `refits`), tipping "
        "grid of 21 deltas and its search, dropout description.\n\n" + markdown_table(table)
    )
    for path in write_results(args.out, "missing_data", table, summary):
        print(path)


if __name__ == "__main__":
    main()
