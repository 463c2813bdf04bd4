"""The ``outcomes`` command: ``run``, ``validate``, ``simulate`` and ``dictionary``.

Exit codes: 0 success; 1 ``validate`` found rows to quarantine; 2 a user error (bad file, bad
configuration, bad flag), reported as one sentence without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from pipeline.config import DEFAULT_CONFIG, load_config
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

    config = load_config(args.config)
    _, validation, _ = validate_inputs(config)
    _print_accounting(validation.accounting)
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
    from pipeline.runner import REPORT_NAME, run

    config = load_config(args.config)
    result = run(config, progress=_progress)
    _print_accounting(result.validation.accounting)
    for row in result.not_estimable:
        print(f"not estimable: {row}")
    if result.validation.quarantined_rows:
        print(
            f"{result.validation.quarantined_rows} row(s) quarantined; reasons in "
            f"{config.outputs.quarantine}/"
        )
    print(f"Tables written to {config.outputs.tables}/")
    print(f"Report written to {config.outputs.reports / REPORT_NAME}")
    return EXIT_OK


def _cmd_simulate(args: argparse.Namespace) -> int:
    from pipeline.simulate import add_bad_rows, simulate_study, write_raw_tables

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
    from pipeline.schemas import data_dictionary_markdown

    text = data_dictionary_markdown()
    if args.out:
        write_text(Path(args.out), text)
        print(f"Wrote {args.out}")
    else:
        sys.stdout.write(text)
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
        "raw layout (true effects: pipeline/simulate.py, README).",
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
