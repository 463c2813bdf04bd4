"""Every mixed-model fit of the analysis plan, timed in Python and in R's lme4 on the same rows.

For each study size the simulator (:mod:`pipeline.demo.simulate`) writes a study, the pipeline
ingests, validates and derives it, and :func:`pipeline.analyses.run.analysis_plans` lists the
models.
Each plan is then fitted as ``outcomes run`` fits it (:func:`pipeline.analyses.plans.fit_plan`, one
process, inside :func:`pipeline.lmm.reuse.sharing_designs`: the ML refit of the full model reuses
the REML fit's design and cross products, and a reduced model takes its columns from the full
model's, so the REML fit carries the cost of preparing the rows), and every call of the
mixed-model engine is timed: the REML fit with Satterthwaite degrees of freedom, and the ML fits
of the likelihood-ratio tests. The same fits are then run
by ``benchmarks/lme4_fits.R`` in one ``Rscript`` process per size, on the same rows (written
to CSV), timing only the ``lme4::lmer()`` call and, for REML fits, lmerTest's Satterthwaite
set-up (``as_lmerModLmerTest``: the deviance Hessian and Jacobian that lmerTest::lmer adds).

Ratios are Python / R:

* ``ratio``: our fit / (``lmer()`` + lmerTest's Satterthwaite set-up for REML fits), the same
  work on both sides;
* ``ratio_lmer``: our fit / ``lmer()`` alone (stricter for REML fits, whose Python time
  includes the Satterthwaite derivatives).

When a random-slope model falls back to a random intercept (boundary fit), R is timed on both
models, as an analyst would refit after lme4's singular-fit message.

Usage::

    python benchmarks/models.py [--sizes 2000 20000 100000] [--seed 7] [--only REGEX] [--repeat 3]

Each fit is timed ``--repeat`` times on each side (default 3: Python fits every plan that many
times over, then R runs its script that many times), and its time is the median of its runs.

Results: ``reports/benchmarks/models.csv`` (one row per analysis and size),
``models_fits.csv`` (one row per fit) and ``models.md`` (summary).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from harness import (
    DEFAULT_OUT,
    DEFAULT_WORK,
    ROOT,
    analysis_data,
    commit,
    machine,
    markdown_table,
    r_problem,
    require_r,
    simulated_study,
    write_results,
)

import pipeline.analyses.plans as an
from pipeline import outputs
from pipeline.analyses.run import analysis_plans
from pipeline.lmm.reuse import sharing_designs

R_SCRIPT = ROOT / "benchmarks" / "lme4_fits.R"
R_PACKAGES = ("lme4", "lmerTest")
RELEVEL = {"depth": "superficial", "twitch": "no twitch", "chronicity": "acute"}


class FitRecorder:
    """Wrap the engine's ``fit_lmm`` as the analyses call it, timing each call."""

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self._original: Callable | None = None

    def __enter__(self) -> FitRecorder:
        self._original = an.fit_lmm
        original = self._original

        def timed(data, response, fixed, group, random_slope=None, reml=True, **kwargs):
            started = time.perf_counter()
            fit = original(data, response, fixed, group, random_slope, reml, **kwargs)
            self.calls.append(
                {
                    "rhs": fixed,
                    "reml": reml,
                    "random_slope": random_slope,
                    "final_slope": fit.random_slope,
                    "satterthwaite": kwargs.get("df_method", "satterthwaite") == "satterthwaite",
                    "seconds": time.perf_counter() - started,
                    "criterion": fit.criterion,
                    "optimizer": fit.optimizer,
                    "n_obs": fit.n_obs,
                    "n_patients": fit.n_groups,
                }
            )
            return fit

        an.fit_lmm = timed
        return self

    def __exit__(self, *exc: object) -> None:
        an.fit_lmm = self._original


def rows_for_r(plan: an.ModelPlan, path: Path) -> tuple[Path, str]:
    """Write a plan's rows as R reads them; return the file and its relevel specification."""
    rows = plan.rows.copy()
    relevel = {k: v for k, v in RELEVEL.items() if k in rows}
    for column in rows.columns:
        if isinstance(rows[column].dtype, pd.CategoricalDtype):
            if column not in relevel and column != an.GROUP:
                relevel[column] = str(rows[column].cat.categories[0])
            rows[column] = rows[column].astype(str)
    rows.to_csv(path, index=False)
    return path, ";".join(f"{k}={v}" for k, v in relevel.items())


