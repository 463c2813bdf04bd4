"""Journal outputs: outcomes.docx and one .docx per table, read back (issue 16)."""

from __future__ import annotations

import io
from pathlib import Path

import docx
import pytest
import report_tables
from factories import write_config, write_study

from pipeline.config.settings import load_config
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.privacy.suppression import publish_tables
from pipeline.report import provenance
from pipeline.report.content import build_content
from pipeline.report.html import Figure, Table
from pipeline.report.journal import SECTIONS, chosen_blocks, journal_files

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def content(tmp_path_factory):
    folder = tmp_path_factory.mktemp("journal")
    paths = write_study(folder / "raw")
    config = load_config(write_config(folder, paths))
    published = publish_tables(report_tables.run_tables(), config.privacy.small_cell_threshold)
    run = provenance.collect(config, read_raw_tables(paths), ROOT, "environment variable X")
    return build_content(config, published, run)


def _cells(table) -> list[list[str]]:
    return [[cell.text for cell in row.cells] for row in table.rows]


def test_the_document_holds_the_answer_table_one_main_results_safety_and_figures(content):
    files = journal_files(content)
    document = docx.Document(io.BytesIO(files.document))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "The answer" in text and "No detectable twitch effect on any outcome." in text
    expected = [
        b
        for s in content.sections
        if s.id in SECTIONS
        for b in chosen_blocks(s)
        if isinstance(b, Table)
    ]
    captions = [t.caption for t in expected]
    assert any(c.startswith("Baseline characteristics") for c in captions)  # Table 1
    assert any(c.startswith("Contrasts") for c in captions)  # main results
    assert "Rate ratio" in captions  # safety
    assert len(document.tables) == len(expected)
    for shown, table in zip(document.tables, expected, strict=True):
        assert _cells(shown) == [list(table.header), *map(list, table.rows)]
        header = shown.rows[0]._tr.trPr
        assert header is not None and header.xml.count("tblHeader") == 1  # repeated on pages
    figures = [
        b
        for s in content.sections
        if s.id in SECTIONS
        for b in chosen_blocks(s)
        if isinstance(b, Figure)
    ]
    assert len(document.inline_shapes) == len(figures) >= 2  # the answer and forest plots
    for number in range(1, len(expected) + 1):
        assert f"Table {number}. " in text
    # one file per table, each with the same cells
    assert len(files.tables) == len(expected)
    for (name, data), table in zip(sorted(files.tables.items(), key=_order), expected, strict=True):
        one = docx.Document(io.BytesIO(data))
        assert name.endswith(".docx")
        assert _cells(one.tables[0]) == [list(table.header), *map(list, table.rows)]


def _order(item: tuple[str, bytes]) -> int:
    return int(item[0].split("_")[1])
