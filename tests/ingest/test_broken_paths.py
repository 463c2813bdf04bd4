"""Paths that are not readable files, and files that are not tables: the sentence says which.

The corpus (tests/corpus/) holds the cases a repository can keep (a folder, a web page, a PNG);
a named pipe and a file without read permission are made here, in a temporary folder.
"""

import os
from pathlib import Path

import pytest

from pipeline.errors import InputFileError
from pipeline.ingest.raw_tables import read_raw_table
from pipeline.ingest.readers import looks_like, read_table


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_a_named_pipe_is_named_as_such_and_never_opened(tmp_path):
    pipe = tmp_path / "visits.csv"
    os.mkfifo(pipe)  # opening it would block: the reader must not try
    with pytest.raises(InputFileError, match=r"visits.csv: this is a named pipe \(FIFO\)"):
        read_table(pipe)


def test_a_file_without_read_permission_says_permission_denied(tmp_path, monkeypatch):
    path = tmp_path / "visits.csv"
    path.write_text("patient_id\nP1\n", encoding="utf-8")
    # (tests may run as root, who may read anything: the permission answer is simulated)
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != path)
    with pytest.raises(InputFileError, match="exists but you may not read it"):
        read_table(path)


def test_a_missing_file_is_not_found_and_a_folder_is_a_folder(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        read_table(tmp_path / "nope.csv")
    with pytest.raises(InputFileError, match="this is a folder, not a file"):
        read_table(tmp_path)


@pytest.mark.parametrize(
    ("start", "what"),
    [
        (b"%PDF-1.7\n%\xe2\xe3\x00", "a PDF document"),
        (b"\x1f\x8b\x08\x00\x00", "a gzip archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", "an old Excel .xls workbook"),
        (b"\n  <html lang='de'><body>Sitzung abgelaufen</body></html>", "a web page in HTML"),
    ],
)
def test_what_a_file_looks_like_is_named(tmp_path, start, what):
    assert looks_like(start).startswith(what)
    path = tmp_path / "export.csv"
    path.write_bytes(start + b"\n")
    with pytest.raises(InputFileError, match=f"looks like {what}"):
        read_table(path)


@pytest.mark.parametrize(
    ("start", "what"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG picture"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG picture"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3", "a PDF document"),
        (b"<!DOCTYPE html><html><body>Login</body></html>", "a web page in HTML"),
    ],
)
def test_a_canonical_input_that_is_not_a_table_says_what_it_looks_like(tmp_path, start, what):
    # the [inputs] form reads UTF-8 only: a picture is named, not called "not UTF-8 text"
    path = tmp_path / "assessments.csv"
    path.write_bytes(start + b"\n")
    with pytest.raises(InputFileError, match=f"assessments.csv: not a text table .*{what}"):
        read_raw_table("assessments", path)


@pytest.mark.parametrize(
    ("kind", "message"),
    [("folder", "this is a folder, not a file"), ("fifo", r"this is a named pipe \(FIFO\)")],
)
def test_a_canonical_input_that_is_not_a_file_says_what_it_is(tmp_path, kind, message):
    path = tmp_path / "assessments.csv"
    if kind == "folder":
        path.mkdir()
    elif hasattr(os, "mkfifo"):
        os.mkfifo(path)  # opening it would block: the reader must not try
    else:
        pytest.skip("named pipes need a POSIX system")
    with pytest.raises(InputFileError, match=f"assessments.csv: {message}"):
        read_raw_table("assessments", path)


def test_a_quote_inside_a_cell_is_not_an_open_quote(tmp_path):
    # an odd number of quote marks: the one in 5" is kept as written, nothing is left open
    path = tmp_path / "visits.csv"
    path.write_text('patient_id,note\nP1,needle 5" long\nP2,ok\n', encoding="utf-8")
    table = read_table(path)
    assert table.frame["note"].tolist() == ['needle 5" long', "ok"]


def test_a_short_row_with_its_own_cells_is_not_a_delimiter_problem(tmp_path):
    path = tmp_path / "visits.csv"
    path.write_text("a,b,c,d\n1,2\n3,4,5,6\n", encoding="utf-8")
    assert read_table(path).rows == 2
