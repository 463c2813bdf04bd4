"""The pipeline as a straight line: ingest → validate → derive → model → report.

This module is the orchestrator and the only place, with :mod:`pipeline.ingest.raw_tables`,
:mod:`pipeline.processed` (the processed tables and the quarantine, which ``outcomes
validate`` also writes alone) and :mod:`pipeline.outputs`, that touches files. Every stage in
between is a pure function.

A run holds a lock on the processed folder and on the reports folder (:func:`outputs.folder_lock`),
so a second run on the same folders stops with one sentence. Processed data and the quarantine are
written private (0600, or stricter by the umask) and without free-text columns unless
``[privacy] keep_free_text`` names them. The reports folder is written all or nothing
(:class:`outputs.OutputSet`): tables, HTML, PDF and ``manifest.json`` share one run id.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.analyses.alongside import Alongside
from pipeline.analyses.cache import FitCache, cache_key
from pipeline.analyses.headline import answer_table
from pipeline.analyses.missing_data import (
    MissingDataResult,
    missing_data_analysis,
    portable_missing_data_analysis,
)
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
from pipeline.config.settings import Config
from pipeline.config.study import Study
from pipeline.derive import dataset as derive
from pipeline.derive.adverse_events import event_record
from pipeline.describe import clinic, responders, safety, summaries
from pipeline.errors import UserError
from pipeline.ingest.raw_tables import RawTable
from pipeline.lmm.blas import single_threaded
from pipeline.lmm.data import ModelDataError
from pipeline.lmm.optim import ModelFitError
from pipeline.planning import report as planning_report
from pipeline.planning.answers import plan_study
from pipeline.planning.from_study import assumptions_from_study
from pipeline.privacy import pseudonyms
from pipeline.privacy import suppression as privacy
from pipeline.processed import MODEL_CACHE, locked, write_processed
from pipeline.report import journal, pdf, provenance
from pipeline.report.answer import AnswerLine
from pipeline.report.content import build_content
from pipeline.report.html import Paragraph, Section, render_html
from pipeline.report.sections.estimand import answer_sentence, estimand_section
from pipeline.schemas.analysis import check_analysis
from pipeline.schemas.columns import outcome_column
from pipeline.schemas.identity import AnalysisKind
from pipeline.schemas.outputs import check_output, for_publication
from pipeline.validate.study import Validation

REPORT_NAME = "outcomes.html"
RUN_LOG = "run_log.csv"  # fit times of the last run, in the processed folder (they vary by machine)
PDF_NAME = "outcomes.pdf"
TABLES_FOLDER = "tables"


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
        Source folder of the pipeline whose git commit is recorded (default: the folder the
        running package was imported from; the configuration's folder is recorded apart).
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
    out = config.outputs
    with locked(out.processed, out.reports):
        outputs.tidy_output_folder(out.reports)
        outputs.check_owned(out.reports)
        # one BLAS thread in this process, as in the model workers: its products are small
        # (per-pattern blocks, marginal-mean grids), and threads synchronising on each call
        # made them several times slower (pipeline.lmm.blas)
        with single_threaded():
            return _run(config, project_root, progress, refit)


def _run(
    config: Config, project_root: Path | None, progress: Progress | None, refit: bool
) -> RunResult:
    raw, validation, written = write_processed(config)
    if validation.valid("assessments").empty:
        # (validation itself accepts an empty result: a header without rows, every row
        # quarantined; there is then nothing to analyse)
        raise UserError(
            f"{config.source}: no valid assessment rows to analyse ({validation.quarantined_rows} "
            f"row(s) quarantined, reasons in {config.outputs.quarantine}); `outcomes validate` "
            f"shows what was read"
        )
    sessions = validation.valid("sessions")
    # the run's adverse events, assembled once: the exposure and every safety table count them
    record = event_record(sessions, raw["sessions"].events) if config.study.sessions else None
    data = derive.analysis_dataset(
        validation.valid("patients"),
        sessions,
        validation.valid("assessments"),
        config,
        record,
    )
    check_analysis(data, [outcome_column(o.name) for o in config.study.outcomes])
    key = pseudonyms.load_key(config.privacy)
    written.append(
        outputs.write_parquet(
            config.outputs.processed / "analysis.parquet",
            pseudonyms.deidentify(data, key),
            private=True,
        )
    )

    study = config.study
    check_design(data, study, config.model.covariates)
    secret = cache_key(config.engine.cache_key_file, config.outputs.processed)
    folder = config.outputs.processed / MODEL_CACHE
    cache = None if secret is None else FitCache(folder, read=not refit, secret=secret)
    # the plans are built before the [estimand] block's process is forked: after a fork
    # every page this process writes to is copied first (copy on write), which made building
    # them three times slower
    plans = study_plans(data, config.model, study)
    with _estimand_beside_fits(data, config) as estimand:
        results = run_analyses(
            plans,
            config.model.df_method,
            progress=progress,
            workers=config.engine.workers or None,
            cache=cache,
        )
        visit = primary_visit(data, study)
        headlines = [headline(c) for c in study.comparisons]
        model_tables = combine(results, study.comparisons, visit)
        diagnostics = model_tables["diagnostics"]
        written.append(
            outputs.write_csv(
                config.outputs.processed / RUN_LOG,
                diagnostics.loc[:, ["analysis", "outcome", "status", "fit_seconds"]],
            )
        )
        primary_outcome = study.outcomes[0].name
        result = next(
            r for r in results if (r.identity, r.outcome) == (headlines[0], primary_outcome)
        )
        if result.fit is None:
            message = result.diagnostics["message"].iloc[0]
            raise UserError(
                f"the primary model ({result.formula}) cannot be fitted to these data: {message}"
            )
        if visit is not None and headlines[0].kind is AnalysisKind.CHANGE:
            at = result.contrasts[
                pd.to_numeric(result.contrasts["visit"], errors="coerce") == visit
            ]
            if at.empty:
                raise UserError(
                    f"the primary outcome {primary_outcome} has no between-group difference at "
                    f"the primary visit {visit}: no patient of both groups was assessed then; set "
                    f"[time] primary_visit to a visit the data hold"
                )
        skipped = tuple(
            f"{r.analysis} ({r.outcome}): {r.diagnostics['message'].iloc[0]}"
            for r in results
            if r.fit is None
        )
        # the [estimand] block's process is done by now (it started before the fits): take its
        # result, and its memory back, before the tables after the fits are made
        missing = _estimand_result(estimand, data, config)
        groups = [c.name for c in study.comparisons]
        outcome_names = [o.name for o in study.outcomes]
        responder_table = pd.concat(
            [responders.responders_by_instrument(data, g, outcome_names) for g in groups],
            ignore_index=True,
        )
        reasons = summaries.quarantine_reasons(validation.failures)
        tables = {
            **model_tables,
            "answer": answer_table(model_tables, study, visit),
            "row_accounting": validation.accounting,
            "quarantine_reasons": reasons,
        }
        if record is not None:
            tables["adverse_event_rates"] = safety.adverse_event_rates(
                sessions, "depth", record=record
            )
            tables["adverse_event_rate_ratio"] = safety.rate_ratio(sessions, "depth", record=record)
        tables["responders"] = responder_table
        threshold = config.privacy.small_cell_threshold
        patients = validation.valid("patients")
        tables.update(
            clinic.clinic_tables(
                data,
                sessions,
                study,
                threshold,
                patients=patients,
                assessments=validation.valid("assessments"),
                record=record,
                workers=config.engine.workers,
            )
        )
        not_supported = skipped_analyses(data, study)
        if not_supported:
            tables["skipped_analyses"] = pd.DataFrame(not_supported, columns=["analysis", "reason"])
        descriptive = summaries.descriptive_tables(
            validation, data, tables.get("diagnostics"), groups, study, headlines[0].name
        )
        if missing is not None:  # [estimand]: reference-based sensitivity (issue 19)
            tables["sensitivity_missing"] = missing.sensitivity
            tables["tipping_point"] = missing.tipping
    report = render_report(
        config,
        raw,
        {**tables, **descriptive},
        results,
        analysis=data,
        key_source=key.source,
        project_root=project_root,
        missing=missing,
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


def _estimand_result(
    job: Alongside[MissingDataResult] | None, data: pd.DataFrame, config: Config
) -> MissingDataResult | None:
    """Return the ``[estimand]`` block's result: from its process, else computed here.

    None without an ``[estimand]`` section.

    Raises
    ------
    UserError
        The block cannot be analysed on these data.
    """
    if config.estimand is None:
        return None
    try:
        return job.result() if job is not None else missing_data_analysis(data, config)
    except (ValueError, ModelDataError, ModelFitError) as exc:
        raise UserError(
            f"{config.source}: [estimand] cannot be analysed on these data: {exc}"
        ) from None


@contextlib.contextmanager
def _estimand_beside_fits(
    data: pd.DataFrame, config: Config
) -> Iterator[Alongside[MissingDataResult] | None]:
    """Start the ``[estimand]`` block in a process of its own; stop it if the run stops.

    None when there is no ``[estimand]`` section or the configuration asks for one process
    at a time (``[engine] workers = 1``, to save memory): the block then runs in this process
    after the fits.
    """
    job = (
        Alongside(portable_missing_data_analysis, data, config, what="the [estimand] block")
        if config.estimand is not None and config.engine.workers != 1
        else None
    )
    try:
        yield job
    finally:
        if job is not None:
            job.cancel()


def check_design(data: pd.DataFrame, study: Study, covariates: Sequence[str] = ()) -> None:
    """Stop with one sentence when the data cannot answer the declared design at all.

    ``covariates`` are the models' baseline covariates (``[model] covariates``).

    Raises
    ------
    UserError
        No valid assessment; a declared comparison with fewer than two groups in the data;
        a covariate with one value for every patient (it cannot adjust the models); the first
        (primary) outcome never recorded; a trial's primary visit never assessed.
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
    patients = data.drop_duplicates("patient_id")
    for name in [c for c in covariates if c in patients]:
        values = patients[name].dropna().astype("str").unique()
        if len(values) < 2:
            held = f"the one value '{values[0]}'" if len(values) else "no value"
            raise UserError(
                f"the covariate {name} has {held} for every patient, so it cannot adjust the "
                f"models; remove it from [model] covariates (covariates = [] adjusts for none)"
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
    run_id: str = ""
    journal: journal.JournalFiles | None = None


def set_id(tables: dict[str, pd.DataFrame], html: str) -> str:
    """Return the id of an output set: the first 16 hex digits of the SHA-256 of its content.

    It is computed from the published tables (as written) and the HTML before the id is put
    into it, so the same inputs, settings and code give the same id (the HTML stays
    reproducible) and any change of a number gives another.
    """
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(
            name.encode() + b"\0" + outputs.csv_text(privacy.for_csv(tables[name])).encode()
        )
    digest.update(html.encode())
    return digest.hexdigest()[:16]


def render_report(
    config: Config,
    raw: dict[str, RawTable],
    tables: dict[str, pd.DataFrame],
    results: Sequence[AnalysisResult],
    *,
    analysis: pd.DataFrame,
    key_source: str,
    project_root: Path | None,
    missing: MissingDataResult | None = None,
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
    project_root : Path or None
        Source folder of the pipeline whose commit is recorded (None: the running package's).
    missing : MissingDataResult, optional
        The ``[estimand]`` analyses: their section goes before the methods.

    Returns
    -------
    RenderedReport
        What :func:`write_report` writes; nothing is written here, so a failure leaves the
        previous report in place.
    """
    for name, frame in tables.items():
        check_output(name, frame)
    published = privacy.publish_tables(
        tables, config.privacy.small_cell_threshold, config.privacy.audience
    )
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
        extra=planning_sections(config, analysis, published)
        + (
            ()
            if missing is None
            else (
                estimand_section(
                    missing, config.privacy.small_cell_threshold, config.privacy.audience
                ),
            )
        ),
        contributors=()
        if missing is None
        else (lambda tables, config: [AnswerLine("tipping_point", answer_sentence(missing), 30)],),
    )
    run_id = set_id(published, render_html(content))
    html = render_html(content, run_id=run_id)
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
    return RenderedReport(
        tables=published,
        html=html,
        pdf=document,
        pdf_problem=problem,
        run_id=run_id,
        journal=journal.journal_files(content),
    )


def write_report(config: Config, report: RenderedReport) -> list[Path]:
    """Write the published tables, the HTML, the PDF and the Word files as one set, all or nothing.

    Everything is written into a staging folder beside ``[outputs] reports`` with a
    ``manifest.json`` (run id, SHA-256 of each file) and swapped in at the end
    (:class:`outputs.OutputSet`): the folder holds the whole earlier set until then, and the
    earlier set's files (those of its manifest) are deleted only after. A run that prints no
    PDF leaves none.

    Returns
    -------
    list of Path
        The files written, the manifest last.
    """
    with outputs.OutputSet(config.outputs.reports, report.run_id) as staged:
        written = [
            staged.write_csv(
                f"{TABLES_FOLDER}/{name}.csv", privacy.for_csv(for_publication(name, frame))
            )
            for name, frame in report.tables.items()
        ]
        written.append(staged.write_text(REPORT_NAME, report.html))
        if report.pdf is not None:
            written.append(staged.write_bytes(PDF_NAME, report.pdf))
        if report.journal is not None:
            written.append(staged.write_bytes(journal.DOCUMENT_NAME, report.journal.document))
            written += [
                staged.write_bytes(f"{journal.TABLES_FOLDER}/{name}", data)
                for name, data in report.journal.tables.items()
            ]
        created = dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds")
        written.append(staged.commit(created))
    return written


def check_output_set(folder: Path) -> list[str]:
    """Return what keeps ``folder`` from being one complete output set (empty: nothing).

    See :func:`outputs.verify_set`; the HTML report must also carry the manifest's run id.
    """
    return outputs.verify_set(folder, marked=[REPORT_NAME])


def planning_sections(
    config: Config, analysis: pd.DataFrame, published: dict[str, pd.DataFrame]
) -> tuple[Section, ...]:
    """Return the section "Planning the next study" when ``[report] planning = true``.

    The variance components and the dropout by group come from this study (as ``outcomes plan
    --from-study``). Its retention percentages are worked out from counts of patients by group
    and visit, so in a publication report the section is replaced by a note when any of those
    counts is suppressed (``outcomes plan`` writes the full page for internal use).
    """
    if not config.report.planning or config.planning is None:
        return ()
    means = published.get("mean_by_visit")
    hidden = means is not None and means["n"].map(lambda v: isinstance(v, str)).any()
    if hidden and config.privacy.audience != "internal":
        return (
            Section(
                planning_report.SECTION_ID,
                planning_report.SECTION_TITLE,
                (
                    Paragraph(
                        "Left out: the dropout it would plan from rests on counts of patients "
                        "by group and visit that are suppressed in this report. Run `outcomes "
                        "plan --from-study` for the planning page, for internal use."
                    ),
                ),
            ),
        )
    design, assumptions, dropout = assumptions_from_study(analysis, config, config.planning)
    result = plan_study(
        design, assumptions, config.planning.sims, config.planning.seed, dropout=dropout
    )
    return (planning_report.planning_section(result),)
