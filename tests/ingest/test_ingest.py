import pandas as pd
import pytest
from factories import PATIENTS, write_study

from pipeline.errors import InputFileError
from pipeline.ingest.raw_tables import SOURCE_ROW, read_raw_table, sha256_of


def test_cells_are_text_with_missing_tokens_and_line_numbers(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text(
        PATIENTS.replace("P3,Riverside", " P3 ,NA") + "\n\nP4,-,2025-01-20,50,n/a,4,,\n"
    )
    table = read_raw_table("patients", path)
    frame = table.frame
    assert list(frame[SOURCE_ROW]) == [2, 3, 4, 7]  # lines 5 and 6 are blank
    assert table.blank_lines == 2
    assert frame.loc[2, "patient_id"] == "P3"  # surrounding spaces removed
    assert frame["site"].isna().tolist() == [False, False, True, True]  # NA and - are missing
    assert pd.isna(frame.loc[3, "sex"])  # n/a is missing
    assert table.sha256 == sha256_of(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("\npatient_id,site\n", "line 1 is blank"),
        ("patient_id,site,site,enrolment_date,age,symptom_weeks\n", "column 'site' appears twice"),
        (
            "patient_id,enrolment_date,age,symptom_weeks\nP1,2025-01-01,3,4\n",
            "required column 'site' is missing from the patients file",
        ),
        ("This is a letter to the clinic, not a table.\nRegards\n", "required column"),
    ],
)
def test_file_level_problems_are_one_sentence(tmp_path, text, message):
    path = tmp_path / "patients.csv"
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        read_raw_table("patients", path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_binary_and_ragged_files(tmp_path):
    with pytest.raises(InputFileError, match="patients file not found"):
        read_raw_table("patients", tmp_path / "absent.csv")
    binary = tmp_path / "patients.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    # issue 15: the sentence says what the file looks like, not only that it is not UTF-8
    with pytest.raises(InputFileError, match=r"not a text table .*looks like a PNG picture"):
        read_raw_table("patients", binary)
    # a Windows-1252 name far down a large file: the line is named
    latin = tmp_path / "latin.csv"
    latin.write_bytes(PATIENTS.encode() * 3000 + "P4,Zürich,2025-01-01,30,m,4,,\n".encode("cp1252"))
    with pytest.raises(InputFileError, match="line 12001 is not UTF-8 text"):
        read_raw_table("patients", latin)
    ragged = write_study(tmp_path / "r", patients=PATIENTS + "P9,A,2025-01-01,3,4,5,6,7,8,9\n")
    with pytest.raises(InputFileError, match="not a comma-separated table"):
        read_raw_table("patients", ragged["patients"])


def _arrow_bytes(frame: pd.DataFrame) -> int:
    """Bytes of the Arrow buffers a frame's text columns refer to (sliced or not)."""
    return sum(
        buffer.size
        for column in frame.columns
        if hasattr(frame[column].array, "_pa_array")
        for chunk in frame[column].array._pa_array.chunks
        for buffer in chunk.buffers()
        if buffer is not None
    )


def test_no_quarantined_row_keeps_none_of_the_tables_text(tmp_path):
    # A zero-row slice would keep the whole table's text alive as long as the (empty)
    # quarantine; at registry scale that was every partition's text, kept to the end.
    path = tmp_path / "p.csv"
    rows = "".join(f"Q{i},North,2025-01-02,40,f,6,,\n" for i in range(500))
    path.write_text(PATIENTS.replace("P3,", " P3 ,") + rows)  # a spaced id: text route
    table = read_raw_table("patients", path)
    assert table.frame is not None and _arrow_bytes(table.frame) > 10_000
    none = table.text_rows(pd.Series([], dtype="int64"))
    assert none.empty and list(none.columns) == list(table.frame.columns)
    assert none.dtypes.equals(table.frame.dtypes)
    assert _arrow_bytes(none) < 1_000
