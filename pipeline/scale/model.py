"""The headline trajectory models fitted over the partitions of the analysis data set.

For each declared outcome and patient-level comparison, the model of
:func:`pipeline.analyses.plans.trajectory_plan` (SAP §4.1: ``y ~ T * G + covariates``, random
intercept and slope for ``T`` per patient, REML, Satterthwaite df):

1. **scan**: each partition reports, over its complete model rows, the levels each categorical
   variable takes, the sum of each numeric variable and of the time at each visit, and its row
   count (:func:`scan_partition`); the driver adds them up: the levels, means and visit times
   the in-memory plan would read of the whole data set (:class:`ModelFrame`);
2. **reduce**: each partition builds its patients' blocks (``GroupedCrossproducts``) with the
   design coded by the driver's patsy design, and keeps them where it runs;
3. **fit**: the optimiser runs on the driver on
   :class:`pipeline.lmm.partitioned.PartitionedCrossproducts` (each evaluation sends ``theta``
   and gathers ``O(p^2)`` numbers per partition), with the inference of
   :func:`pipeline.lmm.sufficient.fit_crossproducts`; fixed effects, variance components,
   contrasts and marginal means are then built by the same functions as the in-memory path
   (:func:`pipeline.analyses.plans.plan_contrasts`, :func:`~pipeline.analyses.plans.plan_emmeans`)
   from the fit and a one-row frame holding the study-wide levels and means.

Actual times (weeks from dates) differ between patients, so the statistics cannot be grouped
by schedule; they are reduced per evaluation (issue 22's second route).
"""

from __future__ import annotations

import functools
import time as clock
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import patsy

from pipeline.analyses.plans import (
    TEXT_CATEGORICALS,
    TIME_COLUMNS,
    TIME_UNITS,
    ModelPlan,
    plan_contrasts,
    plan_emmeans,
    response_column,
    site_as_fixed,
    site_as_random,
)
from pipeline.config.settings import Config
from pipeline.errors import UserError
from pipeline.lmm.deviance import GroupedCrossproducts
from pipeline.lmm.partitioned import PartitionedCrossproducts
from pipeline.lmm.sufficient import SufficientFit, fit_crossproducts
from pipeline.privacy.pseudonyms import PSEUDONYM
from pipeline.schemas.identity import AnalysisId, AnalysisKind

GROUP = PSEUDONYM  # processed data carry the pseudonym, one per patient

__all__ = ["ModelFrame", "ModelSpec", "ScaledFit", "fit_headlines", "model_specs"]


@dataclass(frozen=True)
class ModelSpec:
    """One trajectory model: its response, time, group, covariates and random slope."""

    outcome: str
    response: str
    factor: str
    time: str
    time_unit: str
    covariates: tuple[str, ...]
    categorical: tuple[str, ...]
    random_slope: bool
    df_method: str

    @property
    def variables(self) -> tuple[str, ...]:
        """Every variable of the fixed-effect formula."""
        return (self.time, self.factor, *self.covariates)

    @property
    def columns(self) -> list[str]:
        """Columns whose values a model row needs (``model_rows``' complete cases)."""
        return list(
            dict.fromkeys([self.response, self.time, self.factor, "visit", *self.covariates])
        )

    @property
    def rhs(self) -> str:
        """Patsy right-hand side, as ``trajectory_plan`` writes it."""
        return " + ".join([f"{self.time} * {self.factor}", *self.covariates])


def model_specs(config: Config, levels: Mapping[str, list]) -> list[ModelSpec]:
    """Return the headline trajectory models of a study: every outcome x patient-level comparison.

    Raises
    ------
    UserError
        The models would need a site random intercept (``[model] site``), which the scaled
        path does not fit.
    """
    settings = config.model
    sites = pd.DataFrame({"site": levels.get("site", [])})
    if site_as_random(settings, sites):
        raise UserError(
            f"{config.source}: [model] site gives a site random intercept, which the "
            '"polars" and "dask" backends do not fit; set [model] site = "fixed" or "none"'
        )
    covariates = list(settings.covariates)
    if site_as_fixed(settings, sites) and "site" not in covariates:
        covariates.append("site")
    specs = []
    for comparison in config.study.comparisons:
        if comparison.randomised:
            continue  # its headline is the visit-level model, fitted by the pandas path only
        for outcome in config.study.outcomes:
            specs.append(
                ModelSpec(
                    outcome=outcome.name,
                    response=response_column(outcome.name),
                    factor=comparison.name,
                    time=TIME_COLUMNS[settings.time_axis],
                    time_unit=TIME_UNITS[settings.time_axis],
                    covariates=tuple(covariates),
                    categorical=tuple(
                        c
                        for c in (comparison.name, *covariates)
                        if c in levels or c in TEXT_CATEGORICALS
                    ),
                    random_slope=bool(settings.random_slope),
                    df_method=settings.df_method,
                )
            )
    return specs


def _model_rows(path: Path, spec: ModelSpec) -> pd.DataFrame:
    """Complete model rows of one partition, categorical columns as text."""
    frame = pd.read_parquet(path, columns=[GROUP, *spec.columns])
    frame = frame.dropna()
    for column in spec.categorical:
        frame[column] = frame[column].astype("object").astype(str)
    return frame.reset_index(drop=True)


