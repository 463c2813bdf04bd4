"""Column mapping and the normalisation every source shares (codes, units, dates, ids)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config.sources import Source, strptime_pattern
from pipeline.errors import InputFileError
from pipeline.ingest.adapters.mapping import (
    _coded,
    _iso_written,
    _scaled,
    apply_codes,
    compact_ids,
    fold_code_case,
    iso_dates,
    normalise,
    resolve_columns,
    scale,
)
from pipeline.ingest.readers import read_table


def text(*values):
    return pd.Series(list(values), dtype="str")


def source(**keys):
    return Source(number=1, kind="visit_sheet", config=Path("a.toml"), files={}, **keys)


def test_codes_match_ignoring_case_and_spaces():
    out = apply_codes(
        text("Tief", " oberflächlich", "TIEF ", "mittel", None, "9"),
        {"tief": "deep", "Oberflächlich": "superficial", "9": ""},
    )
    assert out.tolist()[:4] == ["deep", "superficial", "deep", "mittel"]
    assert out.isna().tolist()[4:] == [True, True]  # missing stays missing; "9" means missing


def test_dates_in_the_configured_format_iso_and_excel_serials():
    out = iso_dates(
        text(
            "06/01/2025",
            "6/1/2025",
            "2025-01-06",
            "2025-01-06 09:30:00",
            "45663",
            "31/02/2025",
            "2025/01/06",
            None,
        ),
        "DD/MM/YYYY",
    )
    assert out.tolist()[:5] == ["2025-01-06"] * 5
    assert out.tolist()[5:7] == ["31/02/2025", "2025/01/06"]  # left for validation to reject
    assert strptime_pattern("DD.MM.YYYY") == "%d.%m.%Y"
    assert strptime_pattern("yyyymmdd") == "%Y%m%d"
    for bad in ("DD/MM/YY", "MM/DD", "day/month/year", "DD MON MM YYYY"):
        with pytest.raises(ValueError):
            strptime_pattern(bad)


def test_dates_with_the_month_by_its_name():
    # SAS and Stata write 03FEB2025; other exports 3 Feb 2025, 3 February 2025 or Feb 3, 2025
    # (English names, any case)
    for written, cells in (
        ("DDMONYYYY", ("03FEB2025", "3feb2025")),
        ("DD-MON-YYYY", ("03-Feb-2025", "3-FEB-2025")),
        ("DD MONTH YYYY", ("3 February 2025", "03 february 2025")),
        ("MON DD, YYYY", ("Feb 3, 2025", "feb 03, 2025")),
    ):
        assert iso_dates(text(*cells, "31FEB2025"), written).tolist() == [
            "2025-02-03",
            "2025-02-03",
            "31FEB2025",  # (not a date: left for validation to quarantine)
        ]


def test_units_and_patient_ids():
    assert scale(text("5.7", "14", "abc", None), 10).tolist()[:3] == ["57", "140", "abc"]
    assert scale(text("20.65"), 2).tolist() == ["41.3"]
    assert compact_ids(text("p-001", "P 001", "p_0.0/1", "P001", "--")).tolist()[:4] == ["P001"] * 4
    assert compact_ids(text("--")).isna().all()


@pytest.mark.parametrize("seed", range(3))
def test_each_distinct_value_is_converted_as_every_cell_would_be(seed):
    """Codes, units and dates are converted once per distinct value (``per_distinct``): over
    columns drawing repeated values, missing cells among them, under a shuffled index, the
    result is that of converting every cell."""
    rng = np.random.default_rng(seed)
    pool = np.array(
        ["Tief", " tief ", "TIEF", "9", "mittel", "5.7", "14", "abc", "06/01/2025", "6/1/2025",
         "2025-01-06", "2025-01-06 09:30:00", "45663", "31/02/2025", None],
        dtype=object,
    )  # fmt: skip
    cells = pd.Series(rng.choice(pool, 300), index=rng.permutation(300) + 1000, dtype="str")
    codes = {"tief": "deep", "9": ""}
    pairs = [
        (apply_codes(cells, codes), _coded(cells, codes)),
        (scale(cells, 10), _scaled(cells, 10)),
        (iso_dates(cells, "DD/MM/YYYY"), _iso_written(cells, "DD/MM/YYYY")),
    ]
    for distinct, every_cell in pairs:
        pd.testing.assert_series_equal(distinct, every_cell.astype("str"))
        assert distinct.isna().sum() >= cells.isna().sum()


@pytest.mark.parametrize(
    "cells",
    [
        ("Deep", " SUPERficial ", None, "mild"),  # nothing for the regex: skipped
        ("very  deep", "a\tb", "x\r\ny", "\u00e9t\u00e9  \u00e9", "v\x0bw", "f\x0cg"),
        ("p-001", "P 001", "p_0.0/1", "\u00fc.\u00dc", None, "--"),
    ],
)
def test_folding_and_ids_as_the_regex_gives(cells):
    """The byte pre-check that skips a regex pass gives what the regex gives (whitespace runs
    of every kind, separators, non-ASCII letters), on the first of these with nothing to do and
    on the others where the regex runs."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arrow = pa.chunked_array([pa.array(list(cells), pa.large_string())])
    folded = pc.utf8_lower(
        pc.replace_substring_regex(pc.utf8_trim_whitespace(arrow), r"\s+", " ")
    ).to_pylist()
    out = fold_code_case(text(*cells))
    assert [None if pd.isna(v) else v for v in out] == folded
    compact = [
        v or None
        for v in pc.replace_substring_regex(pc.utf8_upper(arrow), r"[\s\-_./]+", "").to_pylist()
    ]
    ids = compact_ids(text(*cells))
    assert [None if pd.isna(v) else v for v in ids] == compact


