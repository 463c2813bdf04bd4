"""Column statistics of the screen (:mod:`pipeline.validate.screen`) on nullable whole numbers."""

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

from pipeline.validate.screen import _lengths_within, _min_max, cleared_columns


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


@pytest.mark.parametrize(
    "stats",
    [
        {"min_value": 1, "max_value": 64},  # the patient identifier's rule
        {"min_value": 1, "max_value": None},
        {"min_value": None, "max_value": 3},
        {"min_value": 2, "max_value": 5},  # a lower bound above 1: characters counted
        {"exact_value": 4},
    ],
)
def test_text_lengths_agree_with_counting_characters(stats):
    # Cells whose byte length differs from their length in characters (é is two bytes, 🙂
    # four), around each bound: the byte-length shortcut must decide as pandera's own count
    # of characters (str.len) does, whichever way it goes.
    rng = np.random.default_rng(7)
    alphabets = (["a", "Z"], ["a", "é", "🙂", "ß", "Z"])  # plain ASCII cells, and mixed ones
    for _ in range(300):
        cells = [
            "".join(rng.choice(alphabets[rng.integers(2)], size=rng.integers(0, 70)))
            for _ in range(rng.integers(1, 4))
        ]
        values = pd.Series(cells, dtype="str")
        lengths = values.str.len()
        low, high, exact = (stats.get(k) for k in ("min_value", "max_value", "exact_value"))
        if exact is not None:
            expected = bool((lengths == exact).all())
        else:
            expected = bool(
                (low is None or lengths.min() >= low) and (high is None or lengths.max() <= high)
            )
        assert _lengths_within(values, stats) is expected, (cells, stats)


def test_range_screen_decides_as_pandera_whatever_lies_under_missing_cells():
    # A nullable whole-number column holds some value under each missing cell (0 on the fast
    # route, anything elsewhere). The screen first takes the range of every value, those
    # included; the column must still be cleared exactly when pandera finds no failing cell.
    schema = pa.DataFrameSchema(
        {"x": pa.Column("Int64", [pa.Check.ge(0), pa.Check.le(10)], nullable=True)}
    )
    rng = np.random.default_rng(11)
    decided = set()
    for _ in range(400):
        size = int(rng.integers(1, 8))
        values = rng.integers(-3, 14, size)
        missing = rng.random(size) < 0.4
        frame = pd.DataFrame({"x": pd.arrays.IntegerArray(values, missing)})
        try:
            schema.validate(frame, lazy=True)
            passes = True
        except pa.errors.SchemaErrors:
            passes = False
        cleared = cleared_columns(schema, frame) == ["x"]
        assert cleared is passes, (values, missing)
        hidden = values[missing]
        decided.add((passes, bool(((hidden < 0) | (hidden > 10)).any())))
    # Both outcomes met, with out-of-range values under missing cells among each.
    assert decided == {(True, True), (True, False), (False, True), (False, False)}
