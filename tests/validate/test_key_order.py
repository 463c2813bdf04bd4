"""Patient ids ranked without hashing or comparing text, where their order allows it.

A patients file whose ids ascend (every id distinct) is indexed without hashing, and the
patient-linked tables are then checked for order by the ids' positions in it instead of by
text; the valid rows come out sorted by their key either way.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.validate.study import _ascending, _encoded, _sorted_by, validate_study

DATA = "data/raw/examples/canonical"


@pytest.mark.parametrize(
    ("ids", "ascending"),
    [
        (["P1", "P2", "P3"], True),
        (["P1", "P3", "P2"], False),
        (["P1", "P1", "P2"], False),  # a repeated id is not ascending
        (["P1", None, "P2"], False),
        (["P1"], True),
        ([], False),
        ([None], False),
    ],
)
def test_ascending_ids(ids, ascending):
    cells = pa.array(ids, pa.large_string())
    assert _ascending(cells) is ascending


@pytest.mark.parametrize("ids", [["P1", "P2", "P9"], ["P2", "P1", "P2", None, "P1"], ["Q"]])
def test_codes_are_positions_of_first_sight_either_way(ids):
    codes, distinct = _encoded(pd.Series(ids, dtype="str"))
    seen = list(dict.fromkeys(i for i in ids if i is not None))
    assert distinct.to_pylist() == seen
    assert codes.tolist() == [seen.index(i) if i is not None else -1 for i in ids]


@pytest.mark.parametrize(
    ("ids", "numbers"),
    [
        (["P1", "P1", "P2", "P3"], [1, 2, 1, 1]),
        (["P1", "P1", "P2", "P3"], [2, 1, 1, 1]),
        (["P1", "P2", "P1"], [1, 1, 2]),
        (["P2", "P10"], [1, 1]),  # text order, not the order of the digits
    ],
)
def test_ranks_answer_as_the_text_does(ids, numbers):
    frame = pd.DataFrame({"patient_id": pd.Series(ids, dtype="str"), "visit": numbers})
    ranks = np.array([sorted(set(ids)).index(i) for i in ids])
    keys = ["patient_id", "visit"]
    assert _sorted_by(frame, keys, ranks) == _sorted_by(frame, keys)


def _study(tmp_path, sort_patients: bool, shuffle: bool) -> dict:
    root = Path(__file__).resolve().parents[2] / DATA
    paths = {}
    for name in ("patients", "sessions", "assessments"):
        frame = pd.read_csv(root / f"{name}.csv", dtype=str, keep_default_na=False)
        if name == "patients":
            frame = frame.sort_values("patient_id") if sort_patients else frame.iloc[::-1]
        elif shuffle:
            frame = frame.sample(frac=1, random_state=3)  # rows in no order
        elif not sort_patients:  # in the patients file's order (ids descending), each in order
            frame = pd.concat([rows for _, rows in frame.groupby("patient_id")][::-1])
        paths[name] = tmp_path / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


@pytest.mark.parametrize("shuffle", [True, False])
def test_valid_rows_are_sorted_by_their_key_whether_or_not_the_ids_ascend(tmp_path, shuffle):
    results = []
    for sort_patients in (True, False):
        folder = tmp_path / str(sort_patients)
        folder.mkdir()
        validation = validate_study(read_raw_tables(_study(folder, sort_patients, shuffle)))
        tables = validation.tables
        for name, keys in (
            ("sessions", ["patient_id", "session_number"]),
            ("assessments", ["patient_id", "visit"]),
        ):
            valid = tables[name].valid
            expected = valid.sort_values(keys).reset_index(drop=True)
            pd.testing.assert_frame_equal(valid, expected)
        results.append({n: t.valid.drop(columns="source_row") for n, t in tables.items()})
    for name in ("sessions", "assessments"):
        pd.testing.assert_frame_equal(results[0][name], results[1][name])
