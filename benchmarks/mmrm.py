"""The unstructured MMRM with Satterthwaite df, timed in Python and in R on the same rows.

For each size a two-arm trial with 6 post-baseline visits, MAR dropout and missed visits is
simulated (:func:`pipeline.analyses.simulated_trial.simulate_mmrm_trial`) and written to CSV.
Ours is :func:`pipeline.lmm.fit_mmrm` with ``structure="us"``, REML, ``df_method="satterthwaite"``
(the Satterthwaite pieces, Hessian and covariance Jacobian, are included in the time), timed
whole and split into the one pass over the rows (:func:`pipeline.lmm.patterns.prepare_mmrm`,
grows with patients) and the rest (optimisation and df, grows with visit patterns). R fits the
same model with ``nlme::gls`` (``corSymm`` + ``varIdent``) and ``glmmTMB`` (``us``, dispersion
fixed at zero), one ``Rscript`` per fit, timing only the fitting call and ``vcov()``
(``benchmarks/mmrm_fits.R``). Both sides fit ``--repeat`` times (default 3) and report the
median. An R fit still running after ``--r-timeout`` seconds is stopped, reported as
"> timeout" and not run again (the machine is shared; this keeps the run bounded).

Usage::

    python benchmarks/mmrm.py [--sizes 2000 20000 100000] [--r-sizes 2000] [--r-timeout 900]

R is run only at ``--r-sizes`` (default 2,000 patients): on this shared 2-core machine
``nlme::gls`` needed more than two minutes and glmmTMB one minute already at 2,000 patients,
so the larger sizes would hold the machine for hours.

Results: ``reports/benchmarks/mmrm.csv`` and ``mmrm.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from pathlib import Path

import pandas as pd
from harness import DEFAULT_OUT, DEFAULT_WORK, ROOT, commit, machine, markdown_table, require_r

from pipeline.analyses.simulated_trial import simulate_mmrm_trial
from pipeline.lmm import fit_mmrm
from pipeline.lmm.blas import single_threaded
from pipeline.lmm.patterns import prepare_mmrm
from pipeline.lmm.reuse import sharing_designs

FIXED = "baseline + C(visit) * C(arm, Treatment('control'))"
R_SCRIPT = ROOT / "benchmarks" / "mmrm_fits.R"
#: The note of an R engine at a size outside ``--r-sizes`` (its cells are empty).
NOT_RUN = "not run (--r-sizes)"
SAME_OPTIMUM = "Same optimum (positive: R's criterion is above ours):"


def time_ours(data: pd.DataFrame, repeat: int) -> dict[str, float]:
    """Fit ours ``repeat`` times; return the median wall and CPU seconds and the criterion.

    Its two parts are timed apart, also as medians: the pass over the rows
    (``ours_rows_s``, :func:`pipeline.lmm.patterns.prepare_mmrm` alone) and the rest
    (``ours_patterns_s``: a second fit inside the same :func:`sharing_designs` block, which
    reuses the first one's design, per-pattern cross-products and starting covariance). The
    parts are separate measurements: they add up to the whole fit only roughly.
    """
    walls, cpus, prepares, rests = [], [], [], []

    def fit() -> object:
        return fit_mmrm(data, "y", FIXED, "visit", "patient", "us", df_method="satterthwaite")

    with single_threaded():
        for _ in range(repeat):
            started = time.perf_counter()
            prepare_mmrm(data, "y", FIXED, "visit", "patient")
            prepares.append(time.perf_counter() - started)
            with sharing_designs():
                started, cpu = time.perf_counter(), time.process_time()
                result = fit()
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
                started = time.perf_counter()
                fit()
                rests.append(time.perf_counter() - started)
    return {
        "ours_s": statistics.median(walls),
        "ours_cpu_s": statistics.median(cpus),
        "ours_rows_s": statistics.median(prepares),
        "ours_patterns_s": statistics.median(rests),
        "patterns": result.n_patterns,
        "n_obs": result.n_obs,
        "ours_criterion": result.criterion,
    }


def time_r(csv: Path, engine: str, timeout: float, work: Path) -> tuple[float, float, float, str]:
    """Run ``mmrm_fits.R``; return wall and CPU seconds, criterion and a note (timeout, failure).

    An R fit stopped at the timeout returns the timeout as its wall time (a lower bound: the
    ratio is then an upper bound) and says so in the note.
    """
    out = work / f"{csv.stem}_{engine}.csv"
    try:
        done = subprocess.run(
            ["Rscript", str(R_SCRIPT), str(csv), engine, str(out)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return timeout, float("nan"), float("nan"), f"stopped at the {timeout:.0f} s timeout"
    if done.returncode != 0:
        failure = "failed: " + done.stderr.strip().splitlines()[-1]
        return float("nan"), float("nan"), float("nan"), failure
    row = pd.read_csv(out).iloc[0]
    return float(row.seconds), float(row.cpu_seconds), float(row.criterion), ""


def time_r_repeated(
    csv: Path, engine: str, timeout: float, work: Path, repeat: int
) -> tuple[float, float, float, str]:
    """Run :func:`time_r` up to ``repeat`` times; return the median wall and CPU seconds.

    A fit stopped at the timeout or failed is not run again: its time is a bound, not a
    measurement, and repeating it would hold the machine for ``repeat`` timeouts. When earlier
    runs of the same fit finished, their median is kept and the note says how many there were.
    """
    walls, cpus, criterion = [], [], float("nan")
    for run in range(1, repeat + 1):
        seconds, cpu, this_criterion, note = time_r(csv, engine, timeout, work)
        if note and not walls:
            return seconds, cpu, this_criterion, note
        if note:
            kept = f"the median of the {len(walls)} run(s) before it, which finished"
            note = f"run {run} of {repeat}: {note}; the time is {kept}"
            return statistics.median(walls), statistics.median(cpus), criterion, note
        walls.append(seconds)
        cpus.append(cpu)
        criterion = this_criterion
    return statistics.median(walls), statistics.median(cpus), criterion, ""


def main(argv: list[str] | None = None) -> int:
    """Time every size, write reports/benchmarks/mmrm.csv and mmrm.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--r-timeout", type=float, default=900.0)
    parser.add_argument(
        "--r-sizes",
        type=int,
        nargs="*",
        default=[2000],
        help="sizes at which R is run too (R takes minutes already at 2,000 patients)",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of every fit, ours and R's (median)"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.r_sizes:
        require_r(("nlme", "glmmTMB"), "benchmarks/mmrm.py", "--r-sizes with no size")
    work = DEFAULT_WORK / "mmrm"
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    measured, load_before = commit(), os.getloadavg()
    for size in args.sizes:
        data = simulate_mmrm_trial(size // 2, 6, 0.3, seed=args.seed)
        csv = work / f"mmrm_{size}.csv"
        data.to_csv(csv, index=False)
        row: dict[str, object] = {"patients": size, **time_ours(data, args.repeat)}
        for engine in ("gls", "glmmTMB"):
            if size in args.r_sizes:
                seconds, cpu, criterion, note = time_r_repeated(
                    csv, engine, args.r_timeout, work, args.repeat
                )
            else:
                seconds, cpu, criterion = float("nan"), float("nan"), float("nan")
                note = NOT_RUN
            row[f"{engine}_s"] = seconds
            row[f"{engine}_cpu_s"] = cpu
            row[f"{engine}_note"] = note
            row[f"{engine}_criterion_diff"] = criterion - float(row["ours_criterion"])
            row[f"{engine}_ratio"] = float(row["ours_s"]) / seconds
        row["load_average"] = os.getloadavg()[0]
        row["commit"] = measured
        print(row, flush=True)
        rows.append(row)
    table = pd.DataFrame(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "mmrm.csv", index=False)
    shown = table[
        [
            "patients",
            "n_obs",
            "patterns",
            "ours_s",
            "ours_cpu_s",
            "ours_rows_s",
            "ours_patterns_s",
            "gls_s",
            "gls_cpu_s",
            "gls_ratio",
            "glmmTMB_s",
            "glmmTMB_cpu_s",
            "glmmTMB_ratio",
            "load_average",
        ]
    ]
    notes = [
        f"- {r.patients:,} patients, {engine}: {getattr(r, engine + '_note')}"
        for r in table.itertuples()
        for engine in ("gls", "glmmTMB")
        if getattr(r, engine + "_note") not in ("", NOT_RUN)
    ]
    diffs = [
        f"- {r.patients:,} patients: R's REML criterion minus ours: "
        + ", ".join(
            f"{engine} {getattr(r, engine + '_criterion_diff'):+.2e}"
            for engine in ("gls", "glmmTMB")
            if pd.notna(getattr(r, engine + "_criterion_diff"))
        )
        for r in table.itertuples()
        if pd.notna(r.gls_criterion_diff) or pd.notna(r.glmmTMB_criterion_diff)
    ]
    text = "\n".join(
        [
            "# MMRM speed: unstructured REML with Satterthwaite df, ours vs nlme::gls and glmmTMB",
            "",
            f"Machine: {machine()}. Command: `python benchmarks/mmrm.py --sizes "
            f"{' '.join(map(str, args.sizes))} --r-timeout {args.r_timeout:.0f} --r-sizes "
            f"{' '.join(map(str, args.r_sizes))} --repeat {args.repeat}` (run by `make bench`). "
            f"Code: commit {measured}. Load average (1 min) {load_before[0]:.1f} at the start; "
            "each row gives it after that size. Ours: the median of "
            f"{args.repeat} fits, wall (`ours_s`) and CPU (`ours_cpu_s`, single-threaded BLAS); "
            f"R: the median of {args.repeat} fits per engine and size (a fit stopped at the "
            "timeout is not run again).",
            "",
            "Two arms, 6 post-baseline visits, MAR dropout and 5 % missed visits "
            "(`pipeline.analyses.simulated_trial`), model `y ~ baseline + visit * arm`, "
            "unstructured "
            "covariance (21 parameters), REML. Ours (`ours_s`) includes the Satterthwaite "
            "pieces; `ours_rows_s` is the one pass over the rows (design, per-pattern "
            "cross-products), timed alone, and `ours_patterns_s` the rest (optimisation, df), "
            "timed as a second fit reusing the first one's design, whose cost depends on the "
            "number of visit patterns, not patients (separate measurements: their sum is "
            "only roughly `ours_s`). R times only the fitting "
            "call and `vcov()`. Ratios are ours / R wall time (below 1: ours faster); an R fit "
            "stopped at the timeout counts as taking the timeout, so its ratio is an upper "
            "bound. R is run only at the `--r-sizes`; where it is not run, the cells are empty.",
            "",
            markdown_table(shown, floats="{:.3g}"),
            "",
            *([SAME_OPTIMUM, *diffs, ""] if diffs else []),
            *(["R fits stopped or failed:", *notes, ""] if notes else []),
        ]
    )
    (args.out / "mmrm.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
