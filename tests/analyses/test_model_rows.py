"""Text covariates coded as categoricals for the models (pipeline.analyses.plans.model_rows)."""

from __future__ import annotations

import pandas as pd
import pytest

from pipeline.analyses.plans import _sorted_categorical, model_rows

TEXT = ["Riverside", "hillview", "Éast", "Northside", "", "Riverside", "east", "Z"]


@pytest.mark.parametrize("dtype", [object, "str", "string[pyarrow]"])
def test_sorted_categorical_is_the_plain_definition(dtype):
    values = pd.Series(TEXT * 3, dtype=dtype)
    expected = pd.Categorical(values, categories=sorted(values.unique()))
    got = _sorted_categorical(values)
    assert got.dtype == expected.dtype
    assert list(got.categories) == sorted(set(TEXT))  # code-point order, as Python sorts
    assert (got.codes == expected.codes).all()


def test_model_rows_code_text_covariates_with_sorted_levels():
    data = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P3", "P4"],
            "nrs": [5.0, 4.0, None, 6.0, 3.0],
            "site": pd.Series(["b", "b", "a", "c", "b"], dtype="str"),
        }
    )
    rows = model_rows(data, ["nrs", "site"])
    assert list(rows["patient_id"]) == ["P1", "P1", "P3", "P4"]
    assert list(rows["site"].cat.categories) == ["b", "c"]  # "a" only on a dropped row
    assert list(rows["site"]) == ["b", "b", "c", "b"]
