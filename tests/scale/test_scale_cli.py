"""``outcomes run`` on the Polars backend: file problems end in one sentence, as on pandas."""

from __future__ import annotations

from command import assert_one_sentence_error, outcomes
from factories import SESSIONS, write_config, write_study

POLARS = 'backend = "polars"'


def test_a_missing_required_column_is_the_pandas_sentence(tmp_path):
    paths = write_study(tmp_path / "raw")
    text = paths["patients"].read_text().replace("site,", "clinic,", 1)
    paths["patients"].write_text(text)
    result = outcomes("run", "--config", write_config(tmp_path, paths, engine=POLARS))
    assert_one_sentence_error(result, "patients.csv", "required column 'site' is missing")


def test_a_line_break_inside_a_cell_asks_for_the_pandas_backend(tmp_path):
    sessions = SESSIONS + 'P1,3,2025-01-20,deep,yes,1,"none\nreally",\n'
    paths = write_study(tmp_path / "raw", sessions=sessions)
    result = outcomes("run", "--config", write_config(tmp_path, paths, engine=POLARS))
    assert_one_sentence_error(result, "sessions.csv", "line break", 'backend = "pandas"')


def test_blank_rows_are_counted_and_kept_out_of_every_partition(tmp_path):
    """Blank rows (every cell empty or a missing token) are counted, never partitioned.

    Expected counts are the file's own: 7 data lines, 2 of them blank, 5 patients' rows.
    """
    import polars as pl

    from pipeline.scale.partition import PART, partition_files, partition_table

    path = tmp_path / "patients.csv"
    lines = ["patient_id,site,sex,age,chronicity,enrolment_date"]
    lines += [f"P{k},North,F,40,acute,2025-01-0{k}" for k in range(1, 4)]
    lines += [",,,,,", " NA ,-, ,n/a,,null"]
    lines += [f"P{k},North,F,40,acute,2025-01-0{k}" for k in range(4, 6)]
    path.write_text("\n".join(lines) + "\n")
    raw = partition_table("patients", path, tmp_path / "parts", 3)
    assert (raw.rows, raw.blank_lines) == (5, 2)
    rows = [
        pl.read_parquet(f)
        for k in range(3)
        for f in partition_files(tmp_path / "parts", "patients", k)
    ]
    assert sorted(pl.concat(rows)["source_row"].to_list()) == [2, 3, 4, 7, 8]
    assert not (tmp_path / "parts" / "patients" / f"{PART}=3").exists()
