"""The criterion summed over partitions of whole groups equals the row-level engine's.

The reference is the row-level engine itself (``GroupedCrossproducts`` and ``fit_lmm``), which
tests/lmm compares with lme4/lmerTest in R; here the groups are split into three partitions of
unequal size and every piece the optimiser and the Satterthwaite df read must agree.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy

from pipeline.lmm import fit_lmm
from pipeline.lmm.deviance import GroupedCrossproducts
from pipeline.lmm.partitioned import PartitionedCrossproducts
from pipeline.lmm.sufficient import fit_crossproducts


def _data(seed: int = 3, n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for patient in range(n):
        group = "b" if patient % 2 else "a"
        b0, b1 = rng.normal(0, 1.5), rng.normal(0, 0.3)
        for week in np.sort(rng.uniform(0, 12, size=rng.integers(2, 6))):
            y = 6 + b0 + (b1 - 0.2 - 0.1 * (group == "b")) * week + rng.normal(0, 1)
            rows.append({"patient": f"p{patient:03d}", "group": group, "week": week, "y": y})
    frame = pd.DataFrame(rows)
    frame["group"] = pd.Categorical(frame["group"], categories=["a", "b"])
    return frame


def _crossproducts(frame: pd.DataFrame, q: int) -> GroupedCrossproducts:
    x = patsy.dmatrix("week * group", frame, return_type="dataframe").to_numpy()
    z = np.ones((len(frame), q))
    if q == 2:
        z[:, 1] = frame["week"].to_numpy()
    return GroupedCrossproducts(frame["y"].to_numpy(), x, z, pd.factorize(frame["patient"])[0])


def _partitioned(frame: pd.DataFrame, q: int) -> PartitionedCrossproducts:
    patients = frame["patient"].unique()
    cuts = [patients[:7], patients[7:31], patients[31:]]
    parts = [_crossproducts(frame[frame["patient"].isin(c)], q) for c in cuts]
    return PartitionedCrossproducts(lambda f, *args: [f(p, *args) for p in parts], q)


def test_every_piece_of_the_criterion_is_the_row_level_one():
    frame = _data()
    whole, split = _crossproducts(frame, 2), _partitioned(frame, 2)
    assert (split.n_obs, split.n_groups) == (whole.n_obs, whole.n_groups)
    theta = np.array([0.9, 0.05, 0.2])
    a, b = whole.derivatives(theta, covariance=True), split.derivatives(theta, covariance=True)
    for name in ("logdet_m", "pwrss", "logdet_xwx", "xwx"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-10, err_msg=name)
    np.testing.assert_allclose(b.terms.beta, a.terms.beta, rtol=1e-10)
    assert np.isclose(split.profiled_deviance(theta, True), whole.profiled_deviance(theta, True))


def test_the_fit_from_partitions_is_fit_lmm():
    frame = _data()
    expected = fit_lmm(frame, "y", "week * group", "patient", random_slope="week")
    names = list(expected.design_columns)
    fit = fit_crossproducts(
        _partitioned(frame, 2),
        names,
        "patient",
        ["(Intercept)", "week"],
        intercept_only=lambda: _partitioned(frame, 1),
    )
    for column in ("estimate", "std_err", "df"):
        np.testing.assert_allclose(
            fit.fixed_effects[column].to_numpy(),
            expected.fixed_effects[column].to_numpy(),
            rtol=1e-6,
            err_msg=column,
        )
    np.testing.assert_allclose(fit.sigma, expected.sigma, rtol=1e-7)
