"""Reading one clinic file as text: dialects, encodings, header lines, line numbers, Excel."""

import codecs
import datetime as dt
import re

import openpyxl
import pandas as pd
import pytest

from pipeline.errors import InputFileError
from pipeline.ingest.readers import LINE, cell_text, read_table


def _write(tmp_path, text, name="f.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def test_semicolons_are_detected_and_decimal_commas_left_as_text(tmp_path):
    table = read_table(_write(tmp_path, "id;vas\nP1;5,5\nP2;6\n"))
    assert table.delimiter == ";"
    assert table.frame["vas"].tolist() == ["5,5", "6"]
    assert table.frame[LINE].tolist() == [2, 3]


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (codecs.BOM_UTF8 + "id,site\nP1,Zürich\n".encode(), "utf-8 (with byte-order mark)"),
        ("id,site\nP1,Zürich\n".encode("utf-16"), "utf-16"),
        ("id,site\nP1,Zürich\n".encode("cp1252"), "windows-1252"),
        ("id,site\nP1,Zürich\n".encode(), "utf-8"),
    ],
)
def test_encodings_are_recognised(tmp_path, data, encoding):
    table = read_table(_write(tmp_path, data))
    assert table.encoding == encoding
    assert table.header == ("id", "site")
    assert table.frame["site"].tolist() == ["Zürich"]


def test_declared_encoding_is_used_and_a_wrong_one_names_the_line(tmp_path):
    path = _write(tmp_path, "id,site\nP1,Köln\nP2,Zürich\n", encoding="cp1252")
    assert read_table(path, encoding="cp1252").frame["site"].tolist() == ["Köln", "Zürich"]
    with pytest.raises(InputFileError, match="line 2 is not UTF-8 text"):
        read_table(path, encoding="utf-8")


def test_header_row_blank_lines_and_trailing_rows(tmp_path):
    text = "Export of 2025\n\nid,nrs\nP1,5\n\nP2, NA \n,\n\n"
    table = read_table(_write(tmp_path, text), header_row=3)
    assert table.header_line == 3
    assert table.frame[LINE].tolist() == [4, 6]
    assert pd.isna(table.frame.loc[1, "nrs"])
    assert table.blank_lines == 3  # line 5, the all-missing row on line 7, line 8


def test_whitespace_codes_and_tokens(tmp_path):
    table = read_table(_write(tmp_path, "id,depth,ae\n P1 , Deep ,None\nP2,-,n/a\n"))
    assert table.frame["id"].tolist() == ["P1", "P2"]
    assert table.frame["depth"].tolist()[0] == "Deep"
    assert table.frame["ae"].tolist()[0] == "None"  # a code, not a missing token
    assert table.frame.iloc[1, 2:].isna().all()


def test_irregular_files_keep_exact_line_numbers(tmp_path):
    text = 'id,note,nrs\nP1,"two\nlines",5\n   \nP2,x\nP3,y,7,,\n'
    table = read_table(_write(tmp_path, text))
    assert table.frame[LINE].tolist() == [2, 5, 6]  # quoted line break; whitespace-only line
    assert pd.isna(table.frame.loc[1, "nrs"])  # a short row is padded
    assert table.frame.loc[2, "nrs"] == "7"  # empty trailing cells are dropped
    with pytest.raises(InputFileError, match="line 3 has 4 cells but the header has 3 columns"):
        read_table(_write(tmp_path, "id,note,nrs\nP1,a,5\nP2,b,6,extra\n"))


def test_duplicated_and_blank_header_names(tmp_path):
    table = read_table(_write(tmp_path, "id,nrs,,nrs\nP1,5,x,6\n"))
    assert table.duplicated() == {"nrs": (2, 4)}
    assert table.columns == ("id", "nrs", "[column 3]", "nrs [column 4]")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "the file is empty (no header row)"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "the file holds binary data: it looks like a PNG picture"),
        (b"PK\x03\x04\x00\x00rest", "this is a zip archive"),
    ],
)
def test_files_that_are_not_tables(tmp_path, data, message):
    with pytest.raises(InputFileError, match=re.escape(message)):
        read_table(_write(tmp_path, data))


def test_old_excel_files_are_refused(tmp_path):
    with pytest.raises(InputFileError, match=r"save the sheet as \.xlsx or CSV"):
        read_table(_write(tmp_path, b"\xd0\xcf\x11\xe0", name="visits.xls"))


