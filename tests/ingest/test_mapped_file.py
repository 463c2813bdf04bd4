"""A large input file is mapped, not read (pipeline.ingest.mapped_file), and read the same."""

import codecs
from pathlib import Path

import pytest

from pipeline.errors import InputFileError
from pipeline.ingest import mapped_file
from pipeline.ingest.mapped_file import MappedFile, file_bytes
from pipeline.ingest.raw_tables import read_raw_table
from pipeline.ingest.readers import read_table

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    p
    for folder in (ROOT / "tests" / "corpus", ROOT / "data" / "raw" / "examples")
    for p in folder.rglob("*")
    if p.is_file() and p.suffix in (".csv", ".txt", ".xlsx")
)
CONTENTS = [
    b"id,site\nP1,North\n",
    codecs.BOM_UTF8 + "id,site\nP1,Zürich\n".encode(),
    "id;site\r\nP1;Köln\r\n".encode("cp1252"),
    b"\n\n  \n",
    b"id\n" + b"x" * 5000 + b"\x80",  # non-ASCII only past the first block's start
]


def _mapped(path: Path, monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.setattr(mapped_file, "MAPPED_FROM", 1)
    return file_bytes(path)


@pytest.mark.parametrize("data", CONTENTS)
def test_a_mapped_file_answers_as_its_bytes(tmp_path, monkeypatch, data):
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    mapped = _mapped(path, monkeypatch)
    assert isinstance(mapped, MappedFile)
    assert mapped[:] == data and len(mapped) == len(data)
    for prefix in (codecs.BOM_UTF8, b"id", (b"\xff\xfe", b"id"), b""):
        assert mapped.startswith(prefix) == data.startswith(prefix)
    for suffix in (b"\n", b"\x80", b"x" * 6000):
        assert mapped.endswith(suffix) == data.endswith(suffix)
    assert mapped.isascii() == data.isascii()
    assert (b"\x00" in mapped) is False and (b"\n" in mapped) == (b"\n" in data)
    assert mapped.count(b"\n") == data.count(b"\n")
    assert mapped.count(b"i", 1, 4) == data.count(b"i", 1, 4)
    assert mapped.strip() == data.strip() and mapped.split(b"\n") == data.split(b"\n")
    for encoding in ("latin-1", "cp1252"):
        try:
            expected = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        assert mapped.decode(encoding) == expected


def test_a_small_or_empty_file_is_read_and_a_large_one_mapped(tmp_path):
    small, empty, large = tmp_path / "small.csv", tmp_path / "empty.csv", tmp_path / "large.csv"
    small.write_bytes(b"id\nP1\n")
    empty.write_bytes(b"")
    large.write_bytes(b"id\n" + b"P1\n" * (mapped_file.MAPPED_FROM // 3 + 1))
    assert type(file_bytes(small)) is bytes and file_bytes(empty) == b""
    assert isinstance(file_bytes(large), MappedFile)


def _read(path: Path) -> object:
    try:
        table = read_table(path)
    except InputFileError as exc:
        return str(exc)
    return table.sha256, table.encoding, table.header, table.blank_lines, table.frame


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(ROOT)) for p in FILES])
def test_every_example_and_corpus_file_reads_the_same_mapped(path, monkeypatch):
    read = _read(path)
    monkeypatch.setattr(mapped_file, "MAPPED_FROM", 0)
    mapped = _read(path)
    if isinstance(read, str):
        assert mapped == read
        return
    *same, frame = read
    assert mapped[:-1] == tuple(same)
    assert mapped[-1].equals(frame)


def test_a_canonical_file_mapped_takes_the_typed_route_and_gives_its_text(monkeypatch):
    path = ROOT / "data" / "raw" / "examples" / "canonical" / "sessions.csv"
    read = read_raw_table("sessions", path)
    monkeypatch.setattr(mapped_file, "MAPPED_FROM", 0)
    mapped = read_raw_table("sessions", path)
    assert mapped.typed is not None and mapped.typed.equals(read.typed)
    lines = read.typed["source_row"].to_numpy()[:3]
    assert mapped.text_rows(lines).equals(read.text_rows(lines))
    assert mapped.sha256 == read.sha256
