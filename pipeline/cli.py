"""The ``outcomes`` command: the pipeline's stages, ``run``, and the planning and network tools.

Exit codes: 0 success; 1 ``validate`` found rows to quarantine or score cells to blank,
``check-tables`` found a difference, or ``check`` found a folder that is not one complete output
set; 2 a user error (bad file, bad configuration, bad flag, no pseudonym key, a PDF that could
not be printed, another run holding the output folder), reported as one sentence without a
traceback; 130 and 143 a run stopped by Ctrl-C (SIGINT) or SIGTERM, with one sentence and no
traceback (worker processes are stopped with it, and the reports folder keeps its previous
complete set).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from pipeline.config.settings import DEFAULT_CONFIG, load_config
from pipeline.errors import UserError
from pipeline.report.provenance import pipeline_version

EXIT_OK, EXIT_QUARANTINE, EXIT_USER_ERROR = 0, 1, 2


class Stopped(BaseException):
    """The command received SIGINT or SIGTERM (a BaseException, as KeyboardInterrupt is)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a pipeline warning as one line (``warning: ...``); others as Python does."""
    from pipeline.analyses.cache import CacheWarning

    if issubclass(category, CacheWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


_python_showwarning = warnings.showwarning


def _print_accounting(accounting: pd.DataFrame) -> None:
    print("Row accounting (raw = processed + quarantined):")
    for row in accounting.itertuples(index=False):
        blanked = f", {row.blanked_cells} score cell(s) blanked" if row.blanked_cells else ""
        print(
            f"  {row.table:<12} {row.raw_rows:>7} raw = {row.processed_rows:>7} processed "
            f"+ {row.quarantined_rows:>5} quarantined   ({row.file}){blanked}"
        )


def _print_blanked(accounting: pd.DataFrame, quarantine: Path) -> None:
    from pipeline.validate import quality

    blanked = int(accounting["blanked_cells"].sum())
    if blanked:
        print(
            f"{blanked} unreadable or out-of-range score cell(s) blanked, the rest of their "
            f"rows kept; listed in {quarantine / quality.BLANKED_FILE}"
        )


def _cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.processed import validate_inputs
    from pipeline.validate import quality

    config = load_config(args.config, analyses=False)
    raw, validation, _ = validate_inputs(config)
    _print_accounting(validation.accounting)
    print("\n".join(quality.summary_lines(*quality.file_summary(raw, validation))))
    for sentence in quality.patients_of_two_sources(raw, validation):
        print(f"note: {sentence}")
    _print_blanked(validation.accounting, config.outputs.quarantine)
    if validation.quarantined_rows:
        print(
            f"{validation.quarantined_rows} row(s) quarantined; reasons in "
            f"{config.outputs.quarantine}/"
        )
    if validation.quarantined_rows or validation.blanked_cells:
        return EXIT_QUARANTINE
    return EXIT_OK


def _progress(i: int, n: int, plan) -> None:
    """Show which model is being fitted, on one rewritten terminal line."""
    end = "\n" if i == n or not sys.stderr.isatty() else "\r"
    print(
        f"  fitting model {i}/{n}: {plan.analysis} ({plan.outcome})".ljust(72),
        end=end,
        file=sys.stderr,
        flush=True,
    )


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline.runner import PDF_NAME, REPORT_NAME, run

    config = load_config(args.config)
    if config.engine.backend != "pandas":
        from pipeline.scale.run import run_scaled

        scaled = run_scaled(config, progress=lambda line: print(line, file=sys.stderr))
        _print_accounting(scaled.merged.accounting)
        quarantined = int(scaled.merged.accounting["quarantined_rows"].sum())
        if quarantined:
            print(f"{quarantined} row(s) quarantined; reasons in {config.outputs.quarantine}/")
        _print_blanked(scaled.merged.accounting, config.outputs.quarantine)
        print(f"Tables written to {config.outputs.tables}/ (no HTML report at scale)")
        return EXIT_OK
    result = run(config, progress=_progress, refit=args.refit)
    _print_accounting(result.validation.accounting)
    for row in result.not_estimable:
        print(f"not estimable: {row}")
    for row in result.not_supported:
        print(f"not in this design: {row}")
    if result.validation.quarantined_rows:
        print(
            f"{result.validation.quarantined_rows} row(s) quarantined; reasons in "
            f"{config.outputs.quarantine}/"
        )
    _print_blanked(result.validation.accounting, config.outputs.quarantine)
    print(f"Tables written to {config.outputs.tables}/")
    print(f"Report written to {config.outputs.reports / REPORT_NAME}")
    if result.pdf_problem:
        print(f"error: {result.pdf_problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    if config.report.pdf:
        print(f"PDF written to {config.outputs.reports / PDF_NAME}")
    return EXIT_OK


def _cmd_check_tables(args: argparse.Namespace) -> int:
    from pipeline.report.table_check import compare_folders

    actual = args.actual or load_config(args.config).outputs.tables
    for folder in (args.expected, actual):
        if not Path(folder).is_dir():
            raise UserError(f"{folder}: no such folder of tables")
    differences = compare_folders(args.expected, actual, args.rel_tol)
    for line in differences[:50]:
        print(line)
    if differences:
        more = " (first 50 shown)" if len(differences) > 50 else ""
        print(f"{len(differences)} difference(s) between {args.expected} and {actual}{more}")
        return EXIT_QUARANTINE
    print(f"The tables in {actual} carry the numbers of {args.expected}")
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from pipeline.runner import check_output_set

    problems = check_output_set(args.folder)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        print(f"{args.folder} is not one complete output set: {problems[0]}{more}")
        return EXIT_QUARANTINE
    from pipeline.outputs import read_manifest

    manifest = read_manifest(args.folder)
    print(
        f"{args.folder} holds one complete output set: run {manifest['run_id']}, "
        f"{len(manifest['files'])} file(s) as listed in its manifest"
    )
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from pipeline.demo.simulate import add_bad_rows, simulate_study, write_raw_tables

    out = Path(args.out)
    names = ["patients.csv", "sessions.csv", "assessments.csv"]
    existing = [n for n in names if (out / n).exists()]
    if existing and not args.overwrite:
        raise UserError(
            f"{out / existing[0]} already exists; pass --overwrite to replace the "
            f"simulated files in {out}"
        )
    try:
        tables = simulate_study(args.patients, args.seed)
    except ValueError as exc:
        raise UserError(f"cannot simulate: {exc}") from None
    if args.bad_rows:
        tables, manifest = add_bad_rows(tables, seed=args.seed)
        print(f"Added {len(manifest)} deliberately bad rows:")
        for row in manifest.itertuples(index=False):
            print(f"  {row.table}: {row.description}")
    for path in write_raw_tables(tables, out).values():
        print(f"Wrote {path}")
    return EXIT_OK


def _cmd_dictionary(args: argparse.Namespace) -> int:
    from pipeline.outputs import write_text
    from pipeline.schemas.raw import data_dictionary_markdown

    text = data_dictionary_markdown()
    if args.out:
        write_text(Path(args.out), text)
        print(f"Wrote {args.out}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


def _cmd_validate_stats(args: argparse.Namespace) -> int:
    from pipeline import outputs
    from pipeline.analyses.stat_validation import (
        default_scenarios,
        run_simulations,
        summarise,
        summary_markdown,
    )

    if args.sims < 1 or args.patients < 10:
        raise UserError("--sims must be at least 1 and --patients at least 10")
    scenarios = default_scenarios(args.patients)

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            end = "\n" if done == total or not sys.stderr.isatty() else "\r"
            print(f"  fitted {done}/{total} simulated data sets", end=end, file=sys.stderr)

    sims = run_simulations(scenarios, args.sims, args.seed, args.workers or None, progress)
    coverage, tests = summarise(sims, scenarios)
    out = args.out
    outputs.write_csv(out / "coverage.csv", coverage)
    outputs.write_csv(out / "type_one_error.csv", tests)
    text = summary_markdown(coverage, tests, sims, scenarios, args.sims, args.seed)
    outputs.write_text(out / "summary.md", text)
    print(text)
    print(f"Wrote {out}/coverage.csv, type_one_error.csv, summary.md")
    return EXIT_OK


# --- outcomes plan (issue 20) ----------------------------------------------------------------


def _plan_progress(started: float) -> Callable[[int, int], None]:
    """Return a progress bar on stderr: simulated studies done, rate and time left."""

    def show(done: int, total: int) -> None:
        elapsed = time.perf_counter() - started
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / elapsed if elapsed > 0 else 0.0
        left = (total - done) / rate if rate > 0 else float("nan")
        end = "\n" if done == total or not sys.stderr.isatty() else "\r"
        print(
            f"  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} simulated studies, "
            f"{rate:.1f}/s, {left:.0f} s left",
            end=end,
            file=sys.stderr,
            flush=True,
        )

    return show


def _cmd_plan(args: argparse.Namespace) -> int:
    from pipeline import api
    from pipeline.planning.report import (
        FILES,
        effect_sentence,
        headline,
        type_one_sentence,
        write_plan,
    )
    from pipeline.planning.simulate import default_workers

    config = load_config(args.config)
    if args.sims is not None and args.sims < 0:
        raise UserError("--sims must be 0 (formulas only) or more")
    workers = args.workers or default_workers()
    result = api.plan(
        config,
        from_study=args.from_study,
        sims=args.sims,
        seed=args.seed,
        workers=workers,
        progress=_plan_progress(time.perf_counter()),
    )
    print(headline(result))
    print(effect_sentence(result))
    print(type_one_sentence(result))
    shown = result.answers[["question", "method", "value", "mc_se", "unit"]]
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    out = args.out or (config.outputs.reports / "planning")
    written = write_plan(result, out)
    print(f"Planning section written to {written['page']} ({len(written)} files in {out}/;")
    print(
        f"  fragment for the report: {FILES['fragment']}; simulations took {result.seconds:.1f} s)"
    )
    return EXIT_OK


def _add_plan_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plan",
        help="power, sample size and precision for the next study",
        description="Answer the planning questions of the [planning] section (power at n, n "
        "for the target power, detectable effect, CI half-width) by the published formulas "
        "(Diggle et al.; Lu, Luo & Chen) and by simulating the report's own model, and write "
        "the section 'Planning the next study' with a power curve (docs/planning.md).",
    )
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help=f"analysis configuration (TOML) with a [planning] section; default: {DEFAULT_CONFIG}",
    )
    p.add_argument(
        "--from-study",
        action="store_true",
        help="estimate the variance components and the dropout from the configuration's study",
    )
    p.add_argument("--out", type=Path, help="output folder (default: <reports>/planning)")
    p.add_argument(
        "--sims", type=_positive_int, help="simulated studies per size (0: formulas only)"
    )
    p.add_argument("--seed", type=_positive_int, help="random seed (default: the section's)")
    p.add_argument(
        "--workers", type=_positive_int, default=0, help="processes (0: the cores, at most 2)"
    )
    p.set_defaults(func=_cmd_plan)


# --- federation: `share` and `pool` (issue 21; pipeline/federate, docs/federation.md) --------


def _cmd_share(args: argparse.Namespace) -> int:
    from pipeline.federate.run import share_clinic

    share = share_clinic(load_config(args.config), Path(args.out))
    d = share["disclosure"]
    size = Path(args.out).stat().st_size
    print(
        f"Wrote {args.out} ({size:,} bytes) for {share['clinic']}: {d['patients_shared']} of "
        f"{d['patients_in_data']} patients shared ({d['patients_coarsened']} coarsened, "
        f"{d['patients_left_out']} left out by the disclosure rules)"
    )
    return EXIT_OK


def _cmd_pool(args: argparse.Namespace) -> int:
    from pipeline.federate.run import pool_files

    result = pool_files(args.shares, Path(args.out), two_stage_meta=args.two_stage)
    for model in result.models:
        for rec in model.estimands.itertuples():
            print(
                f"{model.outcome}: {rec.label}: {rec.estimate:.3f} "
                f"(95% CI {rec.ci_low:.3f} to {rec.ci_high:.3f})"
            )
    print(f"Wrote {result.written['report']} and {len(result.written) - 1} tables")
    return EXIT_OK


def _add_federation_commands(
    sub: argparse._SubParsersAction, with_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``share`` and ``pool`` subcommands."""
    p = sub.add_parser(
        "share",
        help="write this clinic's share file for a pooled network analysis",
        description="Build the clinic's share file: sums over at least min_patients_per_cell "
        "patients per visit schedule (no patient row, identifier or date), the clinic's own "
        "headline fits and descriptives ([federation] in the configuration; "
        "docs/federation.md).",
    )
    with_config(p)
    p.add_argument("--out", type=Path, required=True, help="share file to write (JSON)")
    p.set_defaults(func=_cmd_share)

    p = sub.add_parser(
        "pool",
        help="pool clinics' share files into one exact analysis",
        description="Fit the trajectory model exactly from the clinics' share files (the same "
        "estimates, SEs and Satterthwaite df as a fit of all rows) and write tables and "
        "pooled.html. Exits 2 when the files differ in version or model specification.",
    )
    p.add_argument("shares", nargs="+", type=Path, help="share files (one per clinic)")
    p.add_argument("--out", type=Path, required=True, help="folder for tables and report")
    p.add_argument(
        "--two-stage",
        action="store_true",
        help="also meta-analyse the clinics' own fits (REML, Hartung-Knapp) with forest plots",
    )
    p.set_defaults(func=_cmd_pool)


