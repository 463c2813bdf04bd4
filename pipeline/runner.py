"""The pipeline as a straight line: ingest → validate → derive → model → report.

This module is the orchestrator and the only place, with :mod:`pipeline.ingest` and
:mod:`pipeline.outputs`, that touches files. Every stage in between is a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import outputs, responders, safety, summaries
from pipeline.config import Config
from pipeline.derive import analysis_dataset
from pipeline.errors import UserError
from pipeline.ingest import RawTable, read_raw_tables
from pipeline.plan import FACTORS, Progress, analysis_plans, combine, run_analyses
from pipeline.report import render_html
from pipeline.report_content import build_content
from pipeline.schemas import TABLES
from pipeline.validate import Validation, validate_study

REPORT_NAME = "outcomes.html"
PRIMARY_FOR_REPORT = ("trajectory_depth", "nrs")


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    The validation, the analysis data set, the files written and the analyses the data could
    not support (``"<analysis> (<outcome>): <reason>"``).
    """

    validation: Validation
    analysis: pd.DataFrame
    written: tuple[Path, ...]
    not_estimable: tuple[str, ...] = ()


def validate_inputs(config: Config) -> tuple[dict[str, RawTable], Validation, list[Path]]:
    """Read and validate the raw tables; write the processed tables and the quarantine.

    Returns
    -------
    raw : dict of str to RawTable
        The raw tables as read.
    validation : Validation
        Valid rows, quarantined rows and the row accounting.
    written : list of Path
        Files written: ``<processed>/<table>.parquet``, ``<processed>/quarantine/<table>.csv``
        (written even when empty, so no stale file survives) and
        ``<processed>/row_accounting.csv``.
    """
    raw = read_raw_tables(config.inputs.as_dict())
    validation = validate_study(raw)
    out = config.outputs
    written = []
    for name in TABLES:
        table = validation.tables[name]
        written.append(outputs.write_parquet(out.processed / f"{name}.parquet", table.valid))
        written.append(outputs.write_csv(out.quarantine / f"{name}.csv", table.quarantine))
    written.append(outputs.write_csv(out.processed / "row_accounting.csv", validation.accounting))
    return raw, validation, written


def run(
    config: Config, project_root: Path | None = None, progress: Progress | None = None
) -> RunResult:
    """Run the whole pipeline and write the processed data, tidy tables and HTML report.

    Parameters
    ----------
    config : Config
        The loaded configuration.
    project_root : Path, optional
        Folder whose git commit is recorded (default: the configuration file's folder).
    progress : callable, optional
        Called as ``progress(i, n, plan)`` before each of the ``n`` models is fitted.

    Returns
    -------
    RunResult
        The validation, the analysis data set and every file written.
    """
    raw, validation, written = validate_inputs(config)
    data = analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    written.append(outputs.write_parquet(config.outputs.processed / "analysis.parquet", data))

    results = run_analyses(
        analysis_plans(data, config.model), config.model.df_method, progress=progress
    )
    model_tables = combine(results)
    result = next(r for r in results if (r.analysis, r.outcome) == PRIMARY_FOR_REPORT)
    if result.fit is None:
        message = result.diagnostics["message"].iloc[0]
        raise UserError(
            f"the primary model ({result.formula}) cannot be fitted to these data: {message}"
        )
    skipped = tuple(
        f"{r.analysis} ({r.outcome}): {r.diagnostics['message'].iloc[0]}"
        for r in results
        if r.fit is None
    )
    by_visit = summaries.mean_by_visit(data, "nrs", "depth")
    sessions = validation.valid("sessions")
    ae_rates = safety.adverse_event_rates(sessions, "depth")
    ae_ratio = safety.rate_ratio(sessions, "depth")
    responder_table = pd.concat(
        [responders.responders_by_instrument(data, factor) for factor in FACTORS],
        ignore_index=True,
    )
    reasons = summaries.quarantine_reasons(validation.failures)
    tables_dir = config.outputs.tables
    tables = {
        **model_tables,
        "row_accounting": validation.accounting,
        "quarantine_reasons": reasons,
        "nrs_by_visit_depth": by_visit,
        "adverse_event_rates": ae_rates,
        "adverse_event_rate_ratio": ae_ratio,
        "responders": responder_table,
    }
    for name, frame in tables.items():
        written.append(outputs.write_csv(tables_dir / f"{name}.csv", frame))

    content = build_content(
        config,
        raw,
        validation,
        tables,
        trajectory=result,
        by_visit=by_visit,
        project_root=project_root or config.source.resolve().parent,
    )
    report = config.outputs.reports / REPORT_NAME
    written.append(outputs.write_text(report, render_html(content)))
    return RunResult(
        validation=validation, analysis=data, written=tuple(written), not_estimable=skipped
    )
