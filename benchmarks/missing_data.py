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
import time
from pathlib import Path

import pandas as pd
from harness import (
    DEFAULT_OUT,
    DEFAULT_WORK,
    ROOT,
    analysis_data,
    machine,
    markdown_table,
    simulated_study,
    write_results,
)

from pipeline.analyses.missing_data import missing_data_analysis
from pipeline.config.settings import load_config


def _measure(label: str, data: pd.DataFrame, config) -> dict:
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    res = missing_data_analysis(data, config)
    return {
        "study": label,
        "patients": int(data["patient_id"].nunique()),
        "wall_s": time.perf_counter() - wall,
        "cpu_s": time.process_time() - cpu,
        "jackknife_wall_s": res.seconds["cmi_wall"],
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
    args = parser.parse_args()
    from pipeline import api

    demo = api.load_study(ROOT / "analysis.toml")
    rows = [_measure("demo", demo.data, load_config(ROOT / "analysis.toml"))]
    for n in args.sizes:
        folder = simulated_study(n, args.seed, DEFAULT_WORK)
        data, config = analysis_data(folder, DEFAULT_WORK / f"missing-{n}")
        rows.append(_measure(f"simulated {n}", data, config))
    table = pd.DataFrame(rows)
    summary = (
        "# Estimand sensitivity block: time\n\n"
        f"Machine: {machine()}. Shared by other jobs: the load average (1 min) is recorded "
        "before and after each measurement, and wall time above CPU time is waiting for a "
        "core.\n\n"
        "The block: imputation MMRM, CMI under five strategies plus the estimand's, "
        "leave-one-patient-out jackknife (one refit per patient with observed data), tipping "
        "grid of 21 deltas and its search, dropout description.\n\n" + markdown_table(table)
    )
    for path in write_results(args.out, "missing_data", table, summary):
        print(path)


if __name__ == "__main__":
    main()
