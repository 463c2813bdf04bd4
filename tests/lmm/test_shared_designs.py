"""Designs shared between the REML fit and its ML refits (:mod:`pipeline.lmm.reuse`).

Inside :func:`~pipeline.lmm.reuse.sharing_designs` the ML refit of the same model on the same
rows reuses the REML fit's design and cross-products instead of building them again; the
numbers must be exactly those of fits made without sharing, and a different frame, formula or
random effect must get its own design.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from clinic_models import CLINIC_FIXED, simulate_clinic

from pipeline.lmm import data as lmm_data
from pipeline.lmm import deviance as lmm_deviance
from pipeline.lmm import optim as lmm_optim
from pipeline.lmm.fit import FAST_ROUTES, fit_lmm
from pipeline.lmm.reuse import shared, sharing_designs


def _fits(data):  # type: ignore[no-untyped-def]
    kw = {"routes": FAST_ROUTES, "random_slope": "weeks"}
    reml = fit_lmm(data, "nrs", CLINIC_FIXED, "patient", reml=True, **kw)
    ml = fit_lmm(data, "nrs", CLINIC_FIXED, "patient", reml=False, start=reml.theta, **kw)
    reduced = fit_lmm(data, "nrs", "weeks + C(depth)", "patient", reml=False, **kw)
    return reml, ml, reduced


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the designs and cross-products built."""
    calls = {"design": 0, "crossproducts": 0}
    prepare, grouped = lmm_data.prepare_data, lmm_deviance.GroupedCrossproducts

    def counting_prepare(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["design"] += 1
        return prepare(*args, **kwargs)

    def counting_grouped(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["crossproducts"] += 1
        return grouped(*args, **kwargs)

    monkeypatch.setattr("pipeline.lmm.fit.prepare_data", counting_prepare)
    monkeypatch.setattr(lmm_optim, "GroupedCrossproducts", counting_grouped)
    return calls


def test_shared_fits_equal_unshared_fits_with_fewer_designs(counted: dict[str, int]) -> None:
    data = simulate_clinic(120, seed=3, slope_sd=0.3)
    alone = _fits(data)
    assert counted == {"design": 3, "crossproducts": 3}
    counted.update(design=0, crossproducts=0)
    with sharing_designs():
        together = _fits(data)
    # REML and its ML refit share one design and one set of cross-products; the reduced
    # model (another formula) builds its own
    assert counted == {"design": 2, "crossproducts": 2}
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a.fixed_effects["estimate"], b.fixed_effects["estimate"])
        np.testing.assert_array_equal(a.fixed_effects["std_err"], b.fixed_effects["std_err"])
        np.testing.assert_array_equal(a.fixed_effects["df"], b.fixed_effects["df"])
        np.testing.assert_array_equal(a.theta, b.theta)
        assert a.criterion == b.criterion


def test_another_frame_with_equal_content_gets_its_own_design(counted: dict[str, int]) -> None:
    data = simulate_clinic(60, seed=4, slope_sd=0.3)
    with sharing_designs():
        fit_lmm(data, "nrs", CLINIC_FIXED, "patient", routes=FAST_ROUTES)
        fit_lmm(data.copy(), "nrs", CLINIC_FIXED, "patient", routes=FAST_ROUTES)
    assert counted["design"] == 2


def test_nothing_is_kept_outside_a_scope() -> None:
    owner = object()
    built = []
    for _ in range(2):
        shared(owner, "k", lambda: built.append(1))
    assert len(built) == 2
    with sharing_designs():
        for _ in range(2):
            shared(owner, "k", lambda: built.append(1))
    assert len(built) == 3
    with sharing_designs():  # a new scope starts empty
        shared(owner, "k", lambda: built.append(1))
    assert len(built) == 4


def test_mmrm_ml_refit_reuses_the_reml_fits_patterns(monkeypatch: pytest.MonkeyPatch) -> None:
    # An MMRM analysis refits its model by ML for the likelihood-ratio tests: inside a scope the
    # refit takes the REML fit's prepared data (design, visit patterns) and gives the numbers
    # of an unshared refit; a reduced model takes the full model's columns and patterns
    # (pipeline.lmm.patterns.mmrm_within) and gives the numbers of one built from scratch.
    from pipeline.lmm import mmrm as lmm_mmrm

    frame = _mmrm_frame()
    calls = {"prepare": 0}
    prepare = lmm_mmrm.prepare_mmrm

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["prepare"] += 1
        return prepare(*args, **kwargs)

    monkeypatch.setattr(lmm_mmrm, "prepare_mmrm", counting)
    fixed = "base + C(visit) * arm"

    def fits():  # type: ignore[no-untyped-def]
        reml = lmm_mmrm.fit_mmrm(frame, "y", fixed, "visit", "pid", "us")
        ml = lmm_mmrm.fit_mmrm(frame, "y", fixed, "visit", "pid", "us", reml=False, df_method="z")
        reduced = lmm_mmrm.fit_mmrm(frame, "y", "base + C(visit) + arm", "visit", "pid", "us")
        return reml, ml, reduced

    alone = fits()
    assert calls["prepare"] == 3
    with sharing_designs():
        together = fits()
    assert calls["prepare"] == 3 + 1
    assert together[1]._likelihood.data is together[0]._likelihood.data
    for a, b in zip(alone[:2], together[:2], strict=True):
        assert a.criterion == b.criterion
        np.testing.assert_array_equal(a.beta, b.beta)
    reduced, scratch = together[2], alone[2]
    # the reduced model's visit factorisation is a slice of the full one's, and the patients'
    # covariate sums are the full model's (pipeline.lmm.likelihood)
    full_lik, reduced_lik = together[0]._likelihood, reduced._likelihood
    assert reduced_lik.factor is not None and reduced_lik.factor.z is full_lik.factor.z
    assert reduced_lik.batches[0] is full_lik.batches[0]
    assert alone[2]._likelihood.factor.z is not alone[0]._likelihood.factor.z
    assert reduced.design_columns == scratch.design_columns
    np.testing.assert_allclose(reduced.criterion, scratch.criterion, rtol=1e-12)
    np.testing.assert_allclose(reduced.beta, scratch.beta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(reduced.vcov, scratch.vcov, rtol=1e-6, atol=1e-12)


def _mmrm_frame(n: int = 120, t: int = 3, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "pid": np.repeat(np.arange(n), t),
            "visit": np.tile(np.arange(t), n),
            "arm": np.repeat(np.where(np.arange(n) % 2 == 0, "a", "b"), t),
            "base": np.repeat(rng.normal(5, 1, n), t),
        }
    )
    frame["y"] = frame["base"] + frame["visit"] + rng.normal(size=len(frame))
    return frame


def test_mmrm_between_patient_columns_are_those_constant_within_every_patient() -> None:
    # (the Kenward-Roger and between-within degrees of freedom tell them apart)
    from pipeline.lmm.patterns import prepare_mmrm

    frame = _mmrm_frame().sample(frac=1.0, random_state=1)  # rows in no particular order
    frame = frame.drop(index=frame.index[:7])  # patients with fewer visits: other patterns
    prep = prepare_mmrm(frame, "y", "base + C(visit) * arm", "visit", "pid")
    between = dict(zip(prep.columns, prep.between, strict=True))
    assert between == {
        "Intercept": True,
        "C(visit)[T.1]": False,
        "C(visit)[T.2]": False,
        "arm[T.b]": True,
        "C(visit)[T.1]:arm[T.b]": False,
        "C(visit)[T.2]:arm[T.b]": False,
        "base": True,
    }


def test_mmrm_rows_dropped_for_the_full_model_are_not_assumed_for_the_reduced() -> None:
    from pipeline.lmm import mmrm as lmm_mmrm

    frame = _mmrm_frame()
    frame["extra"] = np.where(np.arange(len(frame)) < 6, np.nan, np.arange(len(frame)) % 5)
    with sharing_designs():
        lmm_mmrm.fit_mmrm(frame, "y", "base + extra + C(visit) * arm", "visit", "pid", "us")
        reduced = lmm_mmrm.fit_mmrm(frame, "y", "base + C(visit) * arm", "visit", "pid", "us")
    assert reduced.n_obs == len(frame)


DEPTH = "C(depth, Treatment('superficial'))"
CHRONICITY = "C(chronicity, Treatment('acute'))"


def test_a_reduced_model_takes_its_columns_from_the_full_design(counted: dict[str, int]) -> None:
    """A likelihood-ratio test's reduced model is some of the full model's columns.

    Its design and cross products are taken from the full model's (no formula evaluation on
    the rows, no pass over them); its fit equals one built from scratch to rounding.
    """
    data = simulate_clinic(120, seed=5, slope_sd=0.3)
    kw = {"routes": FAST_ROUTES, "random_slope": "weeks", "reml": False}
    reduced_rhs = f"weeks + {DEPTH} + {CHRONICITY}"  # CLINIC_FIXED without weeks × depth
    alone = fit_lmm(data, "nrs", reduced_rhs, "patient", **kw)
    counted.update(design=0, crossproducts=0)
    with sharing_designs():
        full = fit_lmm(data, "nrs", CLINIC_FIXED, "patient", **kw)
        reduced = fit_lmm(data, "nrs", reduced_rhs, "patient", **kw)
    assert counted == {"design": 1, "crossproducts": 1}
    assert reduced.design_columns == alone.design_columns
    assert len(reduced.design_columns) == len(full.design_columns) - 1
    np.testing.assert_allclose(reduced.criterion, alone.criterion, rtol=1e-12)
    np.testing.assert_allclose(reduced.theta, alone.theta, rtol=1e-7)
    np.testing.assert_allclose(
        reduced.fixed_effects["estimate"], alone.fixed_effects["estimate"], rtol=1e-7, atol=1e-9
    )


def test_a_reduced_formula_coded_differently_builds_its_own_design(
    counted: dict[str, int],
) -> None:
    """Without the ``weeks`` main effect, patsy codes ``weeks:depth`` with both levels."""
    data = simulate_clinic(60, seed=6, slope_sd=0.3)
    with sharing_designs():
        fit_lmm(data, "nrs", CLINIC_FIXED, "patient", routes=FAST_ROUTES, reml=False)
        other = fit_lmm(
            data, "nrs", f"{DEPTH} + weeks:{DEPTH}", "patient", routes=FAST_ROUTES, reml=False
        )
    assert counted["design"] == 2
    assert sum(":" in c for c in other.design_columns) == 2


def test_rows_dropped_for_the_full_model_are_not_assumed_for_the_reduced(
    counted: dict[str, int],
) -> None:
    data = simulate_clinic(60, seed=7, slope_sd=0.3)
    data.loc[data.index[:5], "chronicity"] = None  # only the full model needs chronicity
    with sharing_designs():
        fit_lmm(data, "nrs", CLINIC_FIXED, "patient", routes=FAST_ROUTES, reml=False)
        reduced = fit_lmm(
            data, "nrs", f"weeks * {DEPTH}", "patient", routes=FAST_ROUTES, reml=False
        )
    assert counted["design"] == 2 and reduced.n_obs == len(data)
