"""The headline trajectory models fitted over the partitions of the analysis data set.

For each declared outcome and patient-level comparison, the model of
:func:`pipeline.analyses.plans.trajectory_plan` (SAP §4.1: ``y ~ T * G + covariates``, random
intercept and slope for ``T`` per patient, REML, Satterthwaite df):

1. **scan**: each partition is read once for every model and reports, over each model's
   complete rows, the levels each categorical variable takes, the sum of each numeric variable
   and of the time at each visit, and its row count (:func:`scan_partition`); the driver adds
   them up: the levels, means and visit times the in-memory plan would read of the whole data
   set (:class:`ModelFrame`);
2. **reduce**: each partition builds its patients' blocks (``GroupedCrossproducts``) with the
   design coded by the driver's patsy design (:func:`design_matrix`: patsy codes the level
   combinations, numpy the rows), and keeps them where it runs;
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
from pipeline.lmm.blas import single_threaded
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


def _read(path: Path, specs: Sequence[ModelSpec]) -> pd.DataFrame:
    """Read the columns every model of ``specs`` needs of one partition, once."""
    columns = list(dict.fromkeys(c for spec in specs for c in spec.columns))
    return pd.read_parquet(path, columns=[GROUP, *columns])


def _model_rows(frame: pd.DataFrame, spec: ModelSpec) -> pd.DataFrame:
    """Complete model rows of one partition (``model_rows``' complete cases), in file order."""
    columns = [GROUP, *spec.columns]
    return frame[columns].dropna().reset_index(drop=True)


def _labelled(column: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes of a categorical or text column and the text of each code.

    The text is the value's ``str``, as ``astype("object").astype(str)`` writes it, without
    converting every row: a categorical column keeps its codes, a text column is factorised.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), [str(v) for v in column.cat.categories]
    codes, uniques = pd.factorize(column.astype("object"), use_na_sentinel=True)
    return codes, [str(v) for v in uniques]


def _scan(rows: pd.DataFrame, spec: ModelSpec) -> dict[str, Any]:
    numeric = [v for v in spec.variables if v not in spec.categorical]
    by_visit = rows.groupby("visit")[spec.time].agg(["sum", "count"])
    levels = {}
    for column in spec.categorical:
        codes, labels = _labelled(rows[column])
        levels[column] = sorted({labels[k] for k in np.unique(codes)})
    return {
        "n_rows": len(rows),
        "n_patients": int(rows[GROUP].nunique()),
        "levels": levels,
        "sums": {v: float(rows[v].astype("float64").sum()) for v in numeric},
        "visits": {int(v): (float(r["sum"]), int(r["count"])) for v, r in by_visit.iterrows()},
    }


def scan_partition(path: Path, specs: Sequence[ModelSpec]) -> list[dict[str, Any]]:
    """Return what the driver needs of one partition's rows of every model (step 1).

    The partition is read once for all the models.
    """
    frame = _read(path, specs)
    return [_scan(_model_rows(frame, spec), spec) for spec in specs]


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


def design_matrix(frame: ModelFrame, rows: pd.DataFrame) -> np.ndarray:
    """Return the fixed-effect design of ``rows``, coded with the study-wide design of ``frame``.

    Patsy codes only the distinct combinations of the categorical variables (a few rows, the
    numeric variables set to 1); each row takes its combination's row, and the columns of a
    term with numeric factors are multiplied by their values. Every column of ``y ~ T * G +
    covariates`` is a product of contrast values and numeric values, so this is the matrix
    ``patsy.build_design_matrices`` builds from the rows, without coding every row in Python.
    """
    info = frame.design_info
    names = list(frame.levels)
    codes = np.empty((len(rows), len(names)), dtype=np.int64)
    for k, column in enumerate(names):
        local, labels = _labelled(rows[column])
        found = pd.Index(frame.levels[column]).get_indexer(labels)
        codes[:, k] = found[local]
    if (codes < 0).any():
        raise ValueError("a model row holds a level the study-wide scan did not find")
    # one integer per combination of levels, then the combinations present, in O(rows)
    sizes = [len(frame.levels[c]) for c in names]
    key = np.ravel_multi_index(codes.T, sizes) if names else np.zeros(len(rows), np.int64)
    present = np.zeros(int(np.prod(sizes)), dtype=bool)
    present[key] = True
    found = np.flatnonzero(present)
    rank = np.cumsum(present) - 1
    which = rank[key]
    combos = np.column_stack(np.unravel_index(found, sizes)) if names else found[:, None][:, :0]
    grid: dict[str, Any] = {
        c: pd.Categorical.from_codes(combos[:, k], categories=frame.levels[c])
        for k, c in enumerate(names)
    }
    grid.update({c: np.ones(len(combos)) for c in frame.means})
    (coded,) = patsy.build_design_matrices([info], pd.DataFrame(grid), NA_action="raise")
    x = np.asarray(coded, dtype=float)[which]
    for term, columns in info.term_slices.items():
        for factor in term.factors:
            if info.factor_infos[factor].type == "numerical":
                x[:, columns] *= rows[factor.name()].to_numpy(dtype=float)[:, None]
    return x


def build_parts(path: Path, frames: Sequence[ModelFrame], q: int) -> list[GroupedCrossproducts]:
    """One partition's patient blocks of every model of ``frames`` (step 2), read once."""
    data = _read(path, [f.spec for f in frames])
    out = []
    for frame in frames:
        spec = frame.spec
        rows = _model_rows(data, spec)
        z = np.ones((len(rows), q))
        if q == 2:
            z[:, 1] = rows[spec.time].to_numpy(dtype=float)
        codes = pd.factorize(rows[GROUP])[0]
        y = rows[spec.response].to_numpy(dtype=float)
        out.append(GroupedCrossproducts(y, design_matrix(frame, rows), z, codes))
    return out


def build_part(path: Path, frame: ModelFrame, q: int) -> GroupedCrossproducts:
    """One partition's patient blocks of one model."""
    return build_parts(path, [frame], q)[0]


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
    if not specs:
        return {}
    with single_threaded():  # the driver's small products (pipeline.lmm.blas)
        every = executor.map(scan_partition, list(paths), specs)
        for number, spec in enumerate(specs, start=1):
            scans = [s[number - 1] for s in every]
            label = f"{number}/{len(specs)}"
            for name, table in _fit_one(executor, paths, spec, scans, order, label, say).items():
                out.setdefault(name, []).append(table)
    return {name: pd.concat(tables, ignore_index=True) for name, tables in out.items()}


def _fit_one(
    executor: Any,
    paths: Sequence[Path],
    spec: ModelSpec,
    scans: Sequence[dict[str, Any]],
    order: Mapping[str, list],
    label: str,
    say: Callable[[str], None],
) -> dict[str, pd.DataFrame]:
    """Fit one model from its partitions' scans; return its tables (none without rows)."""
    say(f"  model {label}: {spec.response} ~ {spec.rhs}")
    started = clock.perf_counter()
    used = [p for p, s in zip(paths, scans, strict=True) if s["n_rows"]]
    scans = [s for s in scans if s["n_rows"]]
    if not scans:
        return {}
    frame = model_frame(spec, scans, order)
    scaled = fit_partitions(executor, used, frame)
    say(
        f"  model {label}: {scaled.evaluations} criterion evaluations, "
        f"{clock.perf_counter() - started:.1f} s"
    )
    return model_tables(frame, scaled, clock.perf_counter() - started)