# --- end federation -------------------------------------------------------------------------


def _cmd_draft(args: argparse.Namespace) -> int:
    """``init`` (draft a configuration from exports) and ``preview`` (its first mapped rows).

    (The modules that do it are imported, not :mod:`pipeline.api`, which would bring in the
    models: neither command needs them.)
    """
    from pipeline.ingest.draft.files import write_draft
    from pipeline.ingest.draft.model import Confidence
    from pipeline.ingest.draft.render import missing_sentences
    from pipeline.validate.preview import preview, preview_lines

    if args.command == "init":
        draft = write_draft([Path(p) for p in args.exports], Path(args.out), force=args.force)
        guesses = [g.confidence for s in draft.sources for g in s.column_guesses()]
        low = guesses.count(Confidence.LOW)
        print(
            f"Wrote {args.out}: {len(draft.sources)} source(s), {len(guesses)} column guesses "
            f"({low} low); check it, then run: outcomes preview --config {args.out}"
        )
        for sentence in missing_sentences(draft):
            print(f"note: {sentence}")
        return EXIT_OK
    print("\n".join(preview_lines(preview(load_config(args.config, analyses=False), args.rows))))
    return EXIT_OK


def _add_draft_parsers(
    sub: argparse._SubParsersAction, with_config: Callable[[argparse.ArgumentParser], None]
) -> None:
    """Add the ``init`` and ``preview`` subcommands (docs/ingestion.md, "A first draft")."""
    p = sub.add_parser(
        "init",
        help="draft a first configuration from a clinic's exports",
        description="Read the exports (CSV, Excel, a REDCap export with its data dictionary), "
        "guess their layout and which canonical column each column holds, and write a "
        "commented configuration in which every guess says how sure it is and why.",
    )
    p.add_argument("exports", nargs="+", type=Path, help="the export files (and dictionary)")
    p.add_argument("--out", type=Path, required=True, help="configuration file to write (TOML)")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")
    p.set_defaults(func=_cmd_draft)

    p = sub.add_parser(
        "preview",
        help="show the first mapped rows of each table and the per-file counts",
        description="Read and validate the configured files in memory and print the first "
        "rows of each canonical table and, per file, the rows read, kept and quarantined. "
        "Writes nothing.",
    )
    with_config(p)
    p.add_argument("--rows", type=_positive_int, default=5, help="rows shown per table")
    p.set_defaults(func=_cmd_draft)