def test_normalise_applies_every_configured_step():
    frame = pd.DataFrame(
        {
            "patient_id": text("p-1", "P1"),
            "depth": text(" Deep", "2"),
            "vas_mm": text("5,5", "6"),
            "odi": text("20,5", None),
            "visit_date": text("06.01.2025", "13.01.2025"),
            "therapist": text("T1", "T2"),
        }
    )
    out = normalise(
        frame,
        source(
            decimal=",",
            date_format="DD.MM.YYYY",
            codes={"depth": {"2": "deep"}},
            units={"vas_mm": "cm", "odi": "points"},
        ),
    )
    assert out["patient_id"].tolist() == ["P1", "P1"]
    assert out["depth"].tolist() == ["deep", "deep"]
    assert out["vas_mm"].tolist() == ["55", "60"]
    assert out["odi"].tolist()[0] == "41"
    assert out["visit_date"].tolist() == ["2025-01-06", "2025-01-13"]
    kept = normalise(frame, source(patient_id="as_written"))
    assert kept["patient_id"].tolist() == ["p-1", "P1"]


def test_columns_are_found_by_name_ignoring_case_and_spaces(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("Patient ,NRS,Pain  score,nrs2\nP1,5,6,7\n")
    table = read_table(path)
    found = resolve_columns(
        source(columns={"vas_mm": "pain score"}), table, "v.csv", ["patient_id", "nrs", "vas_mm"]
    )
    assert found == {"nrs": "NRS", "vas_mm": "Pain  score"}
    with pytest.raises(InputFileError, match=r"maps nrs to 'Pain', but v.csv has no such column"):
        resolve_columns(source(columns={"nrs": "Pain"}), table, "v.csv", ["nrs"])
    with pytest.raises(InputFileError, match=r"does not map patient_id, and v\.csv has no column"):
        resolve_columns(source(), table, "v.csv", ["patient_id"], ["patient_id"])


def test_an_explicitly_used_column_is_not_taken_again_by_name(tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("nrs,score\n5,6\n")
    found = resolve_columns(
        source(columns={"vas_mm": "nrs"}), read_table(path), "v", ["nrs", "vas_mm"]
    )
    assert found == {"vas_mm": "nrs"}


ALPHABETS = {
    "lower": "abcdez",  # nothing to change for folding: the byte scan skips it
    "codes": "abcdz019",
    "upper ids": "PQZ0129",  # nothing to change for ids
    "mixed": "aZ0 -_./\t\u00e9\u00c9",
}


@pytest.mark.parametrize("alphabet", ALPHABETS.values(), ids=ALPHABETS.keys())
def test_byte_scans_skip_only_what_would_not_change(alphabet):
    """Folding and ids give what the text functions give, with or without the byte scan's
    shortcut, including on sliced and several-chunk arrays (whose buffers hold other bytes)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(7)
    cells = [
        None if rng.random() < 0.1 else "".join(rng.choice(list(alphabet), rng.integers(0, 6)))
        for _ in range(400)
    ]
    whole = pa.array(["ZZ Q", *cells, "q-q"], pa.large_string())  # other bytes at both ends
    arrow = pa.chunked_array([whole.slice(1, 200), whole.slice(201, 200)])
    column = pd.Series(pd.arrays.ArrowStringArray(arrow), dtype="str")
    plain = pd.Series(cells, dtype=object)
    folded = plain.str.strip().str.replace(r"\s+", " ", regex=True).str.lower()
    assert _listed(fold_code_case(column)) == _listed(folded)
    ids = plain.str.upper().str.replace(r"[\s\-_./]+", "", regex=True)
    assert _listed(compact_ids(column)) == _listed(ids.mask(ids == ""))


def _listed(values: pd.Series) -> list:
    return [None if pd.isna(v) else v for v in values]


@pytest.mark.parametrize(
    ("cells", "iso"),
    [
        (("2025-01-02", None, "", "2024-12-31"), True),
        (("2025-13-45", "2025-01-02"), True),  # not a date, but nothing to rewrite
        (("2025-1-02", "2025-01-02"), False),
        (("2025/01/02",), False),
        (("2025-01-0a",), False),
        (("2025-0--02",), False),
        (("20250-1-02",), False),
        (("2025-01-02T10:00",), False),
        (("45293",), False),
    ],
)
def test_the_byte_scan_finds_dates_written_iso(cells, iso):
    import pyarrow as pa

    from pipeline.ingest.adapters.mapping import _written_iso

    whole = pa.array(["1999-01", *cells, "x"], pa.large_string())  # other bytes at both ends
    assert _written_iso(pa.chunked_array([whole.slice(1, len(cells))])) == iso


def test_dates_the_scan_passes_on_are_rewritten():
    out = iso_dates(
        text("2025-1-02", "2025-01-02T10:00", "45293", "2025-13-45", "02.01.2025"), "DD.MM.YYYY"
    )
    # A month of one digit is not an ISO date. 45293 is an Excel serial day in the 1900 date
    # system: Excel's =DATE(2024,1,2) gives 45293 (1899-12-30 plus 45293 days).
    assert out.tolist() == ["2025-1-02", "2025-01-02", "2024-01-02", "2025-13-45", "2025-01-02"]
