"""The pipeline as a straight line: ingest → validate → derive → model → report.

This module is the orchestrator and the only place, with :mod:`pipeline.ingest.raw_tables` and
:mod:`pipeline.outputs`, that touches files. Every stage in between is a pure function.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.analyses.cache import FitCache
from pipeline.analyses.plans import AnalysisResult
from pipeline.analyses.run import (
    Progress,
    combine,
    headline,
    primary_visit,
    run_analyses,
    skipped_analyses,
    study_plans,
)
from pipeline.config.settings import Config, Study
from pipeline.derive import dataset as derive
from pipeline.describe import responders, safety, summaries
from pipeline.errors import UserError
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import RawTable
from pipeline.privacy import pseudonyms
from pipeline.privacy import suppression as privacy
from pipeline.report import pdf, provenance
from pipeline.report.content import build_content
from pipeline.report.html import render_html
from pipeline.schemas.analysis import check_analysis
from pipeline.schemas.columns import outcome_column
from pipeline.schemas.identity import AnalysisKind
from pipeline.schemas.outputs import check_output, for_publication
from pipeline.schemas.raw import TABLES
from pipeline.validate import quality
from pipeline.validate.study import Validation, validate_study

REPORT_NAME = "outcomes.html"
MODEL_CACHE = "model_cache"  # fits kept between runs, in the processed folder
PDF_NAME = "outcomes.pdf"


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    The validation, the analysis data set, the files written, the analyses the data could
    not support (``"<analysis> (<outcome>): <reason>"``) and, when the PDF report could not be
    printed, why (one sentence). ``not_supported`` names the analyses the design cannot
    support (no session log...) with the reason, as the report states them.
    """

    validation: Validation
    analysis: pd.DataFrame
    written: tuple[Path, ...]
    not_estimable: tuple[str, ...] = ()
    pdf_problem: str | None = None
    not_supported: tuple[str, ...] = ()


def validate_inputs(config: Config) -> tuple[dict[str, RawTable], Validation, list[Path]]:
    """Read and validate the raw tables; write the processed tables and the quarantine.

    Returns
    -------
    raw : dict of str to RawTable
        The raw tables as read.
    validation : Validation
        Valid rows, quarantined rows and the row accounting.
    written : list of Path
        Files written: ``<processed>/<table>.parquet`` (with a pseudonym instead of the
        patient id and days since the patient's time zero instead of dates, see
        :mod:`pipeline.privacy.pseudonyms`), ``<processed>/quarantine/<table>.csv`` (the raw rows as
        written, so that the source can be corrected; written even when empty, so no stale
        file survives), ``<processed>/row_accounting.csv`` and the per-source-file
        summary ``<processed>/quarantine/summary.csv`` and ``summary.json``
        (:mod:`pipeline.validate.quality`).
    """
    raw = read_sources(config.sources)
    validation = validate_study(raw, config.study.ranges())
    out = config.outputs
    key = pseudonyms.load_key(config.privacy)
    origin = derive.time_zero(validation.valid("assessments"), validation.valid("sessions"))
    written = []
    for name in TABLES:
        table = validation.tables[name]
        processed = pseudonyms.deidentify(table.valid, key, origin)
        written.append(outputs.write_parquet(out.processed / f"{name}.parquet", processed))
        written.append(outputs.write_csv(out.quarantine / f"{name}.csv", table.quarantine))
    written.append(outputs.write_csv(out.processed / "row_accounting.csv", validation.accounting))
    summary, reasons = quality.file_summary(raw, validation)
    written.append(outputs.write_csv(out.quarantine / "summary.csv", summary))
    written.append(
        outputs.write_json(out.quarantine / "summary.json", quality.summary_json(summary, reasons))
    )
    return raw, validation, written