def r_formula(response: str, rhs: str, slope: str | None) -> str:
    """Return the lme4 formula of one fit."""
    random = f"(1 + {slope} | {an.GROUP})" if slope else f"(1 | {an.GROUP})"
    return f"{response} ~ {rhs} + {random}"


def fit_label(call: dict, plan: an.ModelPlan) -> str:
    """REML, ML full or ML reduced (which test)."""
    if call["reml"]:
        return "REML"
    reduced = {rhs: test for test, rhs in plan.reduced}
    return f"ML reduced ({reduced[call['rhs']]})" if call["rhs"] in reduced else "ML full"


def fit_python(plans: list[an.ModelPlan], df_method: str, size: int) -> pd.DataFrame:
    """Fit every plan as the pipeline does; one row per engine call, with the plan's time."""
    rows = []
    for i, plan in enumerate(plans, start=1):
        tests = not plan.analysis.startswith("sensitivity_")
        # as outcomes run fits a plan (pipeline.analyses.run._fit): its ML refits reuse the
        # REML fit's design, and a reduced model takes its columns from the full model's
        with FitRecorder() as recorder, sharing_designs():
            started = time.perf_counter()
            result = an.fit_plan(plan, df_method, tests=tests)
            plan_seconds = time.perf_counter() - started
        status = result.diagnostics["status"].iloc[0]
        print(
            f"  [{size:,} patients] python {i}/{len(plans)} {plan.analysis} ({plan.outcome}): "
            f"{plan_seconds:.2f} s, {len(recorder.calls)} fit(s), {status}",
            file=sys.stderr,
            flush=True,
        )
        for k, call in enumerate(recorder.calls):
            rows.append(
                {
                    "plan": i - 1,
                    "fit": k,
                    "analysis": plan.analysis,
                    "outcome": plan.outcome,
                    "kind": fit_label(call, plan),
                    "plan_seconds": plan_seconds,
                    **call,
                }
            )
    return pd.DataFrame(rows)


