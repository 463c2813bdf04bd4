"""Column statistics of the screen (:mod:`pipeline.validate.screen`) on nullable whole numbers."""

import numpy as np
import pandas as pd
import pytest

from pipeline.validate.screen import _min_max


@pytest.mark.parametrize(
    ("values", "missing", "expected"),
    [
        ([3, -2, 7], [False, False, False], (-2, 7)),
        ([3, -99, 7, 100], [False, True, False, True], (3, 7)),  # masked cells are not seen
        ([5, 5], [True, True], (None, None)),  # every cell missing
    ],
)
def test_min_max_of_whole_numbers_skips_missing_cells(values, missing, expected):
    column = pd.Series(pd.arrays.IntegerArray(np.array(values), np.array(missing)))
    assert _min_max(column) == expected
    if expected[0] is not None:  # the same as pandas' own reductions
        assert (column.min(), column.max()) == expected