def _cmd_validate_mmrm(args: argparse.Namespace) -> int:
    from pipeline import outputs
    from pipeline.analyses.stat_validation import (
        mmrm_markdown,
        run_mmrm_simulations,
        summarise_mmrm,
    )

    if args.summarise:
        return _summarise_mmrm_runs(args)
    if args.sims < 1 or not args.per_arm or min(args.per_arm) < 5:
        raise UserError("--sims must be at least 1 and every --per-arm at least 5")

    def progress(done: int, total: int) -> None:
        if done == total or done % 50 == 0:
            print(f"  fitted {done}/{total} simulations", file=sys.stderr)

    finished: list[dict] = []

    def keep(row: dict) -> None:
        # What finished of a long run stays readable: every 50 simulations the rows so far go
        # to mmrm_sims.csv (summarise_mmrm summarises them), rewritten in full at the end.
        finished.append(row)
        if len(finished) % 50 == 0:
            outputs.write_csv(args.out / "mmrm_sims.csv", pd.DataFrame(finished))

    first, last = args.sim_range or (1, args.sims)
    if not 1 <= first <= last <= args.sims:
        raise UserError(f"--sim-range {first} {last} is not within 1 to --sims {args.sims}")
    sims = run_mmrm_simulations(
        args.sims,
        tuple(args.per_arm),
        args.seed,
        args.workers or None,
        progress,
        keep,
        sims=(first, last),
    )
    outputs.write_csv(args.out / "mmrm_sims.csv", sims)
    summary = summarise_mmrm(sims)
    outputs.write_csv(args.out / "mmrm.csv", summary)
    text = mmrm_markdown(summary, sims, args.sims, args.seed)
    outputs.write_text(args.out / "mmrm.md", text)
    print(text)
    print(f"Wrote {args.out}/mmrm.csv, mmrm.md, mmrm_sims.csv")
    return EXIT_OK


