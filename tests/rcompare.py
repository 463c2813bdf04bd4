"""Comparing the pipeline's mixed-model numbers with R's lme4 / lmerTest output.

Helpers shared by the tests that run ``tests/r/lmer_fit.R`` (through the ``lmer_r`` fixture in
``conftest.py``) or paste its numbers.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from pipeline.lmm.fit import LmmFit


def r_name(term: str) -> str:
    """patsy column name -> lme4 coefficient name (factor references set as in R)."""
    term = re.sub(r"C\((\w+), Treatment\('[^']*'\)\)\[T\.([^\]]+)\]", r"\1\2", term)
    term = re.sub(r"(\w+)\[T\.([^\]]+)\]", r"\1\2", term)
    return "(Intercept)" if term == "Intercept" else term


def sig_tol(expected: float, digits: int) -> float:
    """Half a unit in the ``digits``-th significant digit of ``expected``."""
    if expected == 0:
        return 0.5 * 10.0 ** (-digits)
    return 0.5 * 10.0 ** (math.floor(math.log10(abs(expected))) - digits + 1)


def assert_sig(actual: float, expected: float, digits: int, what: str) -> None:
    assert abs(actual - expected) <= sig_tol(expected, digits), (
        f"{what}: {actual!r} vs R {expected!r} (not equal to {digits} significant digits)"
    )


def assert_rel(actual: float, expected: float, rel: float, what: str) -> None:
    assert abs(actual - expected) <= rel * abs(expected), (
        f"{what}: {actual!r} vs R {expected!r} (relative difference > {rel})"
    )


def vc_values(fit: LmmFit) -> dict[str, float]:
    """Variance components as R's ``as.data.frame(VarCorr(fit))`` keys ``grp|var1|var2``."""
    out = {}
    for row in fit.variance_components.itertuples():
        if row.group == "Residual":
            out["Residual|NA|"] = row.variance
        elif row.term.startswith("cor("):
            slope = fit.random_slope
            out[f"{row.group}|(Intercept)|{slope}"] = row.correlation
        else:
            out[f"{row.group}|{row.term}|"] = row.variance
    return out


def check_against(fit: LmmFit, ref: dict, fe_digits: int = 4, vc_digits: int = 3) -> None:
    """Compare a fit with an R reference at the plan's tolerances."""
    table = fit.fixed_effects.set_index("term")
    assert sorted(r_name(t) for t in table.index) == sorted(ref["estimate"])
    for term, row in table.iterrows():
        name = r_name(term)
        assert_sig(row.estimate, ref["estimate"][name], fe_digits, f"estimate {name}")
        assert_sig(row.std_err, ref["std_err"][name], fe_digits, f"std_err {name}")
        assert_rel(row.df, ref["df"][name], 0.01, f"df {name}")
    ours = vc_values(fit)
    floor = 1e-8 * ref["vc"]["Residual|NA|"]  # a variance at the boundary: both ~0
    for key, value in ref["vc"].items():
        correlation = not key.endswith("|")
        if correlation or abs(value) > floor or abs(ours[key]) > floor:
            assert_sig(ours[key], value, vc_digits, f"variance component {key}")
    assert_rel(fit.criterion, ref["criterion"], 1e-8, "criterion")


def parse_r(table: pd.DataFrame) -> dict:
    """The lmer_fit.R output as a reference dictionary like the pasted ones."""

    def pick(kind: str) -> dict[str, float]:
        sub = table[table.kind == kind]
        return dict(zip(sub.name, sub.value.astype(float), strict=True))

    return {
        "estimate": pick("estimate"),
        "std_err": pick("std_err"),
        "df": pick("df"),
        "vc": {**pick("variance"), **pick("correlation")},
        "criterion": float(table.loc[table.kind == "criterion", "value"].iloc[0]),
        "theta": np.array(list(pick("theta").values())),
        "sigma": float(table.loc[table.kind == "sigma", "value"].iloc[0]),
        "singular": table.loc[table.kind == "singular", "value"].iloc[0] == "TRUE",
        "n_obs": int(table.loc[table.kind == "n_obs", "value"].iloc[0]),
        "contrast_estimate": pick("contrast_estimate"),
        "contrast_std_err": pick("contrast_std_err"),
        "contrast_df": pick("contrast_df"),
        "messages": table.loc[table.kind == "message", "value"].tolist(),
        "ranef": pick("ranef"),
        "residuals": np.array(list(pick("residual").values())),
    }


def check_mmrm_against_gls(result, ref: pd.DataFrame, factor: str) -> None:
    """Compare a plan's MMRM result with ``tests/r/gls_plan.R`` (unstructured, REML).

    Fixed effects and their model-based SEs to 4 significant digits, the covariance across
    visits to 3, the LS means and SEs per level and visit and the differences at each visit to
    4 (emmeans on the gls fit, ``mode = "df.error"``: model-based SEs, so ours are taken from
    the model-based covariance, not Kenward-Roger's adjusted one).
    """
    table = ref[["kind", "name", "value"]]
    values = {(k, n): float(v) for k, n, v in table.itertuples(index=False)}
    fit = result.fit
    model = fit.with_df_method("satterthwaite")  # model-based (X'V^-1X)^-1
    for row in model.fixed_effects.itertuples():
        name = r_name(row.term)
        # R: coef(gls_fit); sqrt(diag(vcov(gls_fit)))
        assert_sig(row.estimate, values[("estimate", name)], 4, f"estimate {name}")
        assert_sig(row.std_err, values[("std_err", name)], 4, f"SE {name}")
    sigma = fit.covariance[None].to_numpy()
    for i in range(sigma.shape[0]):
        for j in range(sigma.shape[1]):
            # R: getVarCov(gls_fit, individual = <a patient seen at every visit>)
            assert_sig(sigma[i, j], values[("sigma", f"{i + 1}|{j + 1}")], 3, f"sigma {i},{j}")
    # R: -2 logLik(gls_fit) (REML) is the criterion
    assert_sig(fit.criterion, -2.0 * values[("loglik", "REML")], 7, "REML criterion")
    for row in result.emmeans.itertuples():
        key = f"{row.level}|{row.time:g}"
        # R: summary(emmeans(gls_fit, FACTOR, by = VISIT, mode = "df.error"))
        assert_sig(row.estimate, values[("lsmean", key)], 4, f"LS mean {key}")
    means = model.lsmeans(factor)
    for row in means.itertuples():
        key = f"{row.level}|{row.time:g}"
        assert_sig(row.std_err, values[("lsmean_se", key)], 4, f"LS mean SE {key}")
    levels = list(fit.rows[factor].cat.categories)
    for level in levels[1:]:
        own = model.visit_differences(factor, level, levels[0])
        table = result.contrasts[result.contrasts["contrast"].str.startswith(f"{level} − ")]
        for row, kr in zip(own.itertuples(), table.itertuples(), strict=True):
            key = f"{level} - {levels[0]}|{row.time:g}"
            # R: summary(contrast(emmeans(...), "trt.vs.ctrl"))
            assert_sig(kr.estimate, values[("contrast", key)], 4, f"difference {key}")
            assert_sig(row.std_err, values[("contrast_se", key)], 4, f"difference SE {key}")
            assert kr.std_err >= row.std_err  # Kenward-Roger's adjustment only inflates
