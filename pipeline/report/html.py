"""The HTML outcome report: a view of tables and figures the pipeline already produced.

:mod:`pipeline.report.content` words and formats the run's tidy tables into sections of
paragraphs, tables and figures (:class:`ReportContent`); this module lays them out with the
template ``templates/outcomes.html.j2``. Figures are embedded as base64 PNG, so the report is one
self-contained file that prints on A4 pages (print CSS in the template). No patient identifier
or calendar date appears in it.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jinja2
import pandas as pd

from pipeline.figures.panels import house_style

if TYPE_CHECKING:
    import matplotlib.figure

MISSING = "–"
DPI = 300
"""Resolution of the report's figures (dots per inch of the printed page): 300, print quality
(issue 16); the demo report grows from 1.9 to 4.2 MB of HTML and takes about 5 s more CPU."""


@dataclass(frozen=True)
class Paragraph:
    """A paragraph; ``style`` is ``""``, ``"headline"`` (a key result) or ``"note"``."""

    text: str
    style: str = ""
    kind: str = field(default="paragraph", init=False)


@dataclass(frozen=True)
class Heading:
    """A sub-heading inside a section."""

    text: str
    anchor: str = ""
    kind: str = field(default="heading", init=False)


@dataclass(frozen=True)
class Table:
    """A formatted table: every cell is already text.

    Attributes
    ----------
    header : tuple of str
        Column titles.
    rows : tuple of tuple of str
        Cells, row by row.
    numeric : tuple of bool
        Right-align the column (numbers).
    caption : str
        Title shown above the table.
    note : str
        Small print below the table.
    group_rows : frozenset of int
        Rows drawn as sub-headings of the rows that follow.
    anchor : str
        HTML id of the table.
    style : str
        ``""``, or ``"verdicts"`` / ``"supporting"`` for the answer page's compact rows (never
        sortable; a verdict row keeps each number on one line).
    """

    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    caption: str = ""
    note: str = ""
    group_rows: frozenset[int] = frozenset()
    anchor: str = ""
    style: str = ""
    kind: str = field(default="table", init=False)


@dataclass(frozen=True)
class Figure:
    """A PNG figure with its alternative text and caption."""

    png: bytes
    alt: str
    caption: str
    anchor: str = ""
    kind: str = field(default="figure", init=False)

    @property
    def data_uri(self) -> str:
        """The PNG as a ``data:`` URI."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


Block = Paragraph | Heading | Table | Figure


def png(figure: matplotlib.figure.Figure) -> bytes:
    """Encode a figure as the report's PNG: the same figure gives the same bytes.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        A figure of :mod:`pipeline.report.figures`.

    Returns
    -------
    bytes
        PNG at :data:`DPI`, trimmed to the drawn area, without timestamp or software tag.
    """
    buffer = io.BytesIO()
    with house_style():
        figure.savefig(
            buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None}
        )
    return buffer.getvalue()


@dataclass(frozen=True)
class Section:
    """A numbered section of the report (``id`` is its HTML anchor)."""

    id: str
    title: str
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class ReportContent:
    """Everything the report shows, in reading order.

    Attributes
    ----------
    title : str
        Report title.
    run_date : str
        Date the report was produced (``SOURCE_DATE_EPOCH`` when set).
    intro : str
        The line under the title (what the report is made from, what it never shows).
    sections : tuple of Section
        The sections; a section whose tables the run did not produce is absent, not empty.
    """

    title: str
    run_date: str
    intro: str
    sections: tuple[Section, ...]


def fmt(value: Any, digits: int = 2) -> str:
    """Format a cell: fixed decimals, an en dash for missing, ∞, suppression markers as is."""
    if value is None or value is pd.NA:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return MISSING
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        return f"{value:,.{digits}f}".replace("-", "−")
    if hasattr(value, "item"):  # numpy scalar
        return fmt(value.item(), digits)
    return str(value)


def sig(value: Any, digits: int = 4) -> str:
    """Format a number to ``digits`` significant digits (for variances of any scale)."""
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{float(value):.{digits}g}".replace("-", "−")


def fmt_p(p: Any) -> str:
    """Format a p-value: three decimals, or ``< 0.001``; markers and text as is."""
    if isinstance(p, str):
        return p
    if p is None or p is pd.NA or (isinstance(p, float) and math.isnan(p)):
        return MISSING
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(low: Any, high: Any, digits: int = 2) -> str:
    """Format a confidence interval as ``low to high`` (a marker when either is withheld)."""
    if isinstance(low, str) or isinstance(high, str):
        return low if isinstance(low, str) else high
    a, b = fmt(low, digits), fmt(high, digits)
    return MISSING if MISSING in (a, b) else f"{a} to {b}"


def table(
    frame: pd.DataFrame,
    columns: Sequence[tuple[str, str, Any]],
    **options: Any,
) -> Table:
    """Build a :class:`Table` from a tidy frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        The rows to show, in order.
    columns : sequence of (title, column, formatter)
        ``formatter`` is a function of the row (a dict) returning the cell text, or None to
        show ``fmt(row[column])``; a column name starting with ``#`` is right-aligned (numbers).
    **options
        ``caption``, ``note``, ``anchor``, ``group_rows`` and ``numeric`` (overrides).

    Returns
    -------
    Table
        The formatted table.
    """
    rows = []
    for record in frame.to_dict(orient="records"):
        cells = []
        for _, column, formatter in columns:
            cells.append(formatter(record) if formatter else fmt(record.get(column.lstrip("#"))))
        rows.append(tuple(cells))
    numeric = options.pop("numeric", None) or tuple(c.startswith("#") for _, c, _ in columns)
    return Table(
        header=tuple(title for title, _, _ in columns),
        rows=tuple(rows),
        numeric=tuple(numeric),
        **options,
    )


def render_html(content: ReportContent, run_id: str | None = None) -> str:
    """Render the report to one self-contained HTML string.

    Parameters
    ----------
    content : ReportContent
        What the report shows.
    run_id : str, optional
        Identifier of the output set, shown under the title (the tables and the PDF carry it
        in ``manifest.json``, :class:`pipeline.outputs.OutputSet`).
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipeline.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("outcomes.html.j2").render(c=content, run_id=run_id)
