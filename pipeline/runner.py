"""The pipeline as a straight line: ingest → validate → derive → model → report.

This module is the orchestrator and the only place, with :mod:`pipeline.ingest` and
:mod:`pipeline.outputs`, that touches files. Every stage in between is a pure function.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import figures, outputs, provenance, responders, safety, summaries
from pipeline.config import Config
from pipeline.derive import INSTRUMENT_COLUMNS, analysis_dataset
from pipeline.ingest import RawTable, read_raw_tables, sha256_of
from pipeline.report import ReportContent, methods_text, render_html, slope_sentence
from pipeline.schemas import TABLES
from pipeline.trajectory import TIME_COLUMNS, fit_trajectory
from pipeline.validate import Validation, validate_study

REPORT_NAME = "outcomes.html"


@dataclass(frozen=True)
class RunResult:
    """What a run produced: the validation, the analysis data set and the files written."""

    validation: Validation
    analysis: pd.DataFrame
    written: tuple[Path, ...]


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


def run(config: Config, project_root: Path | None = None) -> RunResult:
    """Run the whole pipeline and write the processed data, tidy tables and HTML report.

    Parameters
    ----------
    config : Config
        The loaded configuration.
    project_root : Path, optional
        Folder whose git commit is recorded (default: the configuration file's folder).

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

    result = fit_trajectory(
        data, outcome="nrs", response="nrs", group="depth", settings=config.model
    )
    by_visit = summaries.mean_by_visit(data, "nrs", "depth")
    sessions = validation.valid("sessions")
    ae_rates = safety.adverse_event_rates(sessions, "depth")
    ae_ratio = safety.rate_ratio(sessions, "depth")
    responder_table = pd.concat(
        [
            responders.responders_at_last_visit(data, column, "depth").assign(outcome=instrument)
            for instrument, column in INSTRUMENT_COLUMNS.items()
        ],
        ignore_index=True,
    )
    reasons = summaries.quarantine_reasons(validation.failures)
    tables_dir = config.outputs.tables
    variance = result.fit.variance_components.assign(
        analysis=result.analysis, outcome=result.outcome
    )
    for name, frame in {
        "fixed_effects": result.fixed_effects,
        "variance_components": variance,
        "diagnostics": result.diagnostics,
        "row_accounting": validation.accounting,
        "quarantine_reasons": reasons,
        "nrs_by_visit_depth": by_visit,
        "adverse_event_rates": ae_rates,
        "adverse_event_rate_ratio": ae_ratio,
        "responders": responder_table,
    }.items():
        written.append(outputs.write_csv(tables_dir / f"{name}.csv", frame))

    files = {name: (t.path, t.sha256) for name, t in raw.items()}
    files["configuration"] = (config.source, sha256_of(config.source))
    versions = provenance.package_versions()
    time_axis = config.model.time_axis
    time_col = TIME_COLUMNS[time_axis]
    interaction = f"{time_col}:depth[T.deep]"
    headline = slope_sentence(
        result.fixed_effects,
        time_label="week" if time_axis == "weeks" else "session",
        outcome_label="NRS pain",
        group_term=interaction,
        contrast_label="deep than superficial needling",
    )
    diagnostics = result.diagnostics.iloc[0]
    content = ReportContent(
        title="Dry needling for low back pain: outcome report",
        run_date=provenance.run_date(),
        config_file=config.source.name,
        inputs=provenance.input_files(files),
        versions=versions,
        git_commit=provenance.git_commit(project_root or config.source.resolve().parent),
        accounting=validation.accounting,
        quarantine_reasons=reasons,
        trajectory_summary=by_visit,
        trajectory_figure=figures.mean_trajectories(
            by_visit, outcome_label="NRS pain (0–10)", group_label="Needling depth"
        ),
        fixed_effects=result.fixed_effects[
            ["term", "estimate", "std_err", "df", "ci_low", "ci_high", "p_value"]
        ],
        variance_components=result.fit.variance_components,
        diagnostics=result.diagnostics,
        formula=result.formula,
        settings={
            "mcid_nrs": f"{config.mcid['nrs'].points:g} points or "
            f"{config.mcid['nrs'].percent:g} % of baseline",
            "interaction_term": interaction,
            "methods": methods_text(
                formula=result.formula,
                time_axis=time_axis,
                df_method=config.model.df_method,
                covariates=config.model.covariates,
                random_effects=diagnostics["random_effects"],
                versions=versions,
            ),
        },
        headline=headline,
        adverse_event_rates=ae_rates,
        adverse_event_rate_ratio=ae_ratio,
        responders=responder_table,
    )
    report = config.outputs.reports / REPORT_NAME
    written.append(outputs.write_text(report, render_html(content)))
    return RunResult(validation=validation, analysis=data, written=tuple(written))
