"""Shared helpers of the federation tests: split a study by clinic, share, refit all rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.analyses.plans import GROUP
from pipeline.config.settings import Config, load_config
from pipeline.derive.dataset import analysis_dataset
from pipeline.federate.disclosure import assign_cells
from pipeline.federate.pool import CLINIC, PooledModel
from pipeline.federate.share import build_share, estimand_vectors, fixed_formula, model_rows
from pipeline.federate.spec import CATEGORICAL_COVARIATES, specification
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.lmm import FAST_ROUTES, fit_lmm
from pipeline.validate.study import validate_study

DEMO_SCHEDULE = "schedule = { 0 = 0, 1 = 2, 2 = 4, 3 = 8, 4 = 12 }\n"


def federation_config(folder: Path, inputs: dict[str, Path], body: str, **sections: str) -> Config:
    """A configuration with a ``[federation]`` section ``body`` (and other sections)."""
    from factories import write_config

    return load_config(write_config(folder, inputs, federation=body, **sections))


def study_data(inputs: dict[str, Path], config: Config) -> pd.DataFrame:
    """The analysis data set of raw CSV files."""
    v = validate_study(read_raw_tables(inputs))
    return analysis_dataset(
        v.valid("patients"), v.valid("sessions"), v.valid("assessments"), config
    )


def shares_by_site(data: pd.DataFrame, config: Config) -> list[tuple[Path, dict]]:
    """One share file per site, as each clinic would build it."""
    return [
        (Path(f"{site}.share"), build_share(data.loc[data["site"] == site], config))
        for site in sorted(data["site"].unique())
    ]


def shared_rows(data: pd.DataFrame, config: Config) -> pd.DataFrame:
    """The rows the share files hold (every clinic's rows after the disclosure rules)."""
    spec = specification(config)
    strata = ["site", *spec["groups"]]
    strata += [c for c in spec["covariates"] if c in CATEGORICAL_COVARIATES]
    parts = []
    for site in sorted(data["site"].unique()):
        rows, _ = model_rows(data.loc[data["site"] == site], spec)
        parts.append(assign_cells(rows, GROUP, "visit", strata, spec["min_patients_per_cell"]).rows)
    out = pd.concat(parts, ignore_index=True)
    out[CLINIC] = pd.Categorical(out["site"], categories=sorted(out["site"].unique()))
    for column in out.columns:
        if isinstance(out[column].dtype, pd.CategoricalDtype):
            out[column] = out[column].cat.remove_unused_categories()
    return out


def all_rows_fit(rows: pd.DataFrame, config: Config, model: PooledModel):
    """The row-level fit of the pooled model (clinic as a fixed effect) on ``rows``."""
    spec = specification(config)
    rhs = fixed_formula(spec, model.group)
    if spec["clinic_effect"] == "fixed" and len(rows[CLINIC].unique()) > 1:
        rhs += f" + {CLINIC}"
    return fit_lmm(
        rows,
        spec["outcomes"][model.outcome],
        rhs,
        group=GROUP,
        random_slope=spec["nominal_time"] if spec["random_slope"] else None,
        df_method=spec["df_method"],
        routes=FAST_ROUTES,
        site=CLINIC if spec["clinic_effect"] == "random" else None,
    )


def relative_gap(model: PooledModel, ref, config: Config) -> dict[str, float]:
    """Largest relative differences between a pooled fit and the all-rows fit.

    Fixed effects (estimate, SE, Satterthwaite df), variances, the correlation (absolute) and
    the headline estimands (estimate, SE, df).
    """
    a = model.fit.fixed_effects.set_index("term")
    b = ref.fixed_effects.set_index("term")
    assert sorted(a.index) == sorted(b.index)
    a = a.loc[b.index]
    out = {}
    for col in ("estimate", "std_err", "df"):
        out[col] = float(np.max(np.abs(a[col] - b[col]) / np.abs(b[col])))
    va, vb = model.fit.variance_components, ref.variance_components
    assert list(va["term"]) == list(vb["term"])
    both = ~vb["variance"].isna()
    out["variance"] = float(
        np.max(np.abs(va["variance"][both] - vb["variance"][both]) / vb["variance"][both])
    )
    cor_a, cor_b = va["correlation"].dropna(), vb["correlation"].dropna()
    if len(cor_b):
        out["correlation"] = float(np.max(np.abs(cor_a.to_numpy() - cor_b.to_numpy())))
    spec = specification(config)
    gaps = []
    for key, label, vector in estimand_vectors(ref.design_columns, spec, model.group):
        theirs = ref.contrast(vector, label).iloc[0]
        mine = model.estimands.set_index("estimand").loc[key]
        for col in ("estimate", "std_err", "df"):
            gaps.append(abs(mine[col] - theirs[col]) / abs(theirs[col]))
    out["estimands"] = float(max(gaps))
    return out
