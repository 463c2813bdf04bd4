"""Federation: ``outcomes share`` at a large clinic, ``outcomes pool`` of many files, file size.

Three measurements (issue 21's goals in brackets):

1. ``share`` at one clinic of ``--patients`` patients (100,000 by default; the simulator's
   study with every patient moved to one site): the whole command as a separate process
   (read, validate, derive, the statistics, the clinic's own fits, the descriptives), its peak
   memory, and the file's size [under 30 s].
2. ``pool`` of ``--clinics`` share files (20 clinics of ``--clinic-patients`` patients each, the
   simulator's patients spread over 20 sites): the whole command as a separate process, with and
   without ``--two-stage`` (meta-analysis and forest plots), and the pooling alone
   (:func:`pipeline.federate.pool.pool_shares`, reading and fitting) in this process
   [under 5 s].
3. Share file size against clinic size: the share files of the first ``n`` patients of the big
   clinic. The size must follow the number of schedules (cells) and parameters, not patients.

Usage::

    python benchmarks/federation.py [--patients 100000] [--clinics 20] [--clinic-patients 500]
                                    [--repeat 3]

Every measure is taken ``--repeat`` times (default 3): the table gives the median times and the
highest peak memory and load.

Results: ``reports/benchmarks/federation.csv`` and ``federation.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from harness import (
    DEFAULT_OUT,
    DEFAULT_WORK,
    analysis_data,
    combine_runs,
    commit,
    machine,
    markdown_table,
    run_child,
    simulated_study,
    write_config,
    write_results,
)

from pipeline.federate.pool import pool_shares
from pipeline.federate.schema import read_share, write_share
from pipeline.federate.share import build_share

SHARE_GOAL_S = 30.0
POOL_GOAL_S = 5.0


def _relabelled(study: Path, work: Path, sites: int, seed: int) -> Path:
    """Copy a study with its patients spread over ``sites`` sites (1: one clinic)."""
    folder = work / f"{study.name}-sites{sites}"
    if (folder / "patients.csv").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    patients = pd.read_csv(study / "patients.csv", dtype=str, keep_default_na=False)
    rng = np.random.default_rng(seed)
    names = np.array([f"Clinic {i + 1:02d}" for i in range(sites)])
    patients["site"] = names[rng.integers(sites, size=len(patients))] if sites > 1 else names[0]
    patients.to_csv(folder / "patients.csv", index=False)
    for name in ("sessions", "assessments"):
        (folder / f"{name}.csv").write_bytes((study / f"{name}.csv").read_bytes())
    return folder


def _cells(share: dict) -> int:
    return sum(len(site["cells"]) for m in share["models"] for site in m["sites"])


def _load_sentence(load: float) -> str:
    """Say whether the wall times were taken on a quiet machine (load below its 2 cores)."""
    if load < 2:
        return (
            f"The machine was quiet (1-minute load at most {load:.2f} on 2 cores), so the wall "
            "times above are what a user waits."
        )
    return (
        f"The machine was shared (1-minute load up to {load:.2f} on 2 cores): the wall times "
        "above are pessimistic and the CPU times are the steadier figure."
    )


def _median_row(runs: list[dict]) -> dict:
    """Median times of one measure's runs, highest peak and load, goal judged on the median."""
    row = combine_runs(runs, ("seconds", "cpu_seconds"), ("peak_pss_mb", "load_average"))
    if np.isfinite(row["goal_seconds"]):
        row["goal_met"] = row["seconds"] < row["goal_seconds"]
    return row


