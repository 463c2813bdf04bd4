"""Gather what the report shows from the tidy tables and fits of one run.

The runner computes the tables and writes them; this module only selects and words them for
:mod:`pipeline.report`. Nothing here is recomputed from the data.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline import figures, provenance
from pipeline.analyses import TIME_COLUMNS, AnalysisResult
from pipeline.config import Config
from pipeline.ingest import RawTable, sha256_of
from pipeline.report import ReportContent, methods_text, slope_sentence
from pipeline.validate import Validation


def build_content(
    config: Config,
    raw: dict[str, RawTable],
    validation: Validation,
    tables: dict[str, pd.DataFrame],
    *,
    trajectory: AnalysisResult,
    by_visit: pd.DataFrame,
    project_root: Path,
) -> ReportContent:
    """Assemble the report content of one run.

    Parameters
    ----------
    config : Config
        The run's configuration.
    raw : dict of str to RawTable
        Raw tables as read (file names and SHA-256 for provenance).
    validation : Validation
        The validation result.
    tables : dict of str to pandas.DataFrame
        The tidy tables written to ``reports/tables`` (by file stem).
    trajectory : AnalysisResult
        The primary trajectory fit.
    by_visit : pandas.DataFrame
        Mean outcome by visit and group.
    project_root : Path
        Folder whose git commit is recorded.

    Returns
    -------
    ReportContent
        Everything the template lays out.
    """
    files = {name: (t.path, t.sha256) for name, t in raw.items()}
    files["configuration"] = (config.source, sha256_of(config.source))
    versions = provenance.package_versions()
    time_axis = config.model.time_axis
    time_col = TIME_COLUMNS[time_axis]
    interaction = f"{time_col}:depth[T.deep]"
    headline = slope_sentence(
        trajectory.fixed_effects,
        time_label="week" if time_axis == "weeks" else "session",
        outcome_label="NRS pain",
        group_term=interaction,
        contrast_label="deep than superficial needling",
    )
    diagnostics = trajectory.diagnostics.iloc[0]
    return ReportContent(
        title="Dry needling for low back pain: outcome report",
        run_date=provenance.run_date(),
        config_file=config.source.name,
        inputs=provenance.input_files(files),
        versions=versions,
        git_commit=provenance.git_commit(project_root),
        accounting=tables["row_accounting"],
        quarantine_reasons=tables["quarantine_reasons"],
        trajectory_summary=by_visit,
        trajectory_figure=figures.mean_trajectories(
            by_visit, outcome_label="NRS pain (0–10)", group_label="Needling depth"
        ),
        fixed_effects=trajectory.fixed_effects[
            ["term", "estimate", "std_err", "df", "ci_low", "ci_high", "p_value"]
        ],
        variance_components=trajectory.fit.variance_components,
        diagnostics=trajectory.diagnostics,
        formula=trajectory.formula,
        settings={
            "mcid_nrs": f"{config.mcid['nrs'].points:g} points or "
            f"{config.mcid['nrs'].percent:g} % of baseline",
            "interaction_term": interaction,
            "methods": methods_text(
                formula=trajectory.formula,
                time_axis=time_axis,
                df_method=config.model.df_method,
                covariates=config.model.covariates,
                random_effects=diagnostics["random_effects"],
                versions=versions,
            ),
        },
        headline=headline,
        adverse_event_rates=tables["adverse_event_rates"],
        adverse_event_rate_ratio=tables["adverse_event_rate_ratio"],
        responders=tables["responders"],
    )
