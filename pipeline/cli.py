"""The ``outcomes`` command: ``run``, ``validate``, ``simulate`` and ``dictionary``.

Exit codes: 0 success; 1 ``validate`` found rows to quarantine, or ``check-tables`` found a
difference; 2 a user error (bad file, bad configuration, bad flag, no pseudonym key, a PDF that
could not be printed), reported as one sentence without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.config.settings import DEFAULT_CONFIG, load_config
from pipeline.errors import UserError

EXIT_OK, EXIT_QUARANTINE, EXIT_USER_ERROR = 0, 1, 2


def _print_accounting(accounting: pd.DataFrame) -> None:
    print("Row accounting (raw = processed + quarantined):")
    for row in accounting.itertuples(index=False):
        print(
            f"  {row.table:<12} {row.raw_rows:>7} raw = {row.processed_rows:>7} processed "
            f"+ {row.quarantined_rows:>5} quarantined   ({row.file})"
        )


def _cmd_validate(args: argparse.Namespace) -> int:
    from pipeline.runner import validate_inputs
    from pipeline.validate import quality

    config = load_config(args.config)
    raw, validation, _ = validate_inputs(config)
    _print_accounting(validation.accounting)
    print("\n".join(quality.summary_lines(*quality.file_summary(raw, validation))))
    if validation.quarantined_rows:
        print(
            f"{validation.quarantined_rows} row(s) quarantined; reasons in "
            f"{config.outputs.quarantine}/"
        )
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
        "the 95 %% intervals and the type-I error of the group-by-time test.",
    )
    p.add_argument("--sims", type=_positive_int, default=1000, help="data sets per scenario")
    p.add_argument("--patients", type=_positive_int, default=120, help="patients per data set")
    p.add_argument("--seed", type=_positive_int, default=20261120, help="random seed")
    p.add_argument("--workers", type=_positive_int, default=0, help="processes (0: all cores)")
    p.add_argument("--out", type=Path, default=Path("reports/validation"), help="output folder")
    p.set_defaults(func=_cmd_validate_stats)

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
        "dictionary",
        help="print the data dictionary (Markdown)",
        description="Print the data dictionary generated from the schemas.",
    )
    p.add_argument("--out", type=Path, help="write it to this file instead of printing it")
    p.set_defaults(func=_cmd_dictionary)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``outcomes`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except OSError as exc:  # an output folder that cannot be created or written
        where = exc.filename or "an output file"
        print(f"error: {where}: cannot be written ({exc.strerror})", file=sys.stderr)
        return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