def scan_partition(path: Path, spec: ModelSpec) -> dict[str, Any]:
    """Return what the driver needs of one partition's model rows (step 1)."""
    rows = _model_rows(path, spec)
    numeric = [v for v in spec.variables if v not in spec.categorical]
    by_visit = rows.groupby("visit")[spec.time].agg(["sum", "count"])
    return {
        "n_rows": len(rows),
        "n_patients": int(rows[GROUP].nunique()),
        "levels": {c: sorted(rows[c].unique()) for c in spec.categorical},
        "sums": {v: float(rows[v].astype("float64").sum()) for v in numeric},
        "visits": {int(v): (float(r["sum"]), int(r["count"])) for v, r in by_visit.iterrows()},
    }


@functools.lru_cache(maxsize=32)
def _design_info(rhs: str, levels: tuple, numeric: tuple) -> Any:
    """Build patsy's design of ``rhs`` for these levels (where used: it does not pickle)."""
    width = max([len(v) for _, v in levels] + [2])
    grid: dict[str, Any] = {
        c: pd.Categorical([v[i % len(v)] for i in range(width)], categories=list(v))
        for c, v in levels
    }
    grid.update({c: np.arange(width, dtype=float) for c in numeric})
    return patsy.dmatrix(rhs, pd.DataFrame(grid)).design_info


@dataclass(frozen=True)
class ModelFrame:
    """The study-wide levels, means and visit times of one model's rows."""

    spec: ModelSpec
    levels: dict[str, list]
    means: dict[str, float]
    points: dict[int, float]
    n_rows: int
    n_patients: int

    @property
    def design_info(self) -> Any:
        """The patsy design of the model, coded with the study-wide levels."""
        levels = tuple((c, tuple(v)) for c, v in self.levels.items())
        return _design_info(self.spec.rhs, levels, tuple(self.means))

    def summary_rows(self) -> pd.DataFrame:
        """Return one row with every level (as categories) and the numeric means.

        It is what the marginal means read of the model rows.
        """
        row: dict[str, Any] = {}
        for column, values in self.levels.items():
            row[column] = pd.Categorical([values[0]], categories=values)
        for column, mean in self.means.items():
            row[column] = [mean]
        return pd.DataFrame(row)


def model_frame(
    spec: ModelSpec, scans: Sequence[dict[str, Any]], order: Mapping[str, list]
) -> ModelFrame:
    """Add the partitions' scans up into the :class:`ModelFrame` of ``spec``.

    ``order`` holds the study-wide level order of the categorical columns of the analysis data
    set; text columns (site, sex) are sorted, as ``model_rows`` sorts them.
    """
    n_rows = sum(s["n_rows"] for s in scans)
    levels = {}
    for column in spec.categorical:
        used = set().union(*(s["levels"][column] for s in scans))
        if column in order and column not in TEXT_CATEGORICALS:
            levels[column] = [v for v in map(str, order[column]) if v in used]
        else:
            levels[column] = sorted(used)
    means = {
        v: sum(s["sums"][v] for s in scans) / n_rows for v in spec.variables if v not in levels
    }
    visits: dict[int, list[float]] = {}
    for scan in scans:
        for visit, (total, count) in scan["visits"].items():
            acc = visits.setdefault(visit, [0.0, 0])
            acc[0] += total
            acc[1] += count
    points = {v: visits[v][0] / visits[v][1] for v in sorted(visits)}
    return ModelFrame(spec, levels, means, points, n_rows, sum(s["n_patients"] for s in scans))


def build_part(path: Path, frame: ModelFrame, q: int) -> GroupedCrossproducts:
    """One partition's patient blocks, coded with the study-wide design (step 2)."""
    spec = frame.spec
    rows = _model_rows(path, spec)
    for column, values in frame.levels.items():
        rows[column] = pd.Categorical(rows[column], categories=values)
    (x,) = patsy.build_design_matrices([frame.design_info], rows, NA_action="raise")
    z = np.ones((len(rows), q))
    if q == 2:
        z[:, 1] = rows[spec.time].to_numpy(dtype=float)
    codes = pd.factorize(rows[GROUP])[0]
    return GroupedCrossproducts(rows[spec.response].to_numpy(dtype=float), np.asarray(x), z, codes)


@dataclass(frozen=True)
class ScaledFit:
    """A fit from the partitions, with what the contrast and marginal-mean code reads."""

    fit: SufficientFit
    design_info: Any
    evaluations: int

    @property
    def design_columns(self) -> tuple[str, ...]:
        """Fixed-effect names."""
        return self.fit.design_columns

    def design_matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """Fixed-effect design rows of a grid (as :meth:`LmmFit.design_matrix`)."""
        (mat,) = patsy.build_design_matrices([self.design_info], frame, NA_action="raise")
        return np.asarray(mat, dtype=float)

    def contrast(self, contrasts: np.ndarray, labels: Sequence[str]) -> pd.DataFrame:
        """Estimate, SE, Satterthwaite df, t, p and CI of ``L beta``."""
        return self.fit.contrast(contrasts, labels)