def test_workbook_cells_become_text(tmp_path):
    book = openpyxl.Workbook()
    book.active.title = "Readme"
    sheet = book.create_sheet("Visits")
    sheet.append(["Visits export"])
    sheet.append([])
    sheet.append(["id", "date", "serial", "twitch", "vas", "nrs", "note"])
    sheet.append(["P1", dt.datetime(2025, 1, 6), 45663, True, 5.5, 6.0, "#N/A"])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["P2", dt.date(2025, 1, 7), "45664", False, "5", 7, " x "])
    path = tmp_path / "visits.xlsx"
    book.save(path)
    table = read_table(path, sheet="Visits", header_row=3)
    assert table.encoding == "xlsx" and table.delimiter is None
    assert table.frame[LINE].tolist() == [4, 6]
    assert table.blank_lines == 1
    first = table.frame.iloc[0]
    assert (first["date"], first["serial"], first["twitch"]) == ("2025-01-06", "45663", "yes")
    assert (first["vas"], first["nrs"]) == ("5.5", "6")
    assert pd.isna(first["note"])  # Excel's #N/A
    assert table.frame.loc[1, "note"] == "x"
    with pytest.raises(InputFileError, match="no sheet named 'Data' \\(sheets: Readme, Visits\\)"):
        read_table(path, sheet="Data")
    with pytest.raises(InputFileError, match="row 2 of sheet 'Visits' is blank"):
        read_table(path, sheet="Visits", header_row=2)


def test_cell_text():
    assert cell_text(dt.datetime(2025, 1, 6, 9, 30)) == "2025-01-06 09:30:00"
    assert cell_text(0.1 + 0.2) == "0.3"
    assert cell_text(12.0) == "12"
    assert cell_text(None) is None


def test_footer_rows_skip_the_lines_below_the_table(tmp_path):
    # A total and an export note below the table, after a blank line and a row of delimiters
    # (as spreadsheets save them): the two lines that hold anything are the footer.
    text = "id;nrs\nP1;5\nP2;6\n\n;;\nTotal: 2 patients\nExported 2026-03-01;\n"
    table = read_table(_write(tmp_path, text), footer_rows=2)
    assert table.frame["id"].tolist() == ["P1", "P2"]
    assert table.frame[LINE].tolist() == [2, 3]
    assert table.blank_lines == 2  # (the blank line and the row of delimiters stay blank)
    assert len(read_table(_write(tmp_path, text)).frame) == 4  # (without: rows of the table)
    # a file without a final line break, and a footer right below the last row
    table = read_table(_write(tmp_path, "id,nrs\nP1,5\nP2,6\nn = 2", "g.csv"), footer_rows=1)
    assert table.frame["id"].tolist() == ["P1", "P2"]
    with pytest.raises(InputFileError, match=r"g.csv: footer_rows is 4, but only 3 line\(s\)"):
        read_table(tmp_path / "g.csv", footer_rows=4)


def test_footer_rows_of_a_sheet(tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    for row in (["id", "nrs"], ["P1", 5], ["P2", 6], [None, None], ["Total", 11]):
        sheet.append(row)
    book.save(tmp_path / "f.xlsx")
    table = read_table(tmp_path / "f.xlsx", footer_rows=1)
    assert table.frame["id"].tolist() == ["P1", "P2"]
    with pytest.raises(InputFileError, match="only 3 row"):
        read_table(tmp_path / "f.xlsx", footer_rows=5)


def test_a_column_name_holding_a_line_break(tmp_path):
    # Excel writes a header cell typed with Alt+Enter in quotes, its line break kept: the header
    # spans two lines. It was cut at the first, and every row was "longer than the header".
    text = 'id;"NRS\n(0-10)";date\nP1;5;2025-01-06\nP2;6;2025-01-07\n'
    table = read_table(_write(tmp_path, text))
    assert table.header == ("id", "NRS (0-10)", "date")
    assert table.frame["NRS (0-10)"].tolist() == ["5", "6"]
    assert table.frame[LINE].tolist() == [3, 4]  # (the lines of the file)
    assert table.header_line == 1
    book = openpyxl.Workbook()
    book.active.append(["id", "NRS\n(0-10)"])
    book.active.append(["P1", 5])
    book.save(tmp_path / "f.xlsx")
    assert read_table(tmp_path / "f.xlsx").header == ("id", "NRS (0-10)")
