"""Benchmark of ``outcomes plan``: simulated studies fitted with the report's model, and lme4.

Three measurements, written to ``reports/benchmarks/planning.md`` and ``planning.csv`` after
each one:

1. **one fit against lme4**: the same simulated study of 200 patients fitted 20 times by
   :func:`pipeline.lmm.fit.fit_lmm` (the DataFrame route, with patsy, and the prepared route the
   simulation uses) and by ``lme4::lmer`` plus lmerTest's Satterthwaite set-up
   (``benchmarks/lme4_fits.R``, one R process, R start-up not timed);
2. **1,000 studies of 200 patients** (6 visits at weeks 0, 1, 2, 4, 8, 12; random intercept and
   slope; dropout 5 % before each visit in one group and 8 % in the other), each fitted with the
   trajectory model as the report fits it (:mod:`pipeline.planning.simulate`), target < 60 s;
3. **a power curve of 8 sizes x 1,000 studies** (40 to 320 patients; ``--curve-sims`` runs
   fewer), plus as many under the null at the smallest size, through
   :func:`pipeline.planning.answers.plan_study` with the progress bar of ``outcomes plan`` on
   stderr, target < 5 minutes (scaled to the number of studies).

Usage: ``python benchmarks/planning.py [--sims 1000] [--curve-sims N] [--workers 2]
[--fits 20] [--repeat 3] [--out reports/benchmarks]``. Measurements 2 and 3 run ``--repeat``
times and report the median times. The machine is shared; the load average at the start of
each measurement and the CPU time of the workers are recorded.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
from harness import (
    DEFAULT_OUT,
    ROOT,
    combine_runs,
    commit,
    machine,
    markdown_table,
    require_r,
    write_results,
)

from pipeline.cli import _plan_progress
from pipeline.lmm import DEFAULT_ROUTES, FAST_ROUTES, fit_lmm
from pipeline.planning import simulate
from pipeline.planning.answers import plan_study
from pipeline.planning.design import Assumptions, Design

R_SCRIPT = ROOT / "benchmarks" / "lme4_fits.R"
WEEKS = (0.0, 1.0, 2.0, 4.0, 8.0, 12.0)
GRID = (40, 60, 80, 120, 160, 200, 260, 320)
T = TypeVar("T")


def design(n_grid: tuple[int, ...]) -> Design:
    """Return the benchmark's design: NRS, depth, slope difference, 6 visits."""
    return Design(
        outcome="nrs",
        comparison="depth",
        reference="superficial",
        compared="deep",
        allocation=1.0,
        weeks=WEEKS,
        analysis="slope",
        primary_visit=len(WEEKS) - 1,
        alpha=0.05,
        holm_family=1,
        target_power=0.8,
        n=200,
        n_grid=n_grid,
        mcid=2.0,
    )


ASSUMPTIONS = Assumptions(
    effect=-1.0,
    sd_intercept=1.2,
    sd_slope=0.1,
    correlation=-0.3,
    sd_residual=0.9,
    hazards_reference=(0.05,) * 5,
    hazards_compared=(0.08,) * 5,
)


def one_study_frame(seed: int = 1) -> pd.DataFrame:
    """One simulated study of 200 patients as a data frame (the rows the model is fitted to)."""
    setup = simulate.build_setup(design((200,)), ASSUMPTIONS, 200)
    y, last, _ = simulate._draw(setup, np.random.default_rng(seed))
    keep = setup.row_visit <= last[setup.row_patient]
    frame = setup.template.frame.loc[keep, ["patient", "weeks", "group"]].copy()
    frame["y"] = y[setup.row_patient[keep], setup.row_visit[keep]]
    return frame.reset_index(drop=True)


def time_python(frame: pd.DataFrame, repeats: int) -> tuple[float, float]:
    """Median seconds of fit_lmm on ``frame``: DataFrame route, and the prepared route."""
    from pipeline.lmm.data import prepare_data

    kwargs = dict(random_slope="weeks", routes=FAST_ROUTES, escalate=DEFAULT_ROUTES)
    plain, prepared = [], []
    prep = prepare_data(frame, "y", "weeks * group", "patient", "weeks")
    for _ in range(repeats):
        started = time.perf_counter()
        fit_lmm(frame, "y", "weeks * group", "patient", **kwargs)
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        fit_lmm(frame, "y", "weeks * group", "patient", prepared=prep, **kwargs)
        prepared.append(time.perf_counter() - started)
    return float(np.median(plain)), float(np.median(prepared))


