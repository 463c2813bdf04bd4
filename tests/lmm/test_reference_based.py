"""Reference-based conditional mean imputation: the theorems it must hold, exactly.

Expected values are derived, not copied: the MAR theorem and the J2R / CR / CIR closed forms
are in the docstring of :mod:`pipeline.lmm.reference_based` (Wolbers et al. 2022,
Pharmaceutical Statistics 21:1246, section 2; Carpenter, Roger and Kenward 2013 for the
strategies' means) and are computed here from the MMRM's own ``beta`` and ``Sigma`` with an
independent least-squares fit, never through the module's imputer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.lmm import reference_based as rb
from pipeline.lmm.likelihood import Likelihood
from pipeline.lmm.mmrm import fit_mmrm

FORMULA = "visit * (C(arm, Treatment('ctl')) + base)"
ANCOVA = "C(arm, Treatment('ctl')) + base"


def _trial(n: int = 90, seed: int = 3, intermittent: bool = False):
    rng = np.random.default_rng(seed)
    t = 3
    arm = np.where(np.arange(n) % 2 == 0, "ctl", "trt")
    base = rng.normal(10, 2, n)
    chol = np.array([[2.0, 0, 0], [1.2, 1.5, 0], [0.8, 1.0, 1.4]])
    y = (
        5
        + 0.5 * base[:, None]
        + np.array([0.0, -1, -2])
        + (arm == "trt")[:, None] * np.array([-1.0, -2, -3])
        + rng.normal(size=(n, t)) @ chol.T
    )
    kept = rng.integers(0, 6, n)  # visits attended before dropout (>= 3: completer)
    for i in range(n):
        if kept[i] < t:
            y[i, kept[i] :] = np.nan
    if intermittent:
        y[rng.random(n) < 0.1, 0] = np.nan
    long = pd.DataFrame(
        {
            "pid": np.repeat(np.arange(n), t),
            "visit": np.tile(np.arange(1, t + 1), n),
            "y": y.ravel(),
            "arm": np.repeat(arm, t),
            "base": np.repeat(base, t),
        }
    ).dropna()
    long["visit"] = pd.Categorical(long["visit"], categories=[1, 2, 3])
    patients = pd.DataFrame({"pid": np.arange(n), "arm": arm, "base": base})
    return long, patients, y


@pytest.fixture(scope="module")
def monotone():
    long, patients, y = _trial()
    fit = fit_mmrm(long, "y", FORMULA, "visit", "pid", "us", df_method="z")
    data = rb.build_cmi_data(fit, patients, y, "arm", "ctl", ANCOVA)
    strategies = {s: np.full(len(patients), s) for s in rb.STRATEGIES}
    result = rb.conditional_mean_imputation(fit, data, strategies)
    return long, patients, y, fit, data, result


def _ols_weights(patients: pd.DataFrame) -> np.ndarray:
    """Row of ``(Z'Z)^{-1}Z'`` for the arm coefficient, by least squares on unit vectors."""
    z = np.column_stack(
        [np.ones(len(patients)), (patients["arm"] == "trt").astype(float), patients["base"]]
    )
    return np.linalg.lstsq(z, np.eye(len(patients)), rcond=None)[0][1]


def test_mar_cmi_reproduces_the_mmrm_exactly(monotone):
    _, _, _, fit, _, result = monotone
    mmrm = fit.visit_differences("arm", "trt", "ctl")["estimate"].to_numpy()
    mar = result.estimate[result.strategies.index("MAR"), 0]
    # Theorem (module docstring): MAR-CMI + per-visit ANCOVA = the fully interacted MMRM.
    np.testing.assert_allclose(mar, mmrm, rtol=0, atol=1e-8)


def test_mar_theorem_holds_with_intermittent_missing_visits():
    long, patients, y = _trial(n=80, seed=11, intermittent=True)
    fit = fit_mmrm(long, "y", FORMULA, "visit", "pid", "us", df_method="z")
    data = rb.build_cmi_data(fit, patients, y, "arm", "ctl", ANCOVA)
    result = rb.conditional_mean_imputation(
        fit, data, {"MAR": np.full(len(patients), "MAR")}, jackknife=False
    )
    mmrm = fit.visit_differences("arm", "trt", "ctl")["estimate"].to_numpy()
    np.testing.assert_allclose(result.estimate[0, 0], mmrm, rtol=0, atol=1e-8)


def _closed_form_pieces(monotone):
    _, patients, y, fit, _, result = monotone
    delta = fit.visit_differences("arm", "trt", "ctl")["estimate"].to_numpy()
    sigma = fit.covariance[None].to_numpy()
    w = _ols_weights(patients)
    trt = (patients["arm"] == "trt").to_numpy()
    return result, delta, sigma, w, trt, y


@pytest.mark.parametrize("visit", [0, 1, 2])
def test_j2r_closed_form(monotone, visit):
    result, delta, _, w, trt, y = _closed_form_pieces(monotone)
    imputed = np.isnan(y[:, visit]) & trt
    b = w @ imputed.astype(float)  # arm coefficient of the OLS of the indicator
    expected = delta[visit] * (1.0 - b)
    got = result.estimate[result.strategies.index("J2R"), 0, visit]
    assert got == pytest.approx(expected, abs=1e-8)


@pytest.mark.parametrize("visit", [1, 2])
def test_cr_and_cir_closed_forms(monotone, visit):
    result, delta, sigma, w, trt, y = _closed_form_pieces(monotone)
    cr = cir = delta[visit]
    for i in np.flatnonzero(trt & np.isnan(y[:, visit])):
        obs = np.flatnonzero(~np.isnan(y[i]))
        back = sigma[visit, obs] @ np.linalg.solve(sigma[np.ix_(obs, obs)], delta[obs])
        cr += w[i] * (-delta[visit] + back)
        last = delta[obs[-1]] if obs.size else 0.0
        cir += w[i] * (last - delta[visit])
    assert result.estimate[result.strategies.index("CR"), 0, visit] == pytest.approx(cr, abs=1e-8)
    assert result.estimate[result.strategies.index("CIR"), 0, visit] == pytest.approx(cir, abs=1e-8)


def test_strategy_means_by_hand():
    own = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    ref = np.array([[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]])
    ice = np.array([1, 0])  # first post-ICE visit
    cases = {
        "MAR": [[1, 2, 3], [1, 2, 3]],
        "J2R": [[1, 0.5, 0.5], [0.5, 0.5, 0.5]],
        "CR": [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]],
        "CIR": [[1, 1, 1], [0.5, 0.5, 0.5]],
        "LMCF": [[1, 1, 1], [0.5, 0.5, 0.5]],
    }
    for name, expected in cases.items():
        got = rb.strategy_means(own, ref, ice, np.array([name, name]))
        np.testing.assert_allclose(got, expected, err_msg=name)
    with pytest.raises(ValueError, match="unknown strategies"):
        rb.strategy_means(own, ref, ice, np.array(["LOCF", "MAR"]))


def test_leave_one_out_estimates_equal_refits(monotone):
    long, _, _, _, _, result = monotone
    for i in (0, 7):
        refit = fit_mmrm(long[long["pid"] != i], "y", FORMULA, "visit", "pid", "us", df_method="z")
        loo = refit.visit_differences("arm", "trt", "ctl")["estimate"].to_numpy()
        np.testing.assert_allclose(result.jackknife[i, 0, 0], loo, rtol=0, atol=1e-7)
    assert result.n_fallback == 0


def test_jackknife_se_is_close_to_the_model_se_under_mar(monotone):
    _, _, _, fit, _, result = monotone
    model = fit.visit_differences("arm", "trt", "ctl")["std_err"].to_numpy()
    jack = result.std_err()[result.strategies.index("MAR"), 0]
    # The jackknife is a consistent SE of the same estimator: within 25 % at n = 90.
    np.testing.assert_allclose(jack, model, rtol=0.25)


def test_tipping_delta_enters_linearly(monotone):
    _, patients, y, _, _, result = monotone
    mar = result.strategies.index("MAR")
    w = _ols_weights(patients)
    completed = result.imputed[mar][:, 2].copy()
    trt = (patients["arm"] == "trt").to_numpy()
    completed[np.isnan(y[:, 2]) & trt] += 1.5
    shifted = result.shifted(np.array([0.0, 1.5]))[mar, 0, 2]
    assert shifted == pytest.approx(w @ completed, abs=1e-9)
    # A delta in the reference group lowers the difference (group minus reference).
    assert result.shifted(np.array([1.5, 0.0]))[mar, 0, 2] < result.estimate[mar, 0, 2]


def test_bootstrapped_mi_agrees_with_the_mmrm_under_mar(monotone):
    _, patients, _, fit, data, _ = monotone
    mi = rb.multiple_imputation(fit, data, {"MAR": np.full(len(patients), "MAR")}, m=40, seed=5)
    mmrm = fit.visit_differences("arm", "trt", "ctl")
    # Proper MI under MAR estimates what the MMRM estimates; Rubin's SE estimates its SE.
    # Tolerances: Monte Carlo error of 40 imputations (Rubin 1987, ch. 3) - a quarter of an SE.
    np.testing.assert_allclose(
        mi.estimate[0, 0], mmrm["estimate"], atol=0.25 * float(mmrm["std_err"].max())
    )
    np.testing.assert_allclose(mi.std_err[0, 0], mmrm["std_err"], rtol=0.3)
    assert np.all(mi.df[0, 0] > 10)


# ------------------------------------------------------------ a separate Sigma per group
def test_joint_sigma_gives_the_reference_conditional_after_the_ice():
    # Carpenter, Roger and Kenward (2013), section 4.3: under J2R / CIR the post-ICE values
    # given the pre-ICE ones follow the reference's regression and residual covariance, while
    # the pre-ICE block keeps the patient's own group's covariance.
    rng = np.random.default_rng(4)
    a = rng.normal(size=(4, 4))
    b = rng.normal(size=(4, 4))
    own, ref = a @ a.T + 4 * np.eye(4), b @ b.T + 4 * np.eye(4)
    for ice in (1, 2, 3):
        sig = rb.joint_sigma(own, ref, ice)
        pre, post = np.arange(ice), np.arange(ice, 4)
        np.testing.assert_allclose(sig, sig.T, atol=1e-12)
        assert np.all(np.linalg.eigvalsh(sig) > 0)
        np.testing.assert_allclose(sig[np.ix_(pre, pre)], own[np.ix_(pre, pre)], atol=1e-12)
        coef = np.linalg.solve(sig[np.ix_(pre, pre)], sig[np.ix_(pre, post)])
        coef_ref = np.linalg.solve(ref[np.ix_(pre, pre)], ref[np.ix_(pre, post)])
        np.testing.assert_allclose(coef, coef_ref, atol=1e-10)
        cond = sig[np.ix_(post, post)] - sig[np.ix_(post, pre)] @ coef
        cond_ref = ref[np.ix_(post, post)] - ref[np.ix_(post, pre)] @ coef_ref
        np.testing.assert_allclose(cond, cond_ref, atol=1e-10)
    np.testing.assert_array_equal(rb.joint_sigma(own, ref, 0), ref)
    np.testing.assert_array_equal(rb.joint_sigma(own, ref, 4), own)


@pytest.fixture(scope="module")
def separate():
    long, patients, y = _trial(n=120, seed=8)
    fit = fit_mmrm(long, "y", FORMULA, "visit", "pid", "us", df_method="z", covariance_group="arm")
    data = rb.build_cmi_data(fit, patients, y, "arm", "ctl", ANCOVA)
    strategies = {s: np.full(len(patients), s) for s in rb.STRATEGIES}
    result = rb.conditional_mean_imputation(fit, data, strategies)
    return long, patients, y, fit, data, result


def test_separate_sigmas_condition_each_patient_by_strategy(separate):
    _, patients, y, fit, data, result = separate
    own = fit.covariance["trt"].to_numpy()
    ref = fit.covariance["ctl"].to_numpy()
    assert not np.allclose(own, ref, rtol=0.05)  # the two groups' matrices do differ
    mu_own = data.x_own @ fit.beta
    mu_ref = data.x_ref @ fit.beta
    trt = (patients["arm"] == "trt").to_numpy()
    # A treated patient seen at the first visit only (ICE at visit index 1).
    i = int(np.flatnonzero(trt & ~np.isnan(y[:, 0]) & np.isnan(y[:, 1]))[0])
    o, m = np.array([0]), np.array([1, 2])

    def regress(sig, mean):
        coef = np.linalg.solve(sig[np.ix_(o, o)], sig[np.ix_(o, m)])
        return mean[m] + (y[i, o] - mean[o]) @ coef

    expected = {
        # MAR: own means, own Sigma
        "MAR": regress(own, mu_own[i]),
        # J2R: reference means after the ICE, the reference's regression (joint Sigma)
        "J2R": regress(ref, np.r_[mu_own[i, 0], mu_ref[i, 1:]]),
        # CR: the reference's means and Sigma throughout
        "CR": regress(ref, mu_ref[i]),
        # LMCF: own Sigma, the last own mean carried
        "LMCF": regress(own, np.full(3, mu_own[i, 0])),
    }
    for name, value in expected.items():
        got = result.imputed[result.strategies.index(name), i, 1:]
        np.testing.assert_allclose(got, value, atol=1e-9, err_msg=name)
    # A reference patient is imputed with the reference's Sigma under every strategy.
    j = int(np.flatnonzero(~trt & ~np.isnan(y[:, 0]) & np.isnan(y[:, 1]))[0])
    mar = result.imputed[result.strategies.index("MAR"), j]
    np.testing.assert_allclose(result.imputed[result.strategies.index("J2R"), j], mar)


def test_separate_sigmas_leave_one_out_equal_refits(separate):
    # Each jackknife replicate (chord-Newton from the full fit, downdated cross-products) must
    # be the whole method run again without the patient: refit, re-impute, re-analyse.
    long, patients, y, _, _, result = separate
    for i in (0, 5):
        keep = (patients["pid"] != i).to_numpy()
        refit = fit_mmrm(
            long[long["pid"] != i],
            "y",
            FORMULA,
            "visit",
            "pid",
            "us",
            df_method="z",
            covariance_group="arm",
        )
        sub = patients[keep].reset_index(drop=True)
        data = rb.build_cmi_data(refit, sub, y[keep], "arm", "ctl", ANCOVA)
        again = rb.conditional_mean_imputation(
            refit, data, {s: np.full(len(sub), s) for s in rb.STRATEGIES}, jackknife=False
        )
        np.testing.assert_allclose(result.jackknife[i], again.estimate, rtol=0, atol=1e-6)
    assert result.n_fallback == 0


def test_groups_of_one_patient_are_the_leave_one_out_jackknife(monotone):
    # Delete-a-group with G = n deletes one patient per replicate: the same numbers, in the
    # order of the groups, and the same SEs (Kott 2001: leave-one-out is the case G = n).
    _, patients, _, fit, data, loo = monotone
    labels = rb.jackknife_groups(patients["pid"].astype(str).tolist(), len(patients), seed=5)
    assert sorted(labels) == list(range(len(patients)))
    strategies = {s: np.full(len(patients), s) for s in rb.STRATEGIES}
    grouped = rb.conditional_mean_imputation(fit, data, strategies, groups=labels)
    assert grouped.leave_one_out and np.isinf(grouped.df)
    order = np.argsort(labels)  # replicate g deletes patient order[g]
    np.testing.assert_array_equal(grouped.jackknife, loo.jackknife[order])
    np.testing.assert_array_equal(grouped.slope_jackknife, loo.slope_jackknife[order])
    np.testing.assert_allclose(grouped.std_err(), loo.std_err(), rtol=1e-13, atol=0)
    np.testing.assert_allclose(grouped.std_err(0.7), loo.std_err(0.7), rtol=1e-13, atol=0)


def test_delete_a_group_replicate_is_the_method_without_the_group(monotone):
    # A replicate with several patients deleted must be the whole method run again without
    # them (refit by fit_mmrm, re-impute, re-analyse), as a leave-one-out replicate is.
    long, patients, y, _, data, _ = monotone
    labels = np.arange(len(patients)) % 9
    strategies = {s: np.full(len(patients), s) for s in rb.STRATEGIES}
    fit = fit_mmrm(long, "y", FORMULA, "visit", "pid", "us", df_method="z")
    grouped = rb.conditional_mean_imputation(fit, data, strategies, groups=labels)
    assert not grouped.leave_one_out and grouped.df == 8 and grouped.replicates == 9
    for g in (0, 4):
        keep = labels != g
        refit = fit_mmrm(
            long[long["pid"].isin(patients["pid"][keep])],
            "y",
            FORMULA,
            "visit",
            "pid",
            "us",
            df_method="z",
        )
        sub = patients[keep].reset_index(drop=True)
        again = rb.conditional_mean_imputation(
            refit,
            rb.build_cmi_data(refit, sub, y[keep], "arm", "ctl", ANCOVA),
            {s: np.full(len(sub), s) for s in rb.STRATEGIES},
            jackknife=False,
        )
        np.testing.assert_allclose(grouped.jackknife[g], again.estimate, rtol=0, atol=1e-6)
    assert grouped.n_fallback == 0


def test_jackknife_groups_are_stable_balanced_and_seeded():
    keys = [f"P{k:05d}" for k in range(1003)]
    labels = rb.jackknife_groups(keys, 100, seed=0)
    # the same patient lands in the same group whatever the order of the rows
    shuffled = np.random.default_rng(1).permutation(len(keys))
    again = rb.jackknife_groups([keys[k] for k in shuffled], 100, seed=0)
    np.testing.assert_array_equal(again, labels[shuffled])
    assert set(np.bincount(labels)) == {10, 11}  # 1,003 = 3 x 11 + 97 x 10
    assert not np.array_equal(rb.jackknife_groups(keys, 100, seed=1), labels)
    with pytest.raises(ValueError, match="at least 2 groups"):
        rb.jackknife_groups(keys, 1)


def test_grouped_se_is_close_to_the_leave_one_out_se():
    # n = 400 patients, G = 50 groups. Each grouped variance has about G - 1 = 49 df, so its
    # relative SD around the leave-one-out variance is about sqrt(2 / 49) = 20 % (10 % on the
    # SE): one partition is held to 35 % on the SE (3.5 SDs). Over 10 seeded partitions the
    # mean grouped variance estimates the same quantity with relative SD sqrt(2 / (10 x 49))
    # = 6.4 %: held to 20 % (3.1 SDs). Deterministic (seeded hashes), so the test cannot flake.
    long, patients, y = _trial(n=400, seed=21)
    fit = fit_mmrm(long, "y", FORMULA, "visit", "pid", "us", df_method="z")
    data = rb.build_cmi_data(fit, patients, y, "arm", "ctl", ANCOVA)
    strategies = {s: np.full(len(patients), s) for s in ("MAR", "J2R")}
    loo = rb.conditional_mean_imputation(fit, data, strategies)
    keys = patients["pid"].astype(str).tolist()
    variances = []
    for seed in range(10):
        grouped = rb.conditional_mean_imputation(
            fit, data, strategies, groups=rb.jackknife_groups(keys, 50, seed=seed)
        )
        np.testing.assert_array_equal(grouped.estimate, loo.estimate)
        variances.append(grouped.std_err() ** 2)
        if seed == 0:
            np.testing.assert_allclose(grouped.std_err(), loo.std_err(), rtol=0.35)
    np.testing.assert_allclose(np.mean(variances, axis=0), loo.std_err() ** 2, rtol=0.20)


def test_bootstrap_crossproducts_equal_the_weighted_sum_over_patients():
    # The bootstrap's weighted cross-products (one factored matrix product per visit pattern)
    # must equal the definition, sum_i w_i x_i x_i' per pattern, patient by patient.
    long, _, _ = _trial(n=300, seed=3, intermittent=True)
    fit = fit_mmrm(long, "y", FORMULA, "visit", "pid", "us", df_method="z")
    # the full cross-products (a likelihood that holds covariate sums reweights those itself)
    lik = Likelihood(fit._likelihood.data, fit._likelihood.structures, factor=False)
    data = lik.data
    weights = np.random.default_rng(0).multinomial(300, np.full(300, 1 / 300)).astype(float)
    products = rb._WeightedCrossproducts(lik)
    assert any(part[3] is not None for per in products.parts for part in per)  # factored
    got = products.weighted(weights)
    for b, batch in enumerate(lik.batches):
        for j, p_idx in enumerate(batch.index):
            rows = data.patterns[p_idx].rows
            w = weights[data.subject_codes[rows[:, 0]]]
            x, y = data.x[rows], data.y[rows]  # (m, k, p), (m, k)
            xx = np.einsum("i,iap,ibq->abpq", w, x, x)
            xy = np.einsum("i,iap,ib->abp", w, x, y)
            scale = np.abs(xx).max()
            np.testing.assert_allclose(got.batches[b].xx[j], xx, rtol=0, atol=1e-12 * scale)
            np.testing.assert_allclose(got.batches[b].xy[j], xy, rtol=0, atol=1e-12 * scale)
            np.testing.assert_allclose(got.batches[b].yy[j], (y * w[:, None]).T @ y, rtol=1e-12)
            assert got.batches[b].n[j] == w.sum()


def test_imputation_data_of_a_trial_unlike_the_demo():
    # Text patient ids, a categorical arm named in German, visits named by text, and patients
    # the imputation model never saw: each patient's designs are the model's own design of
    # their rows (the arm set to the reference for x_ref), and only fitted patients have a
    # fitted subject, at their position among the fit's sorted ids.
    long, patients, y = _trial()
    ids = {i: f"Patient-{i:04d}" for i in patients["pid"]}
    arms = {"ctl": "Kontrolle", "trt": "Behandlung"}
    visits = {1: "Woche 2", 2: "Woche 6", 3: "Woche 12"}
    for frame in (long, patients):
        frame["pid"] = frame["pid"].map(ids)
        frame["arm"] = pd.Categorical(frame["arm"].map(arms), categories=list(arms.values()))
    long["visit"] = pd.Categorical(long["visit"].map(visits), categories=list(visits.values()))
    unseen = patients.iloc[:3].assign(pid=["Neu-1", "Neu-2", "Neu-3"])
    patients = pd.concat([patients, unseen], ignore_index=True)
    y = np.vstack([y, y[:3]])
    fit = fit_mmrm(
        long, "y", FORMULA.replace("ctl", "Kontrolle"), "visit", "pid", "us", df_method="z"
    )
    data = rb.build_cmi_data(
        fit, patients, y, "arm", "Kontrolle", ANCOVA.replace("ctl", "Kontrolle")
    )

    n, t = y.shape
    grid = patients.loc[patients.index.repeat(t)].reset_index(drop=True)
    grid["visit"] = pd.Categorical(
        np.tile(list(visits.values()), n), categories=list(visits.values())
    )
    np.testing.assert_array_equal(data.x_own, fit.design_matrix(grid).reshape(n, t, -1))
    grid["arm"] = pd.Categorical(["Kontrolle"] * len(grid), categories=list(arms.values()))
    np.testing.assert_array_equal(data.x_ref, fit.design_matrix(grid).reshape(n, t, -1))
    treated = (patients["arm"] == "Behandlung").to_numpy()
    np.testing.assert_array_equal(data.level, treated.astype(int))
    fitted = sorted(long["pid"].unique())  # (a patient with no visit is not in the fit)
    expected = [fitted.index(p) if p in fitted else -1 for p in patients["pid"]]
    np.testing.assert_array_equal(data.fit_subject, expected)
    assert (data.fit_subject[-3:] == -1).all()