def run(
    config: Config,
    project_root: Path | None = None,
    progress: Progress | None = None,
    refit: bool = False,
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
    refit : bool, default False
        Fit every model again. By default an analysis whose rows, specification and code are
        unchanged since the last run is read back from ``<processed>/model_cache``
        (:mod:`pipeline.analyses.cache`).

    Returns
    -------
    RunResult
        The validation, the analysis data set and every file written.
    """
    raw, validation, written = validate_inputs(config)
    data = derive.analysis_dataset(
        validation.valid("patients"),
        validation.valid("sessions"),
        validation.valid("assessments"),
        config,
    )
    check_analysis(data, [outcome_column(o.name) for o in config.study.outcomes])
    key = pseudonyms.load_key(config.privacy)
    written.append(
        outputs.write_parquet(
            config.outputs.processed / "analysis.parquet", pseudonyms.deidentify(data, key)
        )
    )

    study = config.study
    check_design(data, study)
    cache = FitCache(config.outputs.processed / MODEL_CACHE, read=not refit)
    results = run_analyses(
        study_plans(data, config.model, study),
        config.model.df_method,
        progress=progress,
        cache=cache,
    )
    visit = primary_visit(data, study)
    headlines = [headline(c) for c in study.comparisons]
    family = [
        (identity, visit if identity.kind is AnalysisKind.CHANGE else None)
        for identity in headlines
    ]
    model_tables = combine(results, family)
    primary_outcome = study.outcomes[0].name
    result = next(r for r in results if (r.identity, r.outcome) == (headlines[0], primary_outcome))
    if result.fit is None:
        message = result.diagnostics["message"].iloc[0]
        raise UserError(
            f"the primary model ({result.formula}) cannot be fitted to these data: {message}"
        )
    if visit is not None and headlines[0].kind is AnalysisKind.CHANGE:
        at = result.contrasts[pd.to_numeric(result.contrasts["visit"], errors="coerce") == visit]
        if at.empty:
            raise UserError(
                f"the primary outcome {primary_outcome} has no between-group difference at the "
                f"primary visit {visit}: no patient of both groups was assessed then; set [time] "
                f"primary_visit to a visit the data hold"
            )
    skipped = tuple(
        f"{r.analysis} ({r.outcome}): {r.diagnostics['message'].iloc[0]}"
        for r in results
        if r.fit is None
    )
    sessions = validation.valid("sessions")
    groups = [c.name for c in study.comparisons]
    outcome_names = [o.name for o in study.outcomes]
    responder_table = pd.concat(
        [responders.responders_by_instrument(data, g, outcome_names) for g in groups],
        ignore_index=True,
    )
    reasons = summaries.quarantine_reasons(validation.failures)
    tables = {
        **model_tables,
        "row_accounting": validation.accounting,
        "quarantine_reasons": reasons,
    }
    if study.sessions:
        tables["adverse_event_rates"] = safety.adverse_event_rates(sessions, "depth")
        tables["adverse_event_rate_ratio"] = safety.rate_ratio(sessions, "depth")
    tables["responders"] = responder_table
    not_supported = skipped_analyses(data, study)
    if not_supported:
        tables["skipped_analyses"] = pd.DataFrame(not_supported, columns=["analysis", "reason"])
    descriptive = summaries.descriptive_tables(
        validation, data, tables.get("diagnostics"), groups, study, headlines[0].name
    )
    report = render_report(
        config,
        raw,
        {**tables, **descriptive},
        results,
        analysis=data,
        key_source=key.source,
        project_root=project_root or config.source.resolve().parent,
    )
    written += write_report(config, report)
    return RunResult(
        validation=validation,
        analysis=data,
        written=tuple(written),
        not_estimable=skipped,
        pdf_problem=report.pdf_problem,
        not_supported=tuple(f"{name}: {reason}" for name, reason in not_supported),
    )


def check_design(data: pd.DataFrame, study: Study) -> None:
    """Stop with one sentence when the data cannot answer the declared design at all.

    Raises
    ------
    UserError
        No valid assessment; a declared comparison with fewer than two groups in the data;
        the first (primary) outcome never recorded; a trial's primary visit never assessed.
    """
    if data.empty:
        raise UserError("no valid assessment is left after validation; see the quarantine files")
    for comparison in study.comparisons:
        groups = data.drop_duplicates("patient_id")[comparison.name].dropna()
        present = sorted(map(str, groups.unique()))
        if len(present) < 2:
            levels = list(comparison.levels) or [comparison.reference]
            empty = [v for v in levels if v not in present] or ["a second group"]
            raise UserError(
                f"the comparison '{comparison.name}' ({comparison.label}) has no patient in "
                f"{empty[0]}: the data hold only {', '.join(present) or 'no group'}, so there "
                f"is nothing to compare"
            )
    primary = study.outcomes[0]
    column = outcome_column(primary.name)
    if data[column].notna().sum() == 0:
        raise UserError(
            f"the primary outcome {primary.name} ({primary.label}) is never recorded in the "
            f"valid assessments; map its column in [[sources]]"
        )
    visit = study.time.primary_visit
    if visit is not None and study.design == "trial":
        at = data.loc[(data["visit"] == visit) & data[column].notna()]
        if at.empty:
            raise UserError(
                f"the primary outcome {primary.name} is never recorded at the primary visit "
                f"{visit} ([time] primary_visit); the data hold visits "
                f"{', '.join(map(str, sorted(data['visit'].unique())))}"
            )


@dataclass(frozen=True)
class RenderedReport:
    """The published tables, the HTML and the PDF of one run, rendered but not yet written."""

    tables: dict[str, pd.DataFrame]
    html: str
    pdf: bytes | None
    pdf_problem: str | None


def render_report(
    config: Config,
    raw: dict[str, RawTable],
    tables: dict[str, pd.DataFrame],
    results: Sequence[AnalysisResult],
    *,
    analysis: pd.DataFrame,
    key_source: str,
    project_root: Path,
) -> RenderedReport:
    """Suppress small cells, build the report and print it to PDF, all in memory.

    Parameters
    ----------
    config : Config
        The configuration.
    raw : dict of str to RawTable
        The raw tables (provenance).
    tables : dict of str to pandas.DataFrame
        Every tidy table to publish, before suppression; each is checked against its contract
        (:mod:`pipeline.schemas.outputs`).
    results : sequence of AnalysisResult
        The fitted analyses (residuals and formulas for the report).
    analysis : pandas.DataFrame
        The analysis data set (for the individual-trajectory panel).
    key_source : str
        Where the pseudonym key came from.
    project_root : Path
        Folder whose git commit is recorded.

    Returns
    -------
    RenderedReport
        What :func:`write_report` writes; nothing is written here, so a failure leaves the
        previous report in place.
    """
    for name, frame in tables.items():
        check_output(name, frame)
    published = privacy.publish_tables(tables, config.privacy.small_cell_threshold)
    residuals = {
        (r.analysis, r.outcome): (r.fit.fitted, r.fit.residuals)
        for r in results
        if r.fit is not None
        and r.identity is not None
        and r.identity.kind is AnalysisKind.TRAJECTORY
        and r.identity.population is None
    }
    content = build_content(
        config,
        published,
        provenance.collect(config, raw, project_root, key_source),
        analysis=analysis,
        residuals=residuals,
        formulas={(r.analysis, r.outcome): r.formula for r in results if r.fit is not None},
    )
    html = render_html(content)
    document, problem = None, None
    target = config.outputs.reports / PDF_NAME
    if config.report.pdf:
        browser = pdf.find_browser(config.report.browser)
        if browser is None:
            problem = f"{target} was not written: no Chromium browser was found; {pdf.INSTALL_HINT}"
        else:
            try:
                document = pdf.print_pdf(html, browser)
            except pdf.PdfError as exc:
                problem = f"{target} was not written: {exc}"
    return RenderedReport(tables=published, html=html, pdf=document, pdf_problem=problem)


def write_report(config: Config, report: RenderedReport) -> list[Path]:
    """Write the published tables, the HTML and the PDF, each atomically.

    Tables of an earlier run that this run did not produce are removed, and so is an earlier
    PDF when no PDF was printed, so the files in ``reports/`` always come from one run.

    Returns
    -------
    list of Path
        The files written.
    """
    tables_dir = config.outputs.tables
    written = [
        outputs.write_csv(tables_dir / f"{name}.csv", privacy.for_csv(for_publication(name, frame)))
        for name, frame in report.tables.items()
    ]
    for stale in sorted(tables_dir.glob("*.csv")):
        if stale.stem not in report.tables:
            stale.unlink()
    reports = config.outputs.reports
    written.append(outputs.write_text(reports / REPORT_NAME, report.html))
    if report.pdf is not None:
        written.append(outputs.write_bytes(reports / PDF_NAME, report.pdf))
    else:
        (reports / PDF_NAME).unlink(missing_ok=True)
    return written
