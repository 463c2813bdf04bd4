"""Row rules of the data contract checked directly on small frames."""

import pandas as pd

from pipeline.schemas.raw import any_recorded, has_outcome_check


def test_an_outcome_is_found_in_any_listed_column_and_absent_columns_are_skipped():
    frame = pd.DataFrame(
        {
            "source_row": [2, 3, 4, 5],
            "rmdq": pd.array([3, None, None, None], dtype="Int64"),
            "psfs": [None, 6.5, None, None],
            "nrs": pd.array([None, None, None, 4], dtype="Int64"),
        }
    )
    # row 3 has only the second column, row 4 none of them; "odi" is not in the frame at all
    assert any_recorded(frame, ("rmdq", "odi", "psfs")).tolist() == [True, True, False, False]
    assert any_recorded(frame, ("odi",)).tolist() == [False] * 4
    assert any_recorded(frame, ("nrs", "rmdq", "psfs")).tolist() == [True, True, False, True]
    check = has_outcome_check(("rmdq", "psfs"))
    assert not check.ignore_na  # a row with nothing recorded fails, whatever else it lacks
