"""Validate and derive one partition with the pipeline's own rules; merge what partitions report.

A partition holds every row of its patients in every table (:mod:`pipeline.scale.partition`),
so :func:`pipeline.validate.study.validate_study` — the pandera models of
:mod:`pipeline.schemas.raw` and the cross-table rules, stated once — runs on it unchanged, and
:func:`pipeline.derive.dataset.analysis_dataset` derives its patients' analysis rows. Nothing is
restated for the scaled engines: the same functions run on smaller frames.

Each partition writes its valid tables and analysis rows (de-identified as the pandas path
writes them) to ``<processed>/<table>/part-<k>.parquet`` and returns a small
:class:`PartitionReport`: its row accounting, its quarantined rows, its failures per rule and
the levels its categorical columns hold. :func:`merge_reports` adds them up into the files the
pandas path writes, with the same meaning: the quarantine in the order of the file's lines, the
accounting summed per table, the per-file summary and reasons counted over every partition.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from pipeline import outputs
from pipeline.config.settings import Config
from pipeline.derive import dataset as derive
from pipeline.ingest.raw_tables import SOURCE_LINE, SOURCE_ROW, RawTable, SourceFile
from pipeline.ingest.readers import STR
from pipeline.privacy import pseudonyms
from pipeline.scale.partition import RawFile, partition_files
from pipeline.schemas.analysis import check_analysis
from pipeline.schemas.columns import outcome_column
from pipeline.schemas.raw import TABLES, column_names, free_text_columns
from pipeline.validate import quality
from pipeline.validate.study import rule_text, validate_study

ANALYSIS = "analysis"
ENCODING = "utf-8"  # the [inputs] form is read as UTF-8 (read_raw_table)


@dataclass(frozen=True)
class PartitionReport:
    """What one partition's validation and derivation report to the driver.

    Attributes
    ----------
    part : int
        Partition number.
    accounting : pandas.DataFrame
        ``table, raw_rows, processed_rows, quarantined_rows`` of the partition.
    quarantine : dict of str to pandas.DataFrame
        Quarantined rows per table, as the pandas path writes them.
    failures : pandas.DataFrame
        Validation failures (for the quarantine reasons table).
    reasons : pandas.DataFrame
        ``file, check, column, rows``: quarantined lines per rule (every rule, not only the
        most frequent).
    levels : dict of str to list
        Levels of every categorical column of the analysis rows.
    patients : int
        Patients with at least one analysis row.
    analysis_rows : int
        Rows of the analysis data set.
    blanked : pandas.DataFrame
        Score cells blanked in valid rows, located in their file
        (:func:`pipeline.validate.quality.blanked_cells`).
    """

    part: int
    accounting: pd.DataFrame
    quarantine: dict[str, pd.DataFrame]
    failures: pd.DataFrame
    reasons: pd.DataFrame
    levels: dict[str, list]
    patients: int
    analysis_rows: int
    blanked: pd.DataFrame


def read_partition_table(folder: Path, raw: RawFile, part: int) -> RawTable:
    """One table's rows of one partition as a :class:`RawTable` of text cells.

    Rows are in the order of their lines in the file, as the pandas reader gives them.
    """
    files = partition_files(folder, raw.table, part)
    columns = [SOURCE_ROW, *raw.header]
    if files:
        frame = pl.read_parquet(files).sort(SOURCE_ROW).to_pandas()
    else:
        frame = pd.DataFrame({c: [] for c in columns})
    frame = frame[columns]
    text = {c: frame[c].astype(STR) for c in raw.header}
    frame = pd.DataFrame({SOURCE_ROW: frame[SOURCE_ROW].astype("int64"), **text})
    source = SourceFile(
        label=raw.path.name,
        path=raw.path,
        sha256=raw.sha256,
        kind="canonical",
        source=0,
        rows=len(frame),
        blank_lines=0,
        encoding=ENCODING,
    )
    recorded = tuple(c for c in column_names(raw.table) if c in raw.header)
    return RawTable(
        name=raw.table,
        path=raw.path,
        sha256=raw.sha256,
        frame=frame,
        blank_lines=0,
        files=(source,),
        columns_by_file=((raw.path.name, recorded),),
    )


def _levels(frame: pd.DataFrame) -> dict[str, list]:
    """Levels of the categorical columns, and the sites (text) held by the rows."""
    levels = {
        c: list(frame[c].cat.categories)
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }
    levels["site"] = sorted(frame["site"].dropna().astype(str).unique())
    return levels


def process_partition(
    part: int, folder: Path, raw: Mapping[str, RawFile], config: Config
) -> PartitionReport:
    """Validate, de-identify and derive one partition; write its Parquet files.

    Files are written atomically (a task run twice, after a worker was lost, writes the same
    bytes again), so a partition is either absent or whole.

    Returns
    -------
    PartitionReport
        What the driver merges.
    """
    tables = {name: read_partition_table(folder, raw[name], part) for name in TABLES}
    validation = validate_study(tables, config.study.ranges())
    out = config.outputs.processed
    key = pseudonyms.load_key(config.privacy)
    origin = derive.time_zero(validation.valid("assessments"), validation.valid("sessions"))
    keep = config.privacy.keep_free_text
    for name in TABLES:
        valid = validation.tables[name].valid
        drop = [c for c in free_text_columns()[name] if c not in keep and c in valid]
        processed = pseudonyms.deidentify(valid.drop(columns=drop), key, origin)
        outputs.write_parquet(out / name / f"part-{part:05d}.parquet", processed, private=True)
    data = derive.analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    if len(data):
        check_analysis(data, [outcome_column(o.name) for o in config.study.outcomes])
    outputs.write_parquet(
        out / ANALYSIS / f"part-{part:05d}.parquet",
        pseudonyms.deidentify(data, key),
        private=True,
    )
    _, reasons = quality.file_summary(tables, validation, top=np.iinfo(np.int32).max)
    accounting = validation.accounting.drop(columns=["file", "blank_lines"])
    return PartitionReport(
        part=part,
        accounting=accounting,
        quarantine={n: validation.tables[n].quarantine for n in TABLES},
        failures=validation.failures,
        reasons=reasons[["file", "check", "column", "rows"]],
        levels=_levels(data),
        patients=int(data["patient_id"].nunique()) if len(data) else 0,
        analysis_rows=len(data),
        blanked=quality.blanked_cells(tables, validation),
    )


@dataclass(frozen=True)
class Merged:
    """The partitions' reports added up into the pandas path's tables."""

    accounting: pd.DataFrame
    quarantine: dict[str, pd.DataFrame]
    failures: pd.DataFrame
    summary: pd.DataFrame
    reasons: pd.DataFrame
    levels: dict[str, list]
    patients: int
    analysis_rows: int
    blanked: pd.DataFrame


def _quarantine(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Quarantined rows of every partition in the order of their lines (as read)."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0]
    merged = pd.concat(full, ignore_index=True)
    return merged.sort_values(SOURCE_ROW, kind="stable").reset_index(drop=True)


def merge_reports(reports: Sequence[PartitionReport], raw: Mapping[str, RawFile]) -> Merged:
    """Add up the partitions' reports (see the module docstring).

    Parameters
    ----------
    reports : sequence of PartitionReport
        One per partition.
    raw : mapping of str to RawFile
        What the partitioning read of each file.

    Returns
    -------
    Merged
        Row accounting, quarantine per table, failures, per-file summary and reasons.
    """
    reports = sorted(reports, key=lambda r: r.part)
    counts = pd.concat([r.accounting for r in reports]).groupby("table", sort=False).sum()
    accounting = pd.DataFrame(
        [
            {
                "table": name,
                "file": raw[name].path.name,
                "raw_rows": int(counts.loc[name, "raw_rows"]),
                "processed_rows": int(counts.loc[name, "processed_rows"]),
                "quarantined_rows": int(counts.loc[name, "quarantined_rows"]),
                "blank_lines": raw[name].blank_lines,
                "blanked_cells": int(counts.loc[name, "blanked_cells"]),
            }
            for name in TABLES
        ]
    )
    balance = accounting["raw_rows"] - accounting["processed_rows"] - accounting["quarantined_rows"]
    read = np.array([raw[name].rows for name in TABLES])
    if (balance != 0).any() or (accounting["raw_rows"].to_numpy() != read).any():
        raise RuntimeError(f"row accounting of the partitions does not balance:\n{accounting}")
    quarantine = {n: _quarantine([r.quarantine[n] for r in reports]) for n in TABLES}
    failures = pd.concat([r.failures for r in reports], ignore_index=True)
    failures = failures.sort_values(["table", SOURCE_ROW], kind="stable", key=_table_order)
    summary = pd.DataFrame(
        [
            {
                "file": raw[name].path.name,
                "kind": "canonical",
                "source": 0,
                "encoding": ENCODING,
                "rows_read": raw[name].rows,
                "rows_valid": int(accounting.loc[i, "processed_rows"]),
                "rows_quarantined": int(accounting.loc[i, "quarantined_rows"]),
                "rows_unused": 0,
                "cells_blanked": int(accounting.loc[i, "blanked_cells"]),
                "blank_lines": raw[name].blank_lines,
                "sha256": raw[name].sha256,
            }
            for i, name in enumerate(TABLES)
        ],
        columns=quality.SUMMARY_COLUMNS,
    )
    return Merged(
        accounting=accounting,
        quarantine=quarantine,
        failures=failures.reset_index(drop=True),
        summary=summary,
        reasons=_reasons([r.reasons for r in reports]),
        levels=_union_levels([r.levels for r in reports]),
        patients=sum(r.patients for r in reports),
        analysis_rows=sum(r.analysis_rows for r in reports),
        blanked=_blanked([r.blanked for r in reports]),
    )


def _blanked(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Blanked cells of every partition in the order of the tables and their lines."""
    full = [f for f in frames if len(f)]
    if not full:
        return frames[0]
    merged = pd.concat(full, ignore_index=True)
    order = merged.sort_values(["table", SOURCE_LINE], kind="stable", key=_table_order)
    return order.reset_index(drop=True)


