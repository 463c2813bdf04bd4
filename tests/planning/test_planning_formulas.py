"""The planning formulas reproduce the published worked examples.

R's longpower is not installable here (it is not a Debian package), so the expected numbers are
the values printed in the papers and pinned in longpower's own test suite
(github.com/mcdonohue/longpower, tests/testthat/tests.R), cited above each test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.lmm import FAST_ROUTES, fit_lmm
from pipeline.planning import analytic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def exchangeable(n: int, rho: float, sigma2: float) -> np.ndarray:
    return sigma2 * ((1 - rho) * np.eye(n) + rho)


def test_diggle_table_page_29() -> None:
    # Diggle, Heagerty, Liang & Zeger (2002), Analysis of Longitudinal Data, §2.4, table on
    # p. 29: patients per group for a slope difference of 0.5, t = (0, 2, 5), exchangeable
    # correlation, one-sided alpha 0.05, power 0.80; longpower's test
    # "Reproduce table of n per group ... page 29 of Diggle et al." pins the same matrix.
    expected = [[313, 625, 938], [196, 391, 586], [79, 157, 235]]
    t = np.array([0.0, 2.0, 5.0])
    for row, rho in zip(expected, (0.2, 0.5, 0.8), strict=True):
        for value, sigma2 in zip(row, (100, 200, 300), strict=True):
            contrast = analytic.slope_contrast(t, exchangeable(3, rho, sigma2), None, None)
            # one-sided 0.05 = two-sided 0.10 in the normal formula
            per_group = analytic.n_for_power(contrast, 0.5, 0.80, 0.10, "z") / 2
            assert math.ceil(per_group) == value


def test_lmmpower_random_slope_example() -> None:
    # longpower tests.R, "lmmpower (diggle)":
    # lmmpower(delta=1.5, t=seq(0,1.5,0.25), sig2.i=55, sig2.s=24, sig2.e=10,
    #          cov.s.i=0.8*sqrt(55)*sqrt(24), power=0.80)$n[1] == 207.310093300903
    # lmmpower(n=208, ...)$delta == 1.49751028943272
    t = np.arange(0.0, 1.51, 0.25)
    cov = analytic.marginal_covariance(t, np.sqrt(55), np.sqrt(24), 0.8, np.sqrt(10))
    contrast = analytic.slope_contrast(t, cov, None, None)
    assert analytic.n_for_power(contrast, 1.5, 0.80, 0.05, "z") / 2 == pytest.approx(
        207.310093300903, rel=1e-6
    )
    assert analytic.detectable_effect(contrast, 416, 0.80, 0.05, "z") == pytest.approx(
        1.49751028943272, rel=1e-6
    )
    # power at the rounded n is just above the target (both tails counted)
    assert 0.80 < analytic.power(contrast, 1.5, 416, 0.05, "z") < 0.802


def test_lu_luo_chen_table_1() -> None:
    # Lu, Luo & Chen (2008), Int. J. Biostatistics 4(1), Table 1 (z test, alpha 0.05 two-sided,
    # power 0.90, effect 0.5 SD), as longpower tests.R "Reproduce Table 1" pins it:
    # total N for (phi1, phi2, lambda = Na / Nb).
    phi1 = [1, 1, 1, 1, 1, 1, 2, 2]
    phi2 = [1, 1, 2, 2, 2, 2, 2, 2]
    lam = [1, 2, math.sqrt(0.5), 0.5, 1, 2, 1, 2]
    expected = [
        168.11876898305,
        189.133615105931,
        244.966998329937,
        252.178153474575,
        252.178153474575,
        315.222691843219,
        336.2375379661,
        378.267230211862,
    ]
    for a, b, ratio, total in zip(phi1, phi2, lam, expected, strict=True):
        # our allocation is n_compared / n_reference = Nb / Na = 1 / lambda
        contrast = analytic.Contrast("visit", float(a), float(b), 1.0 / ratio)
        assert analytic.n_for_power(contrast, 0.5, 0.90, 0.05, "z") == pytest.approx(
            total, rel=1e-9
        )


def test_lu_luo_chen_table_2_phi_with_retention() -> None:
    # Lu, Luo & Chen (2008), Table 2: variance inflation phi for AR(1) correlation with linear
    # retention r = seq(1, 1 - a_J, length = J); rows J = 2 then 4, a_J = 0.1..0.4; columns
    # rho^(J-1) = 0, .1, .3, .5, .7, .9 (longpower tests.R "Reproduce Table 2").
    expected = np.array(
        [
            [1.11111111111111, 1.11, 1.10111111111111, 1.08333333333333, 1.05666666666667, 1.02111111111111],  # noqa: E501
            [1.25, 1.2475, 1.2275, 1.1875, 1.1275, 1.0475],
            [1.42857142857143, 1.42428571428571, 1.39, 1.32142857142857, 1.21857142857143, 1.08142857142857],  # noqa: E501
            [1.66666666666667, 1.66, 1.60666666666667, 1.5, 1.34, 1.12666666666667],
            [1.11111111111111, 1.10050206679506, 1.08280448732802, 1.06283003239702, 1.03996686151349, 1.01408550239776],  # noqa: E501
            [1.25, 1.2247445108099, 1.18392908471514, 1.13886229048648, 1.08796962333115, 1.03089517940421],  # noqa: E501
            [1.42857142857143, 1.38254161826624, 1.31065330422472, 1.23318260782795, 1.14702199890211, 1.0514263712482],  # noqa: E501
            [1.66666666666667, 1.59010470647863, 1.47488822527398, 1.35405269950478, 1.221989488974, 1.07728040119987],  # noqa: E501
        ]
    )  # fmt: skip
    got = []
    for n_visits in (2, 4):
        for drop in (0.1, 0.2, 0.3, 0.4):
            row = []
            for corr_last in (0.0, 0.1, 0.3, 0.5, 0.7, 0.9):
                rho = corr_last ** (1 / (n_visits - 1))
                lags = np.abs(np.subtract.outer(np.arange(n_visits), np.arange(n_visits)))
                retention = np.linspace(1, 1 - drop, n_visits)
                row.append(analytic.lu_luo_chen_phi(rho**lags, retention))
            got.append(row)
    np.testing.assert_allclose(np.array(got), expected, rtol=1e-9)


def test_slope_variance_equals_the_engines_slope_variance_with_dropout() -> None:
    # With dropout the formula averages the information over dropout patterns; on a data set
    # that holds the patterns in exactly those shares, the engine's (X'V^-1X)^-1 at the true
    # variance parameters (fixed theta, no optimisation: a REML fit would move them) equals it.
    from pipeline.lmm.data import prepare_data
    from pipeline.lmm.deviance import GroupedCrossproducts, theta_from_relative_cov

    weeks = np.array([0.0, 2.0, 4.0, 8.0, 12.0])
    sd0, sd1, corr, sigma = 1.2, 0.15, -0.3, 1.0
    cov = analytic.marginal_covariance(weeks, sd0, sd1, corr, sigma)
    retention = analytic.retention_from_hazards(np.array([0.1, 0.1, 0.2, 0.25]))
    shares = np.r_[retention, 0.0][:-1] - np.r_[retention, 0.0][1:]
    counts = np.round(shares * 1000).astype(int)  # 1000 patients per group, exact shares
    assert counts.sum() == 1000
    rows = []
    patient = 0
    for group in ("a", "b"):
        for last, count in enumerate(counts):
            for _ in range(count):
                rows += [(patient, w, group, 0.0) for w in weeks[: last + 1]]
                patient += 1
    frame = pd.DataFrame(rows, columns=["patient", "weeks", "group", "y"])
    frame["y"] = np.random.default_rng(3).standard_normal(len(frame))
    prep = prepare_data(frame, "y", "weeks * group", "patient", "weeks")
    z = np.column_stack([np.ones(len(prep.y)), prep.frame["weeks"].to_numpy()])
    gc = GroupedCrossproducts(prep.y, prep.x.to_numpy(), z, prep.codes)
    g = np.array([[sd0**2, corr * sd0 * sd1], [corr * sd0 * sd1, sd1**2]])
    theta = theta_from_relative_cov(g / sigma**2)
    vcov = sigma**2 * gc.terms(theta).xwx_inv
    k = list(prep.x.columns).index("weeks:group[T.b]")
    contrast = analytic.slope_contrast(weeks, cov, retention, retention, 1.0)
    assert vcov[k, k] == pytest.approx(contrast.std_err(2000) ** 2, rel=1e-3)


def test_lmmpower_from_a_fitted_sleepstudy_model() -> None:
    # longpower tests.R "lmmpower (diggle)": the variance components of
    # lmer(Reaction ~ Days + (Days|Subject), sleepstudy) with t = 0..9 and a 30 % change in
    # the mean slope need n = 68.4699286748582 per group; a random-intercept-only fit
    # (fm3, nlme) needs 18.5332152601122.
    sleep = pd.read_csv(FIXTURES / "sleepstudy.csv")
    fit = fit_lmm(sleep, "Reaction", "Days", "Subject", random_slope="Days", routes=FAST_ROUTES)
    vc = fit.variance_components.set_index("term")
    t = np.arange(10.0)
    cov = analytic.marginal_covariance(
        t,
        vc.loc["(Intercept)", "std_dev"],
        vc.loc["Days", "std_dev"],
        vc.loc["cor((Intercept), Days)", "correlation"],
        fit.sigma,
    )
    delta = 0.30 * fit.params[1]
    contrast = analytic.slope_contrast(t, cov, None, None)
    assert analytic.n_for_power(contrast, delta, 0.80, 0.05, "z") / 2 == pytest.approx(
        68.4699286748582, rel=1e-3
    )
    ri = fit_lmm(sleep, "Reaction", "Days", "Subject", routes=FAST_ROUTES)
    cov_ri = analytic.marginal_covariance(
        t, ri.variance_components["std_dev"].iloc[0], 0.0, 0.0, ri.sigma
    )
    contrast_ri = analytic.slope_contrast(t, cov_ri, None, None)
    assert analytic.n_for_power(contrast_ri, 0.30 * ri.params[1], 0.80, 0.05, "z") / 2 == (
        pytest.approx(18.5332152601122, rel=1e-3)
    )


def test_t_version_is_more_conservative_than_z_and_inverts() -> None:
    contrast = analytic.Contrast("slope", 0.02, 0.03, 1.5)
    n_t = analytic.n_for_power(contrast, 0.05, 0.8, 0.01, "t")
    n_z = analytic.n_for_power(contrast, 0.05, 0.8, 0.01, "z")
    assert n_t > n_z
    assert analytic.power(contrast, 0.05, n_t, 0.01, "t") == pytest.approx(0.8, abs=1e-8)
    d = analytic.detectable_effect(contrast, 100, 0.9, 0.05, "t")
    assert analytic.power(contrast, d, 100, 0.05, "t") == pytest.approx(0.9, abs=1e-8)