def _summary(table: pd.DataFrame, p: int, q: int) -> str:
    """Write the Markdown report of one run's measurements."""
    by = table.set_index("measure")
    share_cpu = by.loc["share (whole command)", "cpu_seconds"]
    pool_cpu = by.loc["pool (read and fit, in process)", "cpu_seconds"]
    command_cpu = by.loc["pool (whole command)", "cpu_seconds"]
    return (
        "# Federation benchmark\n\n"
        f"Machine: {machine()}. Code: commit {commit()}. Each row is the median of `runs` "
        "runs of its measure (`seconds`, `cpu_seconds`; `peak_pss_mb` and `load_average` the "
        "highest of the runs).\n\n"
        "`outcomes share` at one clinic, `outcomes pool` of many clinics' files, and the share "
        "file's size against the clinic's size (benchmarks/federation.py; simulated studies, "
        "the project's analysis.toml with its [federation] section: three outcomes, depth, "
        "random intercept and slope). The machine is shared: `load_average` is the 1-minute load "
        "during the command, and `cpu_seconds` (the command's own CPU time, its children "
        "included) is the figure that does not depend on the other processes; `goal_met` "
        "judges the wall time as measured.\n\n" + markdown_table(table) + "\n\n"
        f"In CPU time: `share` at {int(by.loc['share (whole command)', 'patients']):,} "
        f"patients {share_cpu:.1f} s (goal {SHARE_GOAL_S:g} s of wall time), the pooling of "
        f"{int(by.loc['pool (read and fit, in process)', 'files'])} files (reading and "
        f"fitting) {pool_cpu:.1f} s (goal {POOL_GOAL_S:g} s), the whole `pool` command "
        f"{command_cpu:.1f} s (Python start-up and imports, pooling, tables and report). "
        f"{_load_sentence(table['load_average'].max())}\n\n"
        f"Each model in a file holds per site the {p} x {p} X'X, and per cell (site x schedule)"
        f" a {q} x {p + 1} sum and a {q * (p + 1)} x {q * (p + 1)} sum of outer products, so "
        "the size grows with cells x parameters; the number of cells is bounded by the sites x "
        "the schedules held by at least min_patients_per_cell patients, not by the patients "
        "(the rows 'share file of the first n patients': the cells, and the size, level off).\n"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--clinics", type=int, default=20)
    parser.add_argument("--clinic-patients", type=int, default=500)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5_000, 50_000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK / "federation")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="rewrite federation.md from the last run's federation.csv (no measurement)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measure (median)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.summary_only:
        table = pd.read_csv(args.out / "federation.csv")
        share = read_share(args.work / "big.share")
        p = len(share["models"][0]["fixed_effects"])
        q = len(share["models"][0]["random_effects"])
        write_results(args.out, "federation", table, _summary(table, p, q))
        return 0
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    rows = []

    # 1. share at one big clinic
    big = _relabelled(simulated_study(args.patients, args.seed, work), work, 1, args.seed)
    config = write_config(big, work / "big")
    share_file = work / "big.share"
    command = [sys.executable, "-m", "pipeline.cli", "share", "--config", str(config)]
    runs = []
    for _ in range(args.repeat):
        run = run_child([*command, "--out", str(share_file)])
        if run.returncode != 0:
            print(run.stderr_tail, file=sys.stderr)
            return 1
        share = read_share(share_file)
        runs.append(
            {
                "measure": "share (whole command)",
                "patients": args.patients,
                "files": 1,
                "seconds": run.seconds,
                "cpu_seconds": run.cpu_seconds,
                "peak_pss_mb": run.peak_pss_mb,
                "bytes": share_file.stat().st_size,
                "cells": _cells(share),
                "goal_seconds": SHARE_GOAL_S,
                "goal_met": run.seconds < SHARE_GOAL_S,
                "load_average": run.load_average,
            }
        )
        print(f"share, {args.patients:,} patients: {run.seconds:.1f} s", flush=True)
    rows.append(_median_row(runs))

    # 3. file size against clinic size (same clinic, its first n patients)
    data, cfg = analysis_data(big, work / "big-data")
    ids = data["patient_id"].drop_duplicates()
    for n in [*sorted(args.sizes), args.patients]:
        subset = data.loc[data["patient_id"].isin(set(ids.iloc[:n]))]
        runs = []
        for _ in range(args.repeat):
            started, cpu0 = time.perf_counter(), time.process_time()
            s = build_share(subset, cfg)
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
            path = write_share(s, work / f"size-{n}.share")
            runs.append(
                {
                    "measure": "share file of the first n patients (build only)",
                    "patients": n,
                    "files": 1,
                    "seconds": seconds,
                    "cpu_seconds": cpu,
                    "peak_pss_mb": np.nan,
                    "bytes": path.stat().st_size,
                    "cells": _cells(s),
                    "goal_seconds": np.nan,
                    "goal_met": np.nan,
                    "load_average": np.nan,
                }
            )
        rows.append(_median_row(runs))
        print(f"size, {n:,} patients: {path.stat().st_size:,} bytes, {_cells(s)} cells", flush=True)

    # 2. pool of many clinics' files
    n_network = args.clinics * args.clinic_patients
    network = _relabelled(
        simulated_study(n_network, args.seed, work), work, args.clinics, args.seed
    )
    data, cfg = analysis_data(network, work / "network-data")
    files = []
    for site, block in data.groupby("site", sort=True):
        files.append(write_share(build_share(block, cfg), work / "network" / f"{site}.share"))
    for two_stage in (False, True):
        command = [sys.executable, "-m", "pipeline.cli", "pool", *map(str, files)]
        command += ["--out", str(work / "pooled")] + (["--two-stage"] if two_stage else [])
        runs = []
        for _ in range(args.repeat):
            run = run_child(command)
            if run.returncode != 0:
                print(run.stderr_tail, file=sys.stderr)
                return 1
            runs.append(
                {
                    "measure": "pool (whole command" + (", --two-stage)" if two_stage else ")"),
                    "patients": n_network,
                    "files": len(files),
                    "seconds": run.seconds,
                    "cpu_seconds": run.cpu_seconds,
                    "peak_pss_mb": run.peak_pss_mb,
                    "bytes": sum(f.stat().st_size for f in files),
                    "cells": np.nan,
                    "goal_seconds": np.nan,
                    "goal_met": np.nan,
                    "load_average": run.load_average,
                }
            )
            print(f"pool command (two-stage {two_stage}): {run.seconds:.1f} s", flush=True)
        rows.append(_median_row(runs))
    runs = []
    for _ in range(args.repeat):
        started, cpu0 = time.perf_counter(), time.process_time()
        shares = [(f, read_share(f)) for f in files]
        models = pool_shares(shares)
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        runs.append(
            {
                "measure": "pool (read and fit, in process)",
                "patients": n_network,
                "files": len(files),
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_pss_mb": np.nan,
                "bytes": sum(f.stat().st_size for f in files),
                "cells": sum(_cells(s) for _, s in shares),
                "goal_seconds": POOL_GOAL_S,
                "goal_met": seconds < POOL_GOAL_S,
                "load_average": np.nan,
            }
        )
        print(f"pool in process, {len(files)} files, {len(models)} models: {seconds:.2f} s")
    rows.append(_median_row(runs))

    table = pd.DataFrame(rows)
    p = len(share["models"][0]["fixed_effects"])
    q = len(share["models"][0]["random_effects"])
    summary = _summary(table, p, q)
    for path in write_results(args.out, "federation", table, summary):
        print(f"Wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
