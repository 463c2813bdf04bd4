"""The fast route (cells read straight into their types, columns screened before pandera) gives
exactly what the careful route gives (cells read as text, parsed, every column given to pandera).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from factories import append_rows, write_study

import pipeline.ingest.raw_tables
import pipeline.validate.study
from pipeline.errors import InputFileError
from pipeline.ingest.raw_tables import read_raw_table, read_raw_tables
from pipeline.ingest.readers import read_text, split_header
from pipeline.ingest.typed_reader import _to_pandas, read_typed
from pipeline.schemas.raw import MODELS, TABLES, column_kinds
from pipeline.validate.study import check_values, parse_cells, typed_cells, validate_study

DEMO = Path(__file__).resolve().parents[2] / "data" / "raw" / "demo"

# Rows that break rules but still parse, so the tables keep the fast route (see test_validate).
BROKEN = {
    "patients": (
        "P4,,2025-01-01,30,male,4,no,no",
        "P5,A,2025-01-01,130,male,4,no,no",
        "P6,A,2025-01-01,30,man,4,no,no",
        "P1,A,2025-01-01,30,male,4,no,no",
    ),
    "sessions": (
        "P1,3,2025-01-20,medium,no,0,none,",
        "P1,4,2025-01-20,deep,no,2,none,",
        "P1,5,2025-01-20,deep,,,none,",
        "P2,4,2025-01-21,deep,no,0,soreness,",
        "P9,1,2025-01-20,deep,no,0,none,",
        "P3,2,2025-01-01,deep,no,0,none,",
        "P3,0,2025-01-20,deep,no,0,none,",
        "P4,1,2025-01-20,deep,no,0,none,",
    ),
    "assessments": (
        "P1,3,2025-01-27,11,50,,,,,,,,,,,",
        "P1,4,2025-01-10,5,150,,,,,,,,,,,",
        "P2,2,2025-02-01,5,50,,6,,,,,,,,,",
        "P2,2,2025-02-02,5,50,,,,,,,,,,,",
        "P3,1,2025-01-14,,,,,,,,,,,,,",
        "P3,2,2025-01-01,4,,,,,,,,,,,,",
        "P9,0,2025-01-20,4,,,,,,,,,,,,",
        "P2,3,2025-01-15,4,,,,,,,,,,,,",
    ),
}


def _text_route(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.ingest.raw_tables, "read_typed", lambda *args: None)


def _assert_same(fast, careful) -> None:
    order = ["table", "source_row", "column", "check"]
    pd.testing.assert_frame_equal(
        fast.failures.sort_values(order).reset_index(drop=True),
        careful.failures.sort_values(order).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(fast.accounting, careful.accounting)
    for name in TABLES:
        pd.testing.assert_frame_equal(fast.valid(name), careful.valid(name))
        pd.testing.assert_frame_equal(fast.tables[name].quarantine, careful.tables[name].quarantine)
        pd.testing.assert_frame_equal(fast.tables[name].blanked, careful.tables[name].blanked)


def _both_routes(paths: dict[str, Path], monkeypatch: pytest.MonkeyPatch):
    raw = read_raw_tables(paths)
    fast = validate_study(raw)
    with monkeypatch.context() as patch:
        _text_route(patch)
        careful = validate_study(read_raw_tables(paths))
    return raw, fast, careful


def test_demo_study_validates_the_same_on_both_routes(monkeypatch):
    paths = {name: DEMO / f"{name}.csv" for name in TABLES}
    raw, fast, careful = _both_routes(paths, monkeypatch)
    assert raw["patients"].typed is not None and raw["sessions"].typed is not None
    assert fast.quarantined_rows > 0
    _assert_same(fast, careful)


def test_rows_breaking_every_kind_of_rule_quarantine_the_same_on_both_routes(tmp_path, monkeypatch):
    tables = {name: append_rows(name, *rows) for name, rows in BROKEN.items()}
    raw, fast, careful = _both_routes(write_study(tmp_path, **tables), monkeypatch)
    assert all(table.typed is not None for table in raw.values())
    checks = set(fast.failures["check"])
    assert {"not_nullable", "duplicate_key", "unknown_patient", "out_of_order"} <= checks
    assert {"quarantined_patient", "date_before_enrolment"} <= checks
    _assert_same(fast, careful)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("P1,3,2025-01-27,0x5,50,,,,,,,,,,,", "hexadecimal"),
        ("P1,3,2025-01-27,5,inf,,,,,,,,,,,", "infinite"),
        ("P1,3,2025-01-27, 5,50,,,,,,,,,,,", "surrounding space"),
        ('P1,3,2025-01-27,5,"5\n0",,,,,,,,,,,', "quoted line break"),
        ("P1,3,2025-01-27,5.0,50,,,,,,,,,,,", "a whole number written with a decimal"),
        ("P1,3,2025-01-27,+5,50,,,,,,,,,,,", "a plus sign"),
        ("P1,3,27/01/2025,5,50,,,,,,,,,,,", "another date format"),
    ],
)
def test_cells_the_fast_route_might_read_differently_take_the_text_route(
    tmp_path, monkeypatch, row, reason
):
    paths = write_study(tmp_path, assessments=append_rows("assessments", row))
    raw, fast, careful = _both_routes(paths, monkeypatch)
    assert raw["assessments"].typed is None, reason
    _assert_same(fast, careful)


@pytest.mark.parametrize("route", ["fast", "text"])
def test_a_quote_left_open_on_the_last_line_is_one_sentence_on_both_routes(
    tmp_path, monkeypatch, route
):
    # pyarrow would read the open cell to the end of the file ('mild' and its line break) and
    # keep every line its row; the text route's reader names the line instead
    text = append_rows("sessions", 'P1,3,2025-01-20,deep,no,0,soreness,"mild')
    paths = write_study(tmp_path, sessions=text)
    if route == "text":
        _text_route(monkeypatch)
    with pytest.raises(InputFileError, match=r"line 8 opens a quoted cell .* never closed"):
        read_raw_tables(paths)


def test_yes_no_in_mixed_case_takes_the_text_route(tmp_path, monkeypatch):
    paths = write_study(tmp_path, patients=append_rows("patients", "P4,A,2025-01-01,30,,4,yEs,No"))
    raw, fast, careful = _both_routes(paths, monkeypatch)
    assert raw["patients"].typed is None
    assert fast.valid("patients")["anticoagulants"].tolist()[-1]
    _assert_same(fast, careful)


def test_blank_lines_and_rows_of_missing_cells_are_skipped_and_counted(tmp_path, monkeypatch):
    text = append_rows("patients", "", ",,,,,,,", "NA,-,,,,,,", "P4,A,2025-01-01,30,,4,no,no")
    raw, fast, careful = _both_routes(write_study(tmp_path, patients=text), monkeypatch)
    assert raw["patients"].typed is not None
    assert raw["patients"].blank_lines == 3
    assert fast.valid("patients")["source_row"].tolist() == [2, 3, 4, 8]
    _assert_same(fast, careful)


def test_a_row_filled_only_in_an_extra_column_is_not_blank(tmp_path, monkeypatch):
    header, *rows = append_rows("patients", ",,,,,,,,kept").splitlines()
    text = "\n".join([header + ",note", *(r + "," for r in rows[:-1]), rows[-1]]) + "\n"
    raw, fast, careful = _both_routes(write_study(tmp_path, patients=text), monkeypatch)
    assert raw["patients"].typed is None
    assert fast.tables["patients"].quarantine["note"].tolist() == ["kept"]
    _assert_same(fast, careful)


def test_typed_cells_equal_parsed_text_cells():
    for name in TABLES:
        path = DEMO / f"{name}.csv"
        layout = split_header(path, path.read_bytes(), ",", "utf-8", 1)
        typed = read_typed(layout, column_kinds(name))
        if typed is None:
            continue
        raw = read_raw_table(name, path)
        text = read_text(layout, "").frame.rename(columns={"source_line": "source_row"})
        expected, failures = parse_cells(name, text)
        assert failures.empty
        pd.testing.assert_frame_equal(typed_cells(raw)[0], expected)


def test_text_of_chosen_lines_is_what_the_text_route_reads(tmp_path):
    path = write_study(
        tmp_path, sessions=append_rows("sessions", '"P3",2,"2025-01-20",deep,NA,0,None,')
    )["sessions"]
    layout = split_header(path, path.read_bytes(), ",", "utf-8", 1)
    typed = read_typed(layout, {"session_number": "integer", "patient_id": "text"})
    lines = np.array([8, 3, 2])
    whole = read_text(layout, "").frame
    expected = whole[whole["source_line"].isin(lines)].reset_index(drop=True)
    pd.testing.assert_frame_equal(typed.text_of(lines), expected)
    assert typed.text_of(np.array([8]))["adverse_event"].tolist() == ["None"]


def _perturbed(frame: pd.DataFrame, table: str, rng: np.random.Generator) -> pd.DataFrame:
    """A copy with a few cells set to values that break (or only just meet) the schema."""
    frame = frame.copy()
    columns = MODELS[table].to_schema().columns
    for name in rng.choice(list(columns), size=3, replace=False):
        row = int(rng.integers(len(frame)))
        checks = {c.name: c.statistics for c in columns[name].checks}
        if "greater_than_or_equal_to" in checks:
            low = checks["greater_than_or_equal_to"]["min_value"]
            high = checks["less_than_or_equal_to"]["max_value"]
            frame.loc[row, name] = rng.choice([low - 1, low, high, high + 1])
        elif "isin" in checks:
            frame.loc[row, name] = rng.choice([*checks["isin"]["allowed_values"], "zzz"])
        elif "str_length" in checks:
            frame.loc[row, name] = rng.choice(["", "x" * 65, "P1"])
        else:
            frame.loc[row, name] = None
    return frame


def test_screened_columns_give_the_failures_pandera_gives_on_every_column(monkeypatch):
    raw = read_raw_tables({name: DEMO / f"{name}.csv" for name in TABLES})
    rng = np.random.default_rng(20261121)
    for name in TABLES:
        typed = typed_cells(raw[name])[0]
        for _ in range(25):
            frame = _perturbed(typed, name, rng)
            screened = check_values(name, frame)
            with monkeypatch.context() as patch:
                patch.setattr(pipeline.validate.study, "cleared_columns", lambda schema, frame: [])
                full = check_values(name, frame)
            pd.testing.assert_frame_equal(screened, full)


def test_patient_positions_by_runs_equal_a_lookup_of_every_id():
    patients = pd.DataFrame(
        {
            "patient_id": pd.array(["P1", "P2", "P3", "P4"], dtype="str"),
            "enrolment_date": pd.to_datetime(["2025-01-01"] * 4).astype("datetime64[us]"),
        }
    )
    index = pipeline.validate.study.PatientIndex.of(patients, np.array([True, False, True, True]))
    rng = np.random.default_rng(7)
    runs = np.repeat(["P1", "P2", None, "P9", "P3", "P3x", "P4"], rng.integers(1, 6, 7))
    # every patient once, in the patients file's order (compared, not looked up), out of that
    # order, and with one patient left out; two rows each (runs exactly half the rows)
    ordered = np.repeat(["P1", "P2", "P3", "P4"], 2)
    swapped = np.repeat(["P1", "P2", "P4", "P3"], 2)
    fewer = np.repeat(["P1", "P2", "P4"], 2)
    for ids in (runs, rng.permutation(runs), ordered, swapped, fewer):
        series = pd.Series(pd.array(list(ids), dtype="str"))
        expected = [
            ["P1", "P2", "P3", "P4"].index(i) if i in {"P1", "P2", "P3", "P4"} else -1 for i in ids
        ]
        assert index.positions(series).tolist() == expected
    assert index.valid.tolist() == [True, False, True, True]


def test_windows_line_ends_and_a_byte_order_mark_quarantine_the_same_on_both_routes(
    tmp_path, monkeypatch
):
    paths = write_study(tmp_path, assessments=append_rows("assessments", *BROKEN["assessments"]))
    for path in paths.values():
        text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
        path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    raw, fast, careful = _both_routes(paths, monkeypatch)
    assert all(table.typed is not None for table in raw.values())
    assert len(fast.tables["assessments"].quarantine) >= 5
    _assert_same(fast, careful)


def test_whole_number_and_yes_no_columns_leave_their_arrow_buffers_intact():
    """Chunks that start inside their buffers (sliced) and hold missing cells convert exactly."""
    numbers = pa.array([7, None, 3, 4, None, 9, 11, None, 2], pa.int64())
    flags = pa.array([True, None, False, True, None, False, True, None, True], pa.bool_())
    for array, kind in ((numbers, "integer"), (flags, "yes/no")):
        column = pa.chunked_array([array.slice(1, 4), array.slice(5, 0), array.slice(6, 3)])
        expected = array.slice(1, 4).to_pylist() + array.slice(6, 3).to_pylist()
        converted = _to_pandas(column, kind)
        assert [None if pd.isna(v) else v for v in converted] == expected
        assert converted.dtype == ("Int64" if kind == "integer" else "boolean")


def test_a_header_over_two_lines_numbers_the_rows_alike_on_both_routes(tmp_path, monkeypatch):
    # A quoted column name holding a line break: the body starts a line later, and a rejected
    # row's line (and its text, read back from the file) must be the file's on both routes.
    lines = append_rows("sessions", "P1,3,2025-01-20,medium,no,0,none,").splitlines()
    lines = [lines[0] + ',"note\n(free text)"', *(line + ",-" for line in lines[1:])]
    paths = write_study(tmp_path, sessions="\n".join(lines) + "\n")
    raw, fast, careful = _both_routes(paths, monkeypatch)
    assert raw["sessions"].typed is not None  # (the fast route was taken)
    _assert_same(fast, careful)
    (line,) = fast.tables["sessions"].quarantine["source_row"]
    assert line == len(paths["sessions"].read_text(encoding="utf-8").splitlines())
