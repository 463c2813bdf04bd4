"""Journal outputs: the report's answer, Table 1, main results, safety and figures as Word files.

A journal wants a manuscript-like document it can edit: ``reports/outcomes.docx`` holds the
answer page, Table 1, the main results (the contrasts of the main analyses), the safety tables
and their figures, and every one of those tables is also written alone
(``reports/docx/<table>.docx``), as journals ask for one table per file. Both are built from
the same :class:`pipeline.report.html.ReportContent` as the HTML, so every number is the one
the report shows; nothing here reads or writes a file (the runner writes the bytes).

Tables are plain grids in the document's body font (Times New Roman 10 pt, the table 9 pt),
their header row repeated on every page, numeric columns right-aligned; figures are placed at
the text width (6.3 in) from the report's PNGs.
"""

from __future__ import annotations

import datetime
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass

import docx
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Inches, Pt

from pipeline.report.html import Block, Figure, Heading, Paragraph, ReportContent, Section, Table

DOCUMENT_NAME = "outcomes.docx"
TABLES_FOLDER = "docx"
SECTIONS = ("answer", "answer-details", "table-one", "outcomes", "safety")
"""Sections that go into the journal document, in this order."""


@dataclass(frozen=True)
class JournalFiles:
    """The Word files of one report: the document and one file per table."""

    document: bytes
    tables: dict[str, bytes]


def _is_main_result(block: Block) -> bool:
    """Whether an Outcomes block is a main result (the contrasts and their forest plots)."""
    if isinstance(block, Table):
        return block.caption.startswith("Contrasts")
    if isinstance(block, Figure):
        return block.anchor.startswith("forest-")
    return isinstance(block, Heading)


def chosen_blocks(section: Section) -> list[Block]:
    """Return the blocks of a section that go into the journal document."""
    if section.id == "outcomes":
        blocks = [b for b in section.blocks if _is_main_result(b)]
        # a heading with nothing of its question under it is left out
        return [
            b
            for i, b in enumerate(blocks)
            if not isinstance(b, Heading)
            or (i + 1 < len(blocks) and not isinstance(blocks[i + 1], Heading))
        ]
    return list(section.blocks)


def _repeat_header(row) -> None:
    properties = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    properties.append(header)


def _set_font(paragraph, size: float, bold: bool = False) -> None:
    for run in paragraph.runs:
        run.font.size = Pt(size)
        run.font.bold = bold


def _add_table(document, table: Table, number: int) -> None:
    caption = document.add_paragraph()
    caption.add_run(f"Table {number}. ").bold = True
    caption.add_run(table.caption)
    grid = document.add_table(rows=1 + len(table.rows), cols=len(table.header))
    grid.style = "Table Grid"
    grid.alignment = WD_TABLE_ALIGNMENT.CENTER
    # python-docx finds a row, and a row's cells, by walking the table's XML: each is looked
    # up once here, not once per cell
    rows = list(grid.rows)
    for cell, title in zip(rows[0].cells, table.header, strict=True):
        cell.text = title
        _set_font(cell.paragraphs[0], 9, bold=True)
    _repeat_header(rows[0])
    for i, row in enumerate(table.rows, start=1):
        for column, (cell, value) in enumerate(zip(rows[i].cells, row, strict=True)):
            cell.text = value
            paragraph = cell.paragraphs[0]
            _set_font(paragraph, 9, bold=(i - 1) in table.group_rows)
            if table.numeric[column]:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    if table.note:
        note = document.add_paragraph(table.note)
        _set_font(note, 8.5)


def _new_document(title: str):
    document = docx.Document()
    style = document.styles["Normal"]
    style.font.name = "Times New Roman"
    style.font.size = Pt(10)
    document.core_properties.title = title
    document.core_properties.author = "needling-outcomes"
    return document


def _add_blocks(document, blocks: Iterable[Block], counters: dict[str, int]) -> None:
    for block in blocks:
        if isinstance(block, Heading):
            document.add_heading(block.text, level=2)
        elif isinstance(block, Paragraph):
            paragraph = document.add_paragraph(block.text)
            if block.style == "note":
                _set_font(paragraph, 9)
            elif block.style == "headline":
                _set_font(paragraph, 10, bold=True)
        elif isinstance(block, Table):
            counters["table"] += 1
            _add_table(document, block, counters["table"])
        elif isinstance(block, Figure):
            counters["figure"] += 1
            document.add_picture(io.BytesIO(block.png), width=Inches(6.3))
            caption = document.add_paragraph()
            caption.add_run(f"Figure {counters['figure']}. ").bold = True
            caption.add_run(block.caption)
            _set_font(caption, 9)


FIXED_TIME = (1980, 1, 1, 0, 0, 0)
"""Time stamp of every part in a written ``.docx``: the same content gives the same bytes."""


def _bytes(document) -> bytes:
    """Save ``document`` reproducibly: fixed document dates and zip time stamps."""
    stamp = datetime.datetime(*FIXED_TIME)
    document.core_properties.created = stamp
    document.core_properties.modified = stamp
    document.core_properties.last_printed = stamp
    buffer = io.BytesIO()
    document.save(buffer)
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            part = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME)
            part.compress_type = zipfile.ZIP_DEFLATED
            part.external_attr = info.external_attr
            target.writestr(part, source.read(info.filename))
    return out.getvalue()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:60] or "table"


def journal_files(content: ReportContent) -> JournalFiles:
    """Build ``outcomes.docx`` and one ``.docx`` per table from the report's content.

    Parameters
    ----------
    content : ReportContent
        What the HTML report shows (:func:`pipeline.report.content.build_content`).

    Returns
    -------
    JournalFiles
        The document's bytes, and ``{file name: bytes}`` for each table, named
        ``table_<n>_<caption>.docx`` in the document's numbering.
    """
    document = _new_document(content.title)
    document.add_heading(content.title, level=0)
    intro = document.add_paragraph(content.intro)
    _set_font(intro, 9)
    counters = {"table": 0, "figure": 0}
    tables: dict[str, bytes] = {}
    by_id = {s.id: s for s in content.sections}
    for section_id in SECTIONS:
        section = by_id.get(section_id)
        if section is None:
            continue
        document.add_heading(section.title, level=1)
        blocks = chosen_blocks(section)
        for block in blocks:
            if isinstance(block, Table):
                one = _new_document(block.caption)
                _add_blocks(one, [block], {"table": counters["table"], "figure": 0})
                name = f"table_{counters['table'] + 1}_{_slug(block.caption)}.docx"
                tables[name] = _bytes(one)
            _add_blocks(document, [block], counters)
    return JournalFiles(document=_bytes(document), tables=tables)
