"""Responders: patients reaching the MCID at their last assessment, by group."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.config.settings import Config
from pipeline.derive.dataset import INSTRUMENT_COLUMNS
from pipeline.report.html import (
    MISSING,
    Paragraph,
    Section,
    Table,
    fmt,
    fmt_ci,
    fmt_p,
    table,
)
from pipeline.report.sections import recorded
from pipeline.report.sections.common import OUTCOME_COLUMN, SHORT, UNITS, number, present

PERCENT = ("proportion", "risk difference")
"""Quantities shown in per cent (a risk difference in percentage points)."""


def responders_section(
    tables: Mapping[str, pd.DataFrame], config: Config, note: str
) -> Section | None:
    """Responders at the last assessment, with the MCID of each instrument (SAP §2)."""
    if not present(tables, "responders"):
        return None
    resp = tables["responders"]
    none, _ = recorded.gaps(tables, INSTRUMENT_COLUMNS.values())
    gone = [name for name, column in INSTRUMENT_COLUMNS.items() if column in none]
    resp = resp[~resp["outcome"].isin(gone)]
    unrecorded = (
        f" {' and '.join(SHORT.get(g, g) for g in gone)} "
        f"{'was' if len(gone) == 1 else 'were'} not recorded by any source, so no responders "
        "are reported for "
        f"{'it' if len(gone) == 1 else 'them'}."
        if gone
        else ""
    )
    mcid = "; ".join(
        f"{name.upper()} ≥ {r.points:g} {UNITS[name]} or ≥ {r.percent:g} %"
        for name, r in config.mcid.items()
    )
    return Section(
        "responders",
        "Responders",
        (
            Paragraph(
                "A responder improved from baseline by at least the MCID at their last "
                f"post-baseline assessment ({mcid}); patients without one are not counted."
                + unrecorded
            ),
            responder_table(resp, OUTCOME_COLUMN, note),
        ),
    )


def responder_table(resp: pd.DataFrame, outcome_column: tuple, note: str) -> Table:
    """Lay out the published responders table (one row per outcome, grouping and quantity).

    ``outcome_column`` is the ``(header, key, formatter)`` of the outcome's name.
    """

    def level(r: Mapping) -> str:
        if r["quantity"] == "proportion":
            return r["level"]
        return f"{r['level']} vs {r['reference']}"

    def scaled(r: Mapping, key: str) -> Any:
        """Return a proportion or risk difference in per cent, an odds ratio as it is."""
        value = r[key]
        if r["quantity"] in PERCENT and not math.isnan(number(value)):
            return 100 * float(value)
        return value

    def unit(r: Mapping) -> str:
        return {"proportion": " %", "risk difference": " %-points"}.get(r["quantity"], "")

    def estimate(r: Mapping) -> str:
        text = fmt(scaled(r, "estimate"), 1 if r["quantity"] in PERCENT else 2)
        shown = text != MISSING and not isinstance(r["estimate"], str)
        return text + unit(r) if shown else text

    def interval(r: Mapping) -> str:
        digits = 1 if r["quantity"] in PERCENT else 2
        return fmt_ci(scaled(r, "ci_low"), scaled(r, "ci_high"), digits)

    return table(
        resp,
        [
            outcome_column,
            ("Grouping", "group", None),
            ("Quantity", "quantity", None),
            ("Level", "level", level),
            ("Patients", "#n", None),
            ("Responders", "#responders", None),
            ("Estimate", "#estimate", estimate),
            ("95 % CI", "#ci", interval),
            ("p", "#p", lambda r: fmt_p(r["p_value"])),
            ("Method", "method", None),
        ],
        caption="Responders at the last assessment",
        note=note,
    )
