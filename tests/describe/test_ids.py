"""``listed_in`` answers as ``Series.isin`` does (pandas' own answer is the reference)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.describe.ids import listed_in


@pytest.mark.parametrize("dtype", ["str", object, "category"])
def test_the_answer_is_pandas_isin(dtype) -> None:
    rng = np.random.default_rng(3)
    ids = pd.Series([f"P{k}" for k in rng.integers(0, 40, 200)] + [None], dtype=dtype)
    among = pd.Series([f"P{k}" for k in rng.integers(0, 60, 30)] + ["Z"], dtype=dtype)
    ids.index = ids.index + 7  # (the answer keeps the ids' index)
    expected = ids.isin(among)
    assert 0 < expected.sum() < len(ids)
    pd.testing.assert_series_equal(listed_in(ids, among), expected)


def test_missing_values_on_both_sides_match_as_in_pandas() -> None:
    ids = pd.Series([None, "a", "b"], dtype="str")
    for among in (pd.Series([None, "a"], dtype="str"), pd.Series(["b"], dtype="str")):
        pd.testing.assert_series_equal(listed_in(ids, among), ids.isin(among))


def test_numbers_are_left_to_pandas() -> None:
    ids = pd.Series([1, 2, 3])
    pd.testing.assert_series_equal(listed_in(ids, pd.Series([3, 4])), ids.isin([3, 4]))
