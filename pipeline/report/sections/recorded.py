"""Which optional fields the sources recorded: the sentences and table the sections share.

A field no source recorded is *not recorded* wherever the report would summarise it; a field
some sources recorded is summarised over their patients. The facts come from the published
``recorded_fields`` table (:mod:`pipeline.ingest.recorded`), never from the wording of a note.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pandas as pd

from pipeline.ingest.recorded import NOT_RECORDED, PARTLY_RECORDED, field_status
from pipeline.report.html import Table
from pipeline.report.sections.common import present
from pipeline.schemas.raw import CONTRAINDICATIONS

TABLE_ONE_FIELDS = ("sex", *CONTRAINDICATIONS, "protocol_deviation", "vas_mm", "odi")
SAFETY_FIELDS = ("adverse_event", "ae_severity")
PER_PROTOCOL_FIELDS = (*CONTRAINDICATIONS, "protocol_deviation")


def status(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame | None:
    """Per table and optional column, whether the study recorded it (None without the table)."""
    if not present(tables, "recorded_fields"):
        return None
    return field_status(tables["recorded_fields"])


def _listed(columns: Iterable[str]) -> str:
    names = list(columns)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def gaps(tables: Mapping[str, pd.DataFrame], columns: Iterable[str]) -> tuple[list, list]:
    """Return ``(not recorded, partly recorded)`` among ``columns``.

    The partly recorded ones come as ``(column, files without it)``.
    """
    found = status(tables)
    if found is None:
        return [], []
    wanted = list(columns)
    found = found[found["column"].isin(wanted)].set_index("column")
    none = [c for c in wanted if c in found.index and found.loc[c, "status"] == NOT_RECORDED]
    some = [
        (c, found.loc[c, "not_recorded_by"])
        for c in wanted
        if c in found.index and found.loc[c, "status"] == PARTLY_RECORDED
    ]
    return none, some


def sentence(tables: Mapping[str, pd.DataFrame], columns: Iterable[str]) -> str:
    """Say which of ``columns`` no source recorded and which some sources did not.

    Returns
    -------
    str
        E.g. ``"Not recorded by any source (shown as not recorded, never as 0): pregnant.
        Recorded by some sources only, summarised over their patients: sex (not in
        south/patients.csv)."``; empty when every column was recorded.
    """
    none, some = gaps(tables, columns)
    out = []
    if none:
        out.append(
            f"Not recorded by any source (shown as not recorded, never as 0): {_listed(none)}."
        )
    if some:
        listed = _listed([f"{c} (not in {files})" if files else c for c, files in some])
        out.append(f"Recorded by some sources only, summarised over their patients: {listed}.")
    return " ".join(out)


def recorded_table(tables: Mapping[str, pd.DataFrame]) -> Table | None:
    """Tabulate the optional fields that some or all sources did not record, and where."""
    found = status(tables)
    if found is None:
        return None
    found = found[found["status"].isin([NOT_RECORDED, PARTLY_RECORDED])]
    if found.empty:
        return None
    rows = tuple(
        (
            r["table"],
            r["column"],
            r["status"],
            r["not_recorded_by"] or "(column present, every cell empty)",
        )
        for r in found.to_dict(orient="records")
    )
    return Table(
        header=("Table", "Field", "Status", "Not in the files"),
        rows=rows,
        numeric=(False, False, False, False),
        caption="Optional fields not recorded (by any source, or by some)",
        anchor="not-recorded",
    )