def manifest_for_r(plans: list[an.ModelPlan], fits: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """One R fit per engine call (two when our random slope fell back to an intercept)."""
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, plan in enumerate(plans):
        calls = fits[fits["plan"] == i]
        if calls.empty:
            continue
        path, relevel = rows_for_r(plan, folder / f"rows-{i:02d}.csv")
        for call in calls.itertuples():
            asked, final = _slope(call.random_slope), _slope(call.final_slope)
            structures = [asked] if final == asked else [asked, final]
            for j, slope in enumerate(structures):
                entries.append(
                    {
                        "id": f"{i}:{call.fit}:{j}",
                        "data": str(path),
                        "formula": r_formula(plan.response, call.rhs, slope),
                        "reml": "TRUE" if call.reml else "FALSE",
                        "satterthwaite": "TRUE" if call.reml and call.satterthwaite else "FALSE",
                        "relevel": relevel,
                    }
                )
    return pd.DataFrame(entries)


def _slope(value: object) -> str | None:
    """Return the random-slope column, or None (pandas turns None into NaN in mixed columns)."""
    return value if isinstance(value, str) else None


def fit_r(manifest: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """Run ``lme4_fits.R`` on the manifest in one R process; one row per R fit."""
    manifest_path = folder / "manifest.csv"
    out = folder / "lme4_times.csv"
    manifest.to_csv(manifest_path, index=False)
    done = subprocess.run(
        ["Rscript", str(R_SCRIPT), str(manifest_path), str(out)], check=False, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{R_SCRIPT.name} failed with exit code {done.returncode}")
    return pd.read_csv(out, dtype={"id": str, "criterion": float}, keep_default_na=False)


def median_runs(runs: list[pd.DataFrame], keys: list[str], times: list[str]) -> pd.DataFrame:
    """Return the first run's rows with each of ``times`` the median over ``runs``.

    Parameters
    ----------
    runs : list of pandas.DataFrame
        The same fits timed again (same ``keys``, in the same order).
    keys : list of str
        Columns naming a fit.
    times : list of str
        Columns of seconds.

    Returns
    -------
    pandas.DataFrame
        The first run, its times replaced by the medians, and ``runs`` (how many).
    """
    first = runs[0].copy()
    stacked = pd.concat(
        [
            r[keys + times].assign(**{t: pd.to_numeric(r[t], errors="coerce") for t in times})
            for r in runs
        ],
        ignore_index=True,
    )
    medians = stacked.groupby(keys, sort=False)[times].median()
    first = first.drop(columns=times).merge(medians.reset_index(), on=keys, how="left")
    return first.assign(runs=len(runs))


def join(fits: pd.DataFrame, r: pd.DataFrame | None) -> pd.DataFrame:
    """Add R's time and criterion to each of our fits."""
    fits = fits.copy()
    if r is None:
        for column in ("lmer_seconds", "satterthwaite_seconds", "r_seconds", "r_criterion"):
            fits[column] = np.nan
    else:
        parts = r["id"].str.split(":", expand=True).astype(int)
        r = r.assign(plan=parts[0], fit=parts[1], structure=parts[2])
        r["seconds_satterthwaite"] = pd.to_numeric(r["seconds_satterthwaite"], errors="coerce")
        sums = r.groupby(["plan", "fit"]).agg(
            lmer_seconds=("seconds_lme4", "sum"),
            satterthwaite_seconds=("seconds_satterthwaite", lambda s: s.fillna(0.0).sum()),
            r_criterion=("criterion", "last"),
            r_messages=("messages", lambda s: " | ".join(m for m in s if m)),
        )
        fits = fits.merge(sums.reset_index(), on=["plan", "fit"], how="left")
        fits["r_seconds"] = fits["lmer_seconds"] + fits["satterthwaite_seconds"]
    fits["ratio"] = fits["seconds"] / fits["r_seconds"]
    fits["ratio_lmer"] = fits["seconds"] / fits["lmer_seconds"]
    fits["criterion_minus_r"] = fits["criterion"] - fits["r_criterion"]
    return fits


def per_analysis(fits: pd.DataFrame) -> pd.DataFrame:
    """One row per analysis: summed fit times on each side and their ratios."""
    grouped = fits.groupby(["patients", "plan"], sort=True)
    table = grouped.agg(
        analysis=("analysis", "first"),
        outcome=("outcome", "first"),
        n_obs=("n_obs", "first"),
        random_effects=(
            "final_slope",
            lambda s: "int + slope" if _slope(s.iloc[0]) else "intercept",
        ),
        fits=("fit", "size"),
        plan_seconds=("plan_seconds", "first"),
        python_seconds=("seconds", "sum"),
        lmer_seconds=("lmer_seconds", "sum"),
        r_seconds=("r_seconds", "sum"),
        max_fit_ratio=("ratio", "max"),
    ).reset_index()
    table["ratio"] = table["python_seconds"] / table["r_seconds"]
    table["ratio_lmer"] = table["python_seconds"] / table["lmer_seconds"]
    return table.drop(columns="plan")


def summary(
    table: pd.DataFrame, fits: pd.DataFrame, r_note: str, seed: int, measured: str = ""
) -> str:
    """Markdown summary: per size totals, then every analysis."""
    lines = [
        "# Mixed-model fits of the plan: Python engine vs R lme4",
        "",
        f"Machine: {machine()}. Simulated studies (`outcomes simulate`, seed {seed}).",
        f"R: {r_note}.",
        *([measured] if measured else []),
        "",
        "Python: each plan fitted as `outcomes run` fits it (`fit_plan`, one process); "
        "time of every engine call (REML fit with Satterthwaite df, ML fits of the "
        "likelihood-ratio tests). R: the same fits by `benchmarks/lme4_fits.R`, one Rscript "
        "process, timing `lme4::lmer()` and, for REML fits, lmerTest's Satterthwaite set-up. "
        "`ratio` = Python / (lmer + Satterthwaite set-up); `ratio_lmer` = Python / lmer alone; "
        "`max_fit_ratio` = the worst single fit of the analysis (`worst_fit_ratio`, "
        "`worst_fit_ratio_lmer`: of the size). "
        "`plan_seconds` adds marginal means and contrasts.",
        "",
        "## Totals per size",
        "",
    ]
    totals = table.groupby("patients").agg(
        analyses=("analysis", "size"),
        fits=("fits", "sum"),
        python_seconds=("python_seconds", "sum"),
        lmer_seconds=("lmer_seconds", "sum"),
        r_seconds=("r_seconds", "sum"),
        worst_analysis_ratio=("ratio", "max"),
        worst_fit_ratio=("max_fit_ratio", "max"),
    )
    totals["ratio"] = totals["python_seconds"] / totals["r_seconds"]
    totals["worst_fit_ratio_lmer"] = fits.groupby("patients")["ratio_lmer"].max()
    lines.append(markdown_table(totals.reset_index()))
    if fits["criterion_minus_r"].notna().any():
        relative = fits["criterion_minus_r"] / fits["r_criterion"].abs()
        worst = fits.loc[fits["criterion_minus_r"].idxmax()]
        lines += [
            "",
            "Optimum reached: the (RE)ML criterion of every Python fit minus lme4's is at "
            f"most {worst['criterion_minus_r']:.2g} ({relative.max():.1g} of the criterion, "
            f"{worst['analysis']} {worst['outcome']} {worst['kind']} at {worst['patients']:,} "
            "patients: floating-point rounding), and as low as "
            f"{fits['criterion_minus_r'].min():.2g} where lme4's default optimiser stops "
            "short of the optimum.",
        ]
    for size, part in table.groupby("patients"):
        lines += ["", f"## {size:,} patients", ""]
        lines.append(markdown_table(part.drop(columns="patients")))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; write ``models.csv``, ``models_fits.csv`` and ``models.md``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000, 100000])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", default="", help="regular expression on analysis names")
    parser.add_argument("--outcomes", nargs="+", default=None, help="nrs, vas, odi")
    parser.add_argument("--skip-r", action="store_true", help="time Python only")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every fit (median)")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="rewrite models.csv and models.md from an existing models_fits.csv",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.summary_only:
        fits = pd.read_csv(args.out / "models_fits.csv")
        table = per_analysis(fits)
        note = _r_versions() if r_problem(R_PACKAGES) is None else "versions not recorded"
        for path in write_results(args.out, "models", table, summary(table, fits, note, args.seed)):
            print(f"wrote {path}", file=sys.stderr)
        return 0

    if not args.skip_r:
        require_r(R_PACKAGES, "benchmarks/models.py", "--skip-r")
    r_note = "not run: skipped (--skip-r)" if args.skip_r else _r_versions()
    measured_at = commit()
    all_fits = []
    for size in args.sizes:
        study = simulated_study(size, args.seed, args.work)
        folder = args.work / f"models-{size}"
        data, config = analysis_data(study, folder)
        plans = [
            p
            for p in (
                analysis_plans(data, config.model, args.outcomes)
                if args.outcomes
                else analysis_plans(data, config.model)
            )
            if re.search(args.only, p.analysis)
        ]
        fits = median_runs(
            [fit_python(plans, config.model.df_method, size) for _ in range(args.repeat)],
            ["plan", "fit"],
            ["seconds", "plan_seconds"],
        )
        r = None
        if not args.skip_r:
            manifest = manifest_for_r(plans, fits, folder)
            r = median_runs(
                [fit_r(manifest, folder) for _ in range(args.repeat)],
                ["id"],
                ["seconds_lme4", "seconds_satterthwaite"],
            )
        all_fits.append(join(fits, r).assign(patients=size))
    fits = pd.concat(all_fits, ignore_index=True)
    table = per_analysis(fits)
    measured = (
        f"Commit {measured_at}, {args.repeat} run(s) per size (Python and R in the same run; "
        f"each fit's time on each side is the median of its runs), load "
        f"{os.getloadavg()[0]:.2f} at the end."
    )
    written = write_results(
        args.out, "models", table, summary(table, fits, r_note, args.seed, measured)
    )
    written.append(outputs.write_csv(args.out / "models_fits.csv", fits))
    for path in written:
        print(f"wrote {path}", file=sys.stderr)
    return 0


def _r_versions() -> str:
    done = subprocess.run(
        [
            "Rscript",
            "-e",
            'cat(R.version.string, "lme4", format(packageVersion("lme4")), '
            '"lmerTest", format(packageVersion("lmerTest")))',
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "version unknown"


if __name__ == "__main__":
    sys.exit(main())