def fit_partitions(executor: Any, paths: Sequence[Path], frame: ModelFrame) -> ScaledFit:
    """Fit one model over the partitions (steps 2 and 3)."""
    spec = frame.spec
    random = ["(Intercept)", *([spec.time] if spec.random_slope else [])]
    kept: list[list[Any]] = []

    def criterion(q: int) -> PartitionedCrossproducts:
        parts = executor.keep(build_part, list(paths), frame, q)
        kept.append(parts)
        return PartitionedCrossproducts(
            lambda function, *args: executor.on_kept(function, parts, *args), q
        )

    try:
        gc = criterion(len(random))
        fit = fit_crossproducts(
            gc,
            list(frame.design_info.column_names),
            GROUP,
            random,
            reml=True,
            df_method=spec.df_method,
            intercept_only=lambda: criterion(1),
        )
    finally:
        for parts in kept:
            executor.release(parts)
    return ScaledFit(fit, frame.design_info, gc.evaluations)


def plan_of(frame: ModelFrame, random_slope: str | None) -> ModelPlan:
    """Return the in-memory plan, its rows replaced by :meth:`ModelFrame.summary_rows`."""
    spec = frame.spec
    identity = AnalysisId(AnalysisKind.TRAJECTORY, spec.factor)
    return ModelPlan(
        analysis=identity.name,
        outcome=spec.outcome,
        response=spec.response,
        rows=frame.summary_rows(),
        rhs=spec.rhs,
        variables=spec.variables,
        random_slope=random_slope,
        time=spec.time,
        time_unit=spec.time_unit,
        points=frame.points,
        factors=(spec.factor,),
        identity=identity,
    )


def model_tables(frame: ModelFrame, scaled: ScaledFit, seconds: float) -> dict[str, pd.DataFrame]:
    """Return fixed effects, variance components, contrasts, marginal means, diagnostics."""
    fit = scaled.fit
    slope = fit.random_effects[1] if len(fit.random_effects) == 2 else None
    plan = plan_of(frame, slope)
    label = {"analysis": plan.analysis, "outcome": plan.outcome}
    fixed = fit.fixed_effects.assign(**label)
    variance = fit.variance_components.assign(
        group=lambda t: t["group"].replace(GROUP, "patient"), **label
    )
    contrasts = plan_contrasts(plan, scaled).assign(**label)
    means = plan_emmeans(plan, scaled).assign(**label)
    diagnostics = pd.DataFrame(
        [
            {
                **label,
                "formula": plan.formula,
                "n_obs": fit.n_obs,
                "n_patients": fit.n_groups,
                "random_effects": "intercept + slope" if slope else "intercept",
                "converged": fit.converged,
                "fallback": fit.fallback or "",
                "criterion_evaluations": scaled.evaluations,
                "fit_seconds": seconds,
            }
        ]
    )
    first = ["analysis", "outcome"]

    def lead(table: pd.DataFrame) -> pd.DataFrame:
        return table[first + [c for c in table.columns if c not in first]]

    return {
        "fixed_effects": lead(fixed),
        "variance_components": lead(variance),
        "contrasts": lead(contrasts),
        "emmeans": lead(means),
        "diagnostics": diagnostics,
    }


def fit_headlines(
    executor: Any,
    paths: Sequence[Path],
    config: Config,
    order: Mapping[str, list],
    progress: Callable[[str], None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Fit every headline trajectory model over the partitions; return the tidy tables.

    Parameters
    ----------
    executor : LocalExecutor or DaskExecutor
        Where the partitions are processed (:mod:`pipeline.scale.cluster`).
    paths : sequence of Path
        The analysis data set's partitions.
    config : Config
        The configuration.
    order : mapping
        Study-wide level order of the categorical columns (:func:`tables.global_levels`).

    progress : callable, optional
        Called with one line as each model starts and ends.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``fixed_effects, variance_components, contrasts, emmeans, diagnostics``, one block per
        model.
    """
    say = progress or (lambda line: None)
    out: dict[str, list[pd.DataFrame]] = {}
    specs = model_specs(config, order)
    for number, spec in enumerate(specs, start=1):
        say(f"  model {number}/{len(specs)}: {spec.response} ~ {spec.rhs}")
        started = clock.perf_counter()
        scans = executor.map(scan_partition, list(paths), spec)
        used = [p for p, s in zip(paths, scans, strict=True) if s["n_rows"]]
        scans = [s for s in scans if s["n_rows"]]
        if not scans:
            continue
        frame = model_frame(spec, scans, order)
        scaled = fit_partitions(executor, used, frame)
        say(
            f"  model {number}/{len(specs)}: {scaled.evaluations} criterion evaluations, "
            f"{clock.perf_counter() - started:.1f} s"
        )
        for name, table in model_tables(frame, scaled, clock.perf_counter() - started).items():
            out.setdefault(name, []).append(table)
    return {name: pd.concat(tables, ignore_index=True) for name, tables in out.items()}