def _table_order(column: pd.Series) -> pd.Series:
    if column.name == "table":
        return column.map({t: i for i, t in enumerate(TABLES)})
    return column


def _reasons(parts: Sequence[pd.DataFrame], top: int = 5) -> pd.DataFrame:
    """Quarantined lines per rule over every partition, the ``top`` most frequent per file.

    Ordered as :func:`pipeline.validate.quality.file_summary` orders them.
    """
    full = [p for p in parts if len(p)]
    if not full:
        return pd.DataFrame(columns=quality.REASON_COLUMNS)
    summed = (
        pd.concat(full, ignore_index=True)
        .groupby(["file", "check", "column"], sort=True)["rows"]
        .sum()
        .reset_index()
        .sort_values(["file", "rows", "check"], ascending=[True, False, True], kind="stable")
    )
    summed = summed.groupby("file", sort=False).head(top).reset_index(drop=True)
    summed["rule"] = [
        rule_text(c, col) for c, col in zip(summed["check"], summed["column"], strict=True)
    ]
    return summed[quality.REASON_COLUMNS]


def _union_levels(parts: Sequence[dict[str, list]]) -> dict[str, list]:
    out: dict[str, list] = {}
    for levels in parts:
        for column, values in levels.items():
            seen = out.setdefault(column, [])
            seen += [v for v in values if v not in seen]
    return out


