"""`outcomes preview`: the first mapped rows of each canonical table, and the per-file counts.

A pure read path: the sources are read and validated exactly as `outcomes validate` does
(:func:`pipeline.ingest.combine.read_sources`, :func:`pipeline.validate.study.validate_study`,
:func:`pipeline.validate.quality.file_summary`), and nothing is written: no processed tables, no
quarantine, no report.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from pipeline.config.settings import Config
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import SOURCE_ROW
from pipeline.schemas.raw import TABLES
from pipeline.validate import quality
from pipeline.validate.study import validate_study


@dataclass(frozen=True)
class Preview:
    """What `preview` shows.

    Attributes
    ----------
    heads : dict of str to pandas.DataFrame
        Per canonical table, its first valid rows (typed, as the pipeline reads them).
    rows : dict of str to tuple of (int, int)
        Per table, valid and quarantined rows.
    summary, reasons : pandas.DataFrame
        The per-file counts and reasons (:func:`pipeline.validate.quality.file_summary`).
    """

    heads: dict[str, pd.DataFrame]
    rows: dict[str, tuple[int, int]]
    summary: pd.DataFrame
    reasons: pd.DataFrame


def preview(config: Config, rows: int = 5) -> Preview:
    """Read and validate the configured sources in memory; keep the first ``rows`` per table."""
    raw = read_sources(config.sources)
    validation = validate_study(raw, config.study.ranges())
    summary, reasons = quality.file_summary(raw, validation)
    heads, counts = {}, {}
    for table in TABLES:
        valid = validation.valid(table)
        counts[table] = (len(valid), len(validation.tables[table].quarantine))
        head = valid.drop(columns=[SOURCE_ROW], errors="ignore").head(rows)
        heads[table] = head.loc[:, head.notna().any(axis=0)] if len(head) else head
    return Preview(heads, counts, summary, reasons)


def preview_lines(shown: Preview) -> list[str]:
    """Write a preview as printed by `outcomes preview`."""
    out = []
    for table, head in shown.heads.items():
        valid, quarantined = shown.rows[table]
        out.append(
            f"{table}: {valid} row(s) kept, {quarantined} quarantined; the first {len(head)}:"
        )
        if head.empty:
            out.append("  (no rows)")
        else:
            shown_head = head.copy()
            for column in shown_head.columns:
                cells = shown_head[column]
                if pd.api.types.is_datetime64_any_dtype(cells):
                    shown_head[column] = cells.dt.strftime("%Y-%m-%d")
                elif pd.api.types.is_bool_dtype(cells):
                    shown_head[column] = cells.map({True: "yes", False: "no"})
            text = shown_head.astype(object).where(shown_head.notna(), "").to_string(index=False)
            out += ["  " + line for line in text.splitlines()]
        out.append("")
    width = max([len(f) for f in shown.summary["file"]] + [4])
    out.append("Source files (rows read = kept + quarantined + not used):")
    for row in shown.summary.itertuples(index=False):
        line = (
            f"  {row.file:<{width}} {row.rows_read:>7} read = {row.rows_valid:>7} kept "
            f"+ {row.rows_quarantined:>5} quarantined"
        )
        if row.rows_unused:
            line += f" + {row.rows_unused} not used"
        out.append(line)
        mine = shown.reasons[shown.reasons["file"] == row.file].head(3)
        for reason in mine.itertuples(index=False):
            out.append(f"  {'':<{width}} {reason.rows:>7} x {reason.rule}")
    out.append("Nothing was written; `outcomes validate` writes the tables and the quarantine.")
    return out
