"""Data: the flow of patients, the row accounting, the reasons for quarantine and dropout."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from pipeline.report import figures as report_figures
from pipeline.report.html import (
    Block,
    Figure,
    Paragraph,
    Section,
    Table,
    fmt,
    png,
    table,
)
from pipeline.report.sections import recorded
from pipeline.report.sections.common import present
from pipeline.schemas.identity import (
    FlowStage,
)


def _observed_by_visit(means: pd.DataFrame) -> Table:
    """Patients with a value of the first outcome at each visit, by group: the dropout pattern."""
    first = "nrs" if (means["outcome"] == "nrs").any() else str(means["outcome"].iloc[0])
    nrs = means[means["outcome"] == first]
    columns = [(f, g) for f, g in dict.fromkeys(zip(nrs["factor"], nrs["group"], strict=True))]
    rows = []
    for visit in sorted(nrs["visit"].unique()):
        cells = ["baseline" if visit == 0 else f"visit {visit}"]
        for factor, group in columns:
            hit = nrs[(nrs["visit"] == visit) & (nrs["factor"] == factor) & (nrs["group"] == group)]
            cells.append(fmt(hit["n"].iloc[0]) if len(hit) else "0")
        rows.append(tuple(cells))
    return Table(
        header=("Visit", *(f"{g} ({f})" for f, g in columns)),
        rows=tuple(rows),
        numeric=(False, *([True] * len(columns))),
        caption=f"Patients with an {first.upper()} assessment at each visit, by group "
        "(dropout pattern)",
        note="Missing visits are analysed under missing at random: the mixed models use every "
        "available assessment.",
    )


def data_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Flow of patients, row accounting, reasons for quarantine and the dropout pattern."""
    if not present(tables, "row_accounting"):
        return None
    blocks: list[Block] = []
    if present(tables, "flow"):
        flow = tables["flow"]
        counts = dict(zip(flow["stage"], flow["patients"], strict=True))
        blocks.append(
            Figure(
                png(report_figures.flow_diagram(flow)),
                alt=(
                    f"Flow diagram: {counts.get(FlowStage.ENROLLED)} patients enrolled, "
                    f"{counts.get(FlowStage.EXCLUDED)} excluded, "
                    + (
                        f"{counts[FlowStage.TREATED]} treated, "
                        if FlowStage.TREATED in counts  # a study without a session log has none
                        else ""
                    )
                    + ", ".join(
                        f"{label.lower()} {patients}"
                        for stage, label, patients in zip(
                            flow["stage"], flow["label"], flow["patients"], strict=True
                        )
                        if stage in (FlowStage.ASSESSED, FlowStage.ANALYSED)
                    )
                ),
                caption="Flow of patients. Excluded patients are those whose record broke the data "
                "contract (a record can break several rules).",
                anchor="flow",
            )
        )
    blocks.append(
        table(
            tables["row_accounting"],
            [
                ("Table", "table", None),
                ("File", "file", None),
                ("Rows read", "#raw_rows", None),
                ("Valid", "#processed_rows", None),
                ("Quarantined", "#quarantined_rows", None),
                ("Blank lines skipped", "#blank_lines", None),
                *(
                    [("Score cells blanked", "#blanked_cells", None)]
                    if "blanked_cells" in tables["row_accounting"]
                    else []
                ),
            ],
            caption="Row accounting: rows read = valid + quarantined",
            note="Every raw row is analysed or quarantined with its reason; nothing is dropped "
            "silently. Quarantined rows are kept, as written, in data/processed/quarantine/ for "
            "the data manager. A score cell that could not be read or lay outside its range was "
            "blanked and the rest of its assessment kept when another score of it was readable; "
            "each such cell is listed in data/processed/quarantine/blanked_cells.csv.",
        )
    )
    reasons = tables.get("quarantine_reasons")
    if reasons is not None and not reasons.empty:
        blocks.append(
            table(
                reasons,
                [("Table", "table", None), ("Rule broken", "rule", None), ("Rows", "#rows", None)],
                caption="Most frequent reasons for quarantine (a row can break several rules)",
            )
        )
    elif reasons is not None:
        blocks.append(Paragraph("No row was quarantined."))
    if present(tables, "mean_by_visit"):
        blocks.append(_observed_by_visit(tables["mean_by_visit"]))
    unrecorded = recorded.recorded_table(tables)
    if unrecorded is not None:
        blocks.append(unrecorded)
    return Section("data", "Data", tuple(blocks))