def global_levels(found: Mapping[str, list], config: Config) -> dict[str, list]:
    """Order the levels found in the partitions as the in-memory derivation orders them.

    A comparison's groups: its reference, its declared levels, then the others sorted
    (:func:`pipeline.derive.dataset.comparison_groups`); a text covariate: its reference (or
    the first level in sorted order), then the others sorted. Levels declared by the
    derivation itself (depth, twitch, chronicity) keep their declared order.
    """
    study = config.study
    out = dict(found)
    union = {c: pd.Series(v, dtype="object") for c, v in found.items()}
    comparisons = [c for c in study.comparisons if c.name in union and not c.needs_sessions]
    if comparisons:
        frame = pd.DataFrame({c.column: union[c.name] for c in comparisons})
        for name, groups in derive.comparison_groups(frame, tuple(comparisons)).items():
            out[name] = list(groups.categories)
    for covariate in study.covariates.values():
        if covariate.kind != "number" and covariate.name in union:
            values = sorted(map(str, union[covariate.name]))
            reference = covariate.reference or (values[0] if values else "")
            out[covariate.name] = [reference, *[v for v in values if v != reference]]
    return out


def read_analysis(processed: Path, levels: Mapping[str, list]) -> pd.DataFrame:
    """Read the whole analysis data set from its partitions (small studies and tests only).

    Categorical columns get the study-wide levels; rows are sorted by patient and visit, as
    the pandas path sorts them.
    """
    files = sorted((processed / ANALYSIS).glob("part-*.parquet"))
    frames = [pd.read_parquet(f) for f in files]
    frames = [f for f in frames if len(f)] or frames[:1]
    for frame in frames:
        for column, values in levels.items():
            if column in frame and isinstance(frame[column].dtype, pd.CategoricalDtype):
                frame[column] = pd.Categorical(frame[column].astype("object"), categories=values)
    data = pd.concat(frames, ignore_index=True)
    return data.sort_values(["pseudonym", "visit"], kind="stable").reset_index(drop=True)