def _summarise_mmrm_runs(args: argparse.Namespace) -> int:
    """Summarise the simulations of earlier validate-mmrm runs (whole or stopped early)."""
    from pipeline import outputs
    from pipeline.analyses.stat_validation import mmrm_markdown, summarise_mmrm

    frames = []
    for path in args.summarise:
        try:
            frames.append(pd.read_csv(path))
        except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise UserError(
                f"{path}: cannot be read as simulations of validate-mmrm: {exc}"
            ) from None
        if "per_arm" not in frames[-1]:
            raise UserError(f"{path}: has no per_arm column; give the mmrm_sims.csv of a run")
    sims = pd.concat(frames, ignore_index=True)
    if "sim" in sims:
        repeated = sims[sims.duplicated(["per_arm", "sim"])]
        if not repeated.empty:
            first = repeated.iloc[0]
            raise UserError(
                f"simulation {int(first.sim)} with {int(first.per_arm)} per arm is in more than "
                "one of the files given to --summarise; give each part of a run once"
            )
    counts = sims.groupby("per_arm").size()
    done = ", ".join(f"{n} with {k} per arm" for k, n in counts.items())
    note = (
        f"Summarised with `outcomes validate-mmrm --summarise {' '.join(map(str, args.summarise))}`"
        f" from runs of --sims {args.sims}: {done} finished"
        + (
            " (the runs were stopped before the end; the Monte Carlo SEs say how far these "
            "figures can be read)."
            if (counts < args.sims).any()
            else "."
        )
    )
    summary = summarise_mmrm(sims)
    outputs.write_csv(args.out / "mmrm.csv", summary)
    text = mmrm_markdown(summary, sims, done, args.seed, note)
    outputs.write_text(args.out / "mmrm.md", text)
    print(text)
    print(f"Wrote {args.out}/mmrm.csv, mmrm.md")
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of at least 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``outcomes`` command."""
    parser = argparse.ArgumentParser(
        prog="outcomes",
        description="Dry-needling outcomes pipeline: validate clinic files, derive scores, fit "
        "the mixed models and write the outcome report.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {pipeline_version()}",
        help="print the version of needling-outcomes and exit",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_config(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config",
            type=Path,
            default=DEFAULT_CONFIG,
            help=f"analysis configuration (TOML); default: {DEFAULT_CONFIG}",
        )

    p = sub.add_parser(
        "run",
        help="run the whole pipeline and write the report",
        description="Validate the raw files, derive the analysis data set, fit "
        "the models and write tables and reports/outcomes.html.",
    )
    with_config(p)
    p.add_argument(
        "--refit",
        action="store_true",
        help="fit every model again (by default a model whose data, specification and code "
        "are unchanged since the last run is read back from <processed>/model_cache)",
    )
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "validate",
        help="validate the raw files and write the quarantine",
        description="Validate the raw files named in the configuration, write "
        "the valid rows as Parquet and the failed rows to the "
        "quarantine. Exits 1 when any row was quarantined.",
    )
    with_config(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "simulate",
        help="write simulated raw files with known true effects",
        description="Simulate a three-clinic dry-needling study in the canonical "
        "raw layout (true effects: pipeline/demo/simulate.py, README).",
    )
    p.add_argument("--patients", type=_positive_int, default=240, help="number of patients")
    p.add_argument("--seed", type=_positive_int, default=2026, help="random seed")
    p.add_argument("--out", type=Path, required=True, help="folder for the CSV files")
    p.add_argument(
        "--bad-rows",
        action="store_true",
        help="append a handful of deliberately invalid rows (to see the quarantine)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser(
        "validate-stats",
        help="coverage and type-I error of the model's inference by simulation",
        description="Simulate data sets from the trajectory model with known parameters "
        "(dropout, missed visits), fit each as the pipeline does and write the coverage of "
        "the 95\N{NO-BREAK SPACE}% intervals and the type-I error of the group-by-time test.",
    )
    p.add_argument("--sims", type=_positive_int, default=1000, help="data sets per scenario")
    p.add_argument("--patients", type=_positive_int, default=120, help="patients per data set")
    p.add_argument("--seed", type=_positive_int, default=20261120, help="random seed")
    p.add_argument("--workers", type=_positive_int, default=0, help="processes (0: all cores)")
    p.add_argument("--out", type=Path, default=Path("reports/validation"), help="output folder")
    p.set_defaults(func=_cmd_validate_stats)

    p = sub.add_parser(
        "validate-mmrm",
        help="coverage and type-I error of the MMRM's visit-level difference by simulation",
        description="Simulate two-arm trials with MAR dropout, fit the MMRM as the plan does "
        "and write the coverage and type-I error of the last-visit difference with "
        "Kenward-Roger, Satterthwaite and z inference.",
    )
    p.add_argument("--sims", type=_positive_int, default=1000, help="simulations per size")
    p.add_argument(
        "--per-arm", type=_positive_int, nargs="+", default=[20, 200], help="patients per arm"
    )
    p.add_argument("--seed", type=_positive_int, default=20261202, help="random seed")
    p.add_argument("--workers", type=_positive_int, default=0, help="processes (0: all cores)")
    p.add_argument("--out", type=Path, default=Path("reports/validation"), help="output folder")
    p.add_argument(
        "--summarise",
        type=Path,
        nargs="+",
        metavar="SIMS_CSV",
        help="summarise the mmrm_sims.csv of earlier runs (e.g. one per size, or a run stopped "
        "early) instead of simulating; --sims is then the number each run was asked for",
    )
    p.add_argument(
        "--sim-range",
        type=_positive_int,
        nargs=2,
        metavar=("FIRST", "LAST"),
        help="run only simulations FIRST to LAST of each size (of --sims; simulation k always "
        "draws the same data, so parts run in separate processes, or the rest of a stopped "
        "run, summarise with --summarise into the same figures as one whole run)",
    )
    p.set_defaults(func=_cmd_validate_mmrm)

    p = sub.add_parser(
        "check-tables",
        help="compare regenerated tables with committed ones",
        description="Compare the tidy tables of a run with expected ones (same files, columns "
        "and rows; text identical; numbers to a relative tolerance, 1e-6 by default; fit times "
        "ignored). Exits 1 and names the file, row and column of each difference.",
    )
    with_config(p)
    p.add_argument("--expected", type=Path, required=True, help="folder of expected tables")
    p.add_argument(
        "--actual", type=Path, help="folder of regenerated tables (default: the configuration's)"
    )
    p.add_argument(
        "--rel-tol",
        type=float,
        default=1e-6,
        help="relative tolerance on numbers (default 1e-6)",
    )
    p.set_defaults(func=_cmd_check_tables)

    p = sub.add_parser(
        "check",
        help="check that a reports folder holds one complete output set",
        description="Check that a folder written by 'outcomes run' holds one complete output "
        "set: every file of its manifest.json present with its SHA-256, no other file, and the "
        "HTML carrying the manifest's run id. Exits 0 when it does, 1 when it does not.",
    )
    p.add_argument("folder", type=Path, help="the reports folder ([outputs] reports)")
    p.set_defaults(func=_cmd_check)

    p = sub.add_parser(
        "dictionary",
        help="print the data dictionary (Markdown)",
        description="Print the data dictionary generated from the schemas.",
    )
    p.add_argument("--out", type=Path, help="write it to this file instead of printing it")
    p.set_defaults(func=_cmd_dictionary)

    _add_federation_commands(sub, with_config)
    _add_plan_parser(sub)
    _add_draft_parsers(sub, with_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``outcomes`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    stopping = (signal.SIGINT, signal.SIGTERM)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = {sig: signal.signal(sig, _stop) for sig in stopping} if main_thread else {}
    warnings.showwarning = _show_warning
    try:
        return args.func(args)
    except Stopped as exc:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the message
        name = signal.Signals(exc.signum).name
        print(
            f"stopped by {name}: the run was cancelled and its worker processes ended; "
            "the output folders keep their previous complete files",
            file=sys.stderr,
        )
        return 128 + exc.signum
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # an output folder that cannot be created or written
        where = exc.filename or "an output file"
        print(f"error: {where}: cannot be written ({exc.strerror})", file=sys.stderr)
        return EXIT_USER_ERROR
    finally:
        warnings.showwarning = _python_showwarning
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