def time_lme4(frame: pd.DataFrame, repeats: int) -> tuple[float, float]:
    """Median seconds of lmer and of lmerTest's Satterthwaite set-up (stops if R fails)."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        data = folder / "study.csv"
        frame.assign(group=frame["group"].astype(str)).to_csv(data, index=False)
        manifest = pd.DataFrame(
            {
                "id": [f"fit{k}" for k in range(repeats)],
                "data": str(data),
                "formula": "y ~ weeks * group + (1 + weeks | patient)",
                "reml": "TRUE",
                "satterthwaite": "TRUE",
                "relevel": "group=superficial",
            }
        )
        manifest.to_csv(folder / "manifest.csv", index=False)
        out = folder / "out.csv"
        done = subprocess.run(
            ["Rscript", str(R_SCRIPT), str(folder / "manifest.csv"), str(out)],
            check=False,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            raise SystemExit(f"benchmarks/planning.py: {R_SCRIPT.name} failed: {last}")
        r = pd.read_csv(out)
    return float(r["seconds_lme4"].median()), float(r["seconds_satterthwaite"].median())


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children (the workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_runs(repeat: int, work: Callable[[], T]) -> tuple[T, tuple[float, float, float]]:
    """Run ``work`` ``repeat`` times; return its last result and the runs' timing.

    Returns
    -------
    tuple
        The last result, and the median wall and CPU seconds (this process and its workers)
        with the highest 1-minute load average at the start of a run.
    """
    timed = []
    for _ in range(repeat):
        load = os.getloadavg()[0]
        started, cpu = time.perf_counter(), cpu_seconds()
        result = work()
        timed.append(
            {
                "seconds": time.perf_counter() - started,
                "cpu_seconds": cpu_seconds() - cpu,
                "load_average": load,
            }
        )
    run = combine_runs(timed, ("seconds", "cpu_seconds"), ("load_average",))
    return result, (run["seconds"], run["cpu_seconds"], run["load_average"])


def summary_text(
    table: pd.DataFrame, per_fit: pd.DataFrame | None, result, repeats: int, load: float
) -> str:
    """Write the Markdown summary of what has been measured so far."""
    parts = [
        "# Planning benchmark (`make bench`: `python benchmarks/planning.py`)",
        "",
        f"Machine: {machine()}. Code: commit {commit()}. Shared with other work: the 1-minute "
        "load average at the "
        "start of each measurement is in the table (the highest of its runs). Each "
        "measurement runs `runs` times: `seconds` is the median wall-clock time on the "
        "shared machine; `cpu_seconds` the median CPU time of this process and its worker "
        "processes; `idle_machine_seconds` = `cpu_seconds / workers`, the wall-clock time "
        "the same work takes when the workers have a core each (a projection, not a "
        "measurement).",
        "",
        "Each simulated study draws 200 patients (or the curve's size) at weeks "
        f"{', '.join(f'{w:g}' for w in WEEKS)} from a random intercept and slope model with "
        "dropout (5 % / 8 % before each visit) and fits the report's trajectory model "
        "`y ~ weeks * group + (1 + weeks | patient)` with `fit_lmm` (REML, the fast route "
        "escalating when needed, the fallback rule, Satterthwaite df), the design prepared "
        "once per size.",
        "",
    ]
    if per_fit is not None:
        parts += [
            f"One fit of the same 200-patient study, median of {repeats} (load average "
            f"{load:.1f}):",
            "",
            markdown_table(per_fit, "{:.4f}"),
            "",
        ]
    if len(table):
        parts += [markdown_table(table, "{:.3f}"), ""]
    if result is not None:
        t1 = result.type_one_error.iloc[0]
        curve = result.curve[["n_total", "power_analytic_t", "power_simulated", "mc_se"]]
        parts += [
            f"Type-I error at n = {int(t1.n_total)}: {t1.rejection_rate:.3f} (Monte Carlo SE "
            f"{t1.mc_se:.3f}) for a nominal {t1.alpha_test:g}.",
            "",
            "Power curve (formula with a t on N - 2 df; simulation):",
            "",
            markdown_table(curve, "{:.3f}"),
            "",
        ]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Run the three measurements, writing the results after each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000, help="studies of 200 patients")
    parser.add_argument("--curve-sims", type=int, help="studies per size of the curve")
    parser.add_argument("--workers", type=int, default=simulate.default_workers())
    parser.add_argument("--fits", type=int, default=20, help="fits of the one study (median)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of measurements 2 and 3 (median)"
    )
    parser.add_argument("--skip-r", action="store_true", help="time Python only (no lme4)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if min(args.repeat, args.fits) < 1:
        parser.error("--repeat and --fits must be at least 1")
    if not args.skip_r:
        require_r(("lme4", "lmerTest"), "benchmarks/planning.py", "--skip-r")
    curve_sims = args.curve_sims or args.sims
    rows: list[dict] = []

    def save(per_fit, result, load) -> None:
        text = summary_text(pd.DataFrame(rows), per_fit, result, args.fits, load)
        paths = write_results(args.out, "planning", pd.DataFrame(rows), text)
        print("Wrote " + ", ".join(map(str, paths)), file=sys.stderr)

    print(f"1. one study, {args.fits} fits: engine and lme4", file=sys.stderr)
    frame = one_study_frame()
    fit_load = os.getloadavg()[0]
    plain, prepared = time_python(frame, args.fits)
    r = None if args.skip_r else time_lme4(frame, args.fits)
    per_fit = pd.DataFrame(
        {
            "fit": [
                "fit_lmm (DataFrame, patsy design)",
                "fit_lmm (prepared design, as simulated)",
                "lme4::lmer",
                "lme4::lmer + lmerTest Satterthwaite set-up",
            ],
            "median_seconds": [
                plain,
                prepared,
                np.nan if r is None else r[0],
                np.nan if r is None else r[0] + r[1],
            ],
        }
    )
    save(per_fit, None, fit_load)

    print(f"2. {args.sims} studies of 200 patients ({args.workers} workers)", file=sys.stderr)
    runs, (seconds, cpu, load) = timed_runs(
        args.repeat,
        lambda: simulate.run_simulations(
            design((200,)),
            ASSUMPTIONS,
            (200,),
            args.sims,
            2026,
            workers=args.workers,
            progress=_plan_progress(time.perf_counter()),
        ),
    )
    ok = runs.loc[runs["failed"] == ""]
    rows.append(
        {
            "measurement": f"{args.sims} studies x 200 patients",
            "runs": args.repeat,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "idle_machine_seconds": cpu / args.workers,
            "target_seconds": 60.0,
            "fits": len(runs),
            "mean_fit_seconds": ok["fit_seconds"].mean(),
            "power": runs["reject"].mean(),
            "share_fallback": ok["fallback"].mean(),
            "share_failed": (runs["failed"] != "").mean(),
            "workers": args.workers,
            "load_average": load,
        }
    )
    save(per_fit, None, fit_load)

    print(f"3. power curve, {len(GRID)} sizes x {curve_sims} + null", file=sys.stderr)
    result, (seconds, cpu, load) = timed_runs(
        args.repeat,
        lambda: plan_study(
            design(GRID),
            ASSUMPTIONS,
            curve_sims,
            2026,
            workers=args.workers,
            progress=_plan_progress(time.perf_counter()),
        ),
    )
    rows.append(
        {
            "measurement": f"power curve {len(GRID)} sizes x {curve_sims} + null x {curve_sims}",
            "runs": args.repeat,
            "seconds": seconds,
            "cpu_seconds": cpu,
            "idle_machine_seconds": cpu / args.workers,
            "target_seconds": 300.0 * curve_sims / 1000,
            "fits": curve_sims * (len(GRID) + 1),
            "mean_fit_seconds": result.simulations["mean_fit_seconds"].mean(),
            "power": np.nan,
            "share_fallback": result.curve["share_fallback"].mean(),
            "share_failed": result.curve["share_failed"].mean(),
            "workers": args.workers,
            "load_average": load,
        }
    )
    save(per_fit, result, fit_load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
