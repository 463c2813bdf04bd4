"""Formulas against the simulated report model, where the formulas are exact.

Balanced groups, no dropout, the variance components known: the Diggle slope variance is then
the exact variance of the GLS slope difference, and with a t test on ``N - 2`` degrees of
freedom its power is what the report's random-intercept-and-slope model should reach; with no
slope variance, Lu, Luo & Chen's variance is exact for the baseline-adjusted difference at the
last visit, which the random-intercept change model estimates. :func:`agreement_grid` simulates
a grid of such designs and reports, for each, the analytic power, the simulated power, its
Monte Carlo SE and whether they agree within 2 Monte Carlo SEs — and the type-I error at the
null.

The test suite runs a small grid (tests/planning); ``make validate-stats`` runs
``python -m pipeline.planning.agreement --sims 1000`` and writes
``reports/validation/planning_agreement.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.planning import analytic
from pipeline.planning.answers import analytic_contrast, contrast_effect
from pipeline.planning.design import Assumptions, Design
from pipeline.planning.simulate import run_simulations, summarise

__all__ = ["AGREEMENT_COLUMNS", "Case", "agreement_grid", "default_cases"]

AGREEMENT_COLUMNS = [
    "case",
    "analysis",
    "scenario",
    "n_total",
    "alpha",
    "sims",
    "power_analytic_t",
    "power_analytic_z",
    "rejection_rate",
    "mc_se",
    "z_score",
    "within_2_mc_se",
    "share_fallback",
    "share_failed",
]


@dataclass(frozen=True)
class Case:
    """One exact design: schedule, variance components, effect at the last week, size, level."""

    name: str
    analysis: str
    n_total: int
    effect: float
    sd_intercept: float = 1.2
    sd_slope: float = 0.15
    correlation: float = -0.3
    sd_residual: float = 1.0
    weeks: tuple[float, ...] = (0.0, 2.0, 4.0, 8.0, 12.0)
    alpha: float = 0.05

    def design(self) -> Design:
        """Return the balanced design of this case."""
        return Design(
            outcome="nrs",
            comparison="arm",
            reference="control",
            compared="treatment",
            allocation=1.0,
            weeks=self.weeks,
            analysis=self.analysis,
            primary_visit=len(self.weeks) - 1,
            alpha=self.alpha,
            holm_family=1,
            target_power=0.8,
            n=self.n_total,
            n_grid=(self.n_total,),
            mcid=2.0,
        )

    def assumptions(self) -> Assumptions:
        """Return the known variance components, no dropout."""
        none = (0.0,) * (len(self.weeks) - 1)
        return Assumptions(
            effect=self.effect,
            sd_intercept=self.sd_intercept,
            sd_slope=self.sd_slope,
            correlation=self.correlation,
            sd_residual=self.sd_residual,
            hazards_reference=none,
            hazards_compared=none,
        )


def default_cases() -> tuple[Case, ...]:
    """Return the grid run by ``make validate-stats``: two analyses, three sizes, two effects."""
    cases = []
    for n in (40, 80, 160):
        for effect in (1.0, 2.0):
            cases.append(Case(f"slope n={n} effect={effect:g}", "slope", n, effect * 40 / n))
            cases.append(
                Case(f"visit n={n} effect={effect:g}", "visit", n, effect * 40 / n, sd_slope=0.0)
            )
    return tuple(cases)


def agreement_grid(
    cases: Sequence[Case], sims: int, seed: int = 20261202, *, null: bool = True, workers: int = 1
) -> pd.DataFrame:
    """Simulate each case (and its null) and compare with the formula.

    Parameters
    ----------
    cases : sequence of Case
        Exact designs.
    sims : int
        Simulated studies per case and scenario.
    seed : int
        Root seed.
    null : bool
        Also simulate each case with no effect (type-I error).
    workers : int
        Processes.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`AGREEMENT_COLUMNS`, one row per case and scenario (``effect``, ``null``).
    """
    rows = []
    for k, case in enumerate(cases):
        design, assumptions = case.design(), case.assumptions()
        runs = run_simulations(
            design,
            assumptions,
            (case.n_total,),
            sims,
            seed + k,
            null_sizes=(case.n_total,) if null else (),
            workers=workers,
        )
        contrast = analytic_contrast(design, assumptions)
        for row in summarise(runs).itertuples():
            effect = contrast_effect(design, assumptions) if row.scenario == "effect" else 0.0
            p_t = analytic.power(contrast, effect, case.n_total, design.alpha_test, "t")
            p_z = analytic.power(contrast, effect, case.n_total, design.alpha_test, "z")
            se = float(np.sqrt(p_t * (1 - p_t) / row.sims))
            z = (row.rejection_rate - p_t) / se if se > 0 else np.nan
            rows.append(
                (
                    case.name,
                    case.analysis,
                    row.scenario,
                    case.n_total,
                    design.alpha_test,
                    row.sims,
                    p_t,
                    p_z,
                    row.rejection_rate,
                    se,
                    z,
                    bool(abs(z) <= 2.0),
                    row.share_fallback,
                    row.share_failed,
                )
            )
    return pd.DataFrame(rows, columns=AGREEMENT_COLUMNS)


def _markdown(grid: pd.DataFrame, sims: int, seed: int) -> str:
    lines = [
        "# Formula against simulation where the formula is exact",
        "",
        f"`python -m pipeline.planning.agreement --sims {sims} --seed {seed}`: balanced groups, no "
        "dropout, known variance components. Slope: the trajectory model (random intercept and "
        "slope) against Diggle et al.'s GLS slope variance; visit: the random-intercept change "
        "model against Lu, Luo & Chen's variance (no slope variance). Analytic power from a t "
        "test on N - 2 df; the Monte Carlo SE is that of the analytic power.",
        "",
        "| case | scenario | n | formula (t) | simulated | MC SE | z | within 2 SE |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in grid.itertuples():
        lines.append(
            f"| {r.case} | {r.scenario} | {r.n_total} | {r.power_analytic_t:.3f} | "
            f"{r.rejection_rate:.3f} | {r.mc_se:.3f} | {r.z_score:+.2f} | "
            f"{'yes' if r.within_2_mc_se else 'NO'} |"
        )
    agree = grid["within_2_mc_se"].mean()
    lines += ["", f"{agree:.0%} of the rows agree within 2 Monte Carlo SEs (about 95 % expected)."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the default grid and write ``planning_agreement.csv`` and ``.md``."""
    from pipeline import outputs
    from pipeline.planning.simulate import default_workers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("reports/validation"))
    args = parser.parse_args(argv)
    grid = agreement_grid(
        default_cases(), args.sims, args.seed, workers=args.workers or default_workers()
    )
    outputs.write_csv(args.out / "planning_agreement.csv", grid)
    text = _markdown(grid, args.sims, args.seed)
    outputs.write_text(args.out / "planning_agreement.md", text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
