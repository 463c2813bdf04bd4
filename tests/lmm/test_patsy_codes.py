"""Designs built from categoricals by their codes equal patsy's value-by-value designs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import patsy
import pytest

from pipeline.lmm import patsy_codes
from pipeline.lmm.data import prepare_data


class _NoValueByValue(patsy.NAAction):
    """An NA action that fails if patsy maps a categorical one value at a time."""

    def is_categorical_NA(self, obj: object) -> bool:  # noqa: N802 (patsy's name)
        raise AssertionError("categorical mapped value by value")


def _frame(n: int = 400, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    depth = rng.choice(["superficial", "deep"], n)
    chronicity = rng.choice(["acute", "chronic", "subacute"], n).astype(object)
    chronicity[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {
            "patient_id": np.repeat([f"P{i:03d}" for i in range(n // 4)], 4),
            "y": rng.normal(size=n),
            "weeks": np.tile([0.0, 2.0, 4.0, 8.0], n // 4),
            "depth": depth.astype(object),
            "chronicity": chronicity,
        }
    )


def _plain_design(frame: pd.DataFrame, rhs: str) -> pd.DataFrame:
    """patsy's own design on text columns (the value-by-value route), NA rows dropped."""
    _, x = patsy.dmatrices(f"y ~ {rhs}", frame, NA_action="drop", return_type="dataframe")
    return x


RHS = "weeks * C(depth, Treatment('superficial')) + C(chronicity)"


def test_boxed_categorical_is_read_by_its_codes_with_the_same_design():
    frame = _frame()
    coded = frame.assign(
        depth=pd.Categorical(frame["depth"], categories=["deep", "superficial"]),
        chronicity=pd.Categorical(frame["chronicity"], categories=["acute", "chronic", "subacute"]),
    )
    patsy_codes.install()
    _, fast = patsy.dmatrices(
        f"y ~ {RHS}",
        coded,
        NA_action=_NoValueByValue(NA_types=["None", "NaN"]),
        return_type="dataframe",
    )
    plain = _plain_design(frame, RHS)
    assert list(fast.columns) == list(plain.columns)
    np.testing.assert_array_equal(fast.to_numpy(), plain.to_numpy())


def test_a_box_whose_levels_differ_from_the_categories_keeps_patsys_mapping():
    frame = _frame()
    # categories in another order than patsy's levels: the value-by-value route maps them
    coded = frame.assign(depth=pd.Categorical(frame["depth"], categories=["superficial", "deep"]))
    patsy_codes.install()
    info = patsy.dmatrix("C(depth, levels=['deep', 'superficial'])", frame).design_info
    (mat,) = patsy.build_design_matrices([info], coded)
    expected = (frame["depth"] == "superficial").astype(float).to_numpy()
    np.testing.assert_array_equal(np.asarray(mat)[:, 1], expected)


@pytest.mark.parametrize("dtype", [object, "str"])
def test_prepare_data_codes_text_columns_to_the_same_design(dtype):
    frame = _frame()
    frame = frame.assign(
        depth=frame["depth"].astype(dtype), chronicity=frame["chronicity"].astype(dtype)
    )
    prepared = prepare_data(frame, "y", RHS, "patient_id", None)
    plain = _plain_design(_frame(), RHS)
    assert list(prepared.x.columns) == list(plain.columns)
    np.testing.assert_array_equal(prepared.x.to_numpy(), plain.to_numpy())
    assert prepared.frame["depth"].dtype == frame["depth"].dtype  # the rows used are not recoded
