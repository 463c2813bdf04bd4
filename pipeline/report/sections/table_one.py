"""Table 1: baseline characteristics by group, with standardised differences."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from pipeline.describe.table_one import Summary
from pipeline.report.html import (
    Block,
    Paragraph,
    Section,
    Table,
    fmt,
)
from pipeline.report.sections.common import FACTOR_LABELS, number, present


def _pct(row: Mapping[str, Any]) -> str:
    n, percent = row["n"], row["percent"]
    if isinstance(n, str):
        return n
    return f"{fmt(n)} ({fmt(percent, 1)} %)" if not isinstance(percent, str) else f"{n} ({percent})"


def _table_one_block(one: pd.DataFrame, diffs: pd.DataFrame, factor: str) -> Table:
    part = one[one["factor"] == factor]
    levels = list(dict.fromkeys(part["level"]))
    sizes = part[part["kind"] == "patients"].set_index("level")["n"]
    header = ("Characteristic", *(f"{lv} (n = {fmt(sizes[lv])})" for lv in levels), "Std. diff.")
    diff = diffs[diffs["factor"] == factor].set_index("variable")["std_diff"]
    rows, groups = [], set()
    for variable in dict.fromkeys(part.loc[part["kind"] != "patients", "variable"]):
        block = part[part["variable"] == variable]
        first = block.iloc[0]
        d = diff.get(variable, math.nan)
        d_text = d if isinstance(d, str) else fmt(number(d), 2)
        if first["kind"] == "continuous":
            cells = []
            for lv in levels:
                r = block[block["level"] == lv].iloc[0]
                if first["summary"] == Summary.MEDIAN_IQR:
                    text = f"{fmt(r['median'], 1)} ({fmt(r['q1'], 1)}–{fmt(r['q3'], 1)})"
                else:
                    text = f"{fmt(r['mean'], 1)} ({fmt(r['sd'], 1)})"
                if isinstance(r["n"], str) or r["n"] != sizes[lv]:
                    text += f"; n = {fmt(r['n'])}"
                cells.append(text)
            rows.append((f"{first['label']}, {first['statistic']}", *cells, d_text))
        elif first["kind"] == "binary":
            cells = [_pct(block[block["level"] == lv].iloc[0]) for lv in levels]
            rows.append((f"{first['label']}, n (%)", *cells, d_text))
        else:
            groups.add(len(rows))
            rows.append((f"{first['label']}, n (%)", *([""] * len(levels)), d_text))
            for category in dict.fromkeys(block["category"]):
                cells = [
                    _pct(block[(block["category"] == category) & (block["level"] == lv)].iloc[0])
                    for lv in levels
                ]
                rows.append((f"  {category}", *cells, ""))
    return Table(
        header=header,
        rows=tuple(rows),
        numeric=(False, *([True] * (len(levels) + 1))),
        caption=f"Baseline characteristics by {FACTOR_LABELS.get(factor, factor).lower()}",
        group_rows=frozenset(groups),
        anchor=f"table-one-{factor}",
    )


def table_one_section(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    """Baseline characteristics by each grouping, with standardised differences."""
    if not present(tables, "table_one", "table_one_std_diff"):
        return None
    one, diffs = tables["table_one"], tables["table_one_std_diff"]
    blocks: list[Block] = [
        _table_one_block(one, diffs, factor) for factor in dict.fromkeys(one["factor"])
    ]
    blocks.append(
        Paragraph(
            "Patients with at least one valid assessment. Standardised difference: second group "
            "minus the first, in pooled standard deviations (Yang & Dalton 2012; categorical "
            "variables: multinomial, always positive); an absolute value above 0.1 is commonly "
            "read as imbalance. Continuous variables: mean (SD) or median (quartiles); "
            "'n = ' when some values are missing. " + note,
            "note",
        )
    )
    return Section("table-one", "Table 1: baseline characteristics", tuple(blocks))
