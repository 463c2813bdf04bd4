"""The processed folder: read the sources, validate them, write the processed tables.

``outcomes validate`` runs this alone, and ``outcomes run`` runs it first
(:mod:`pipeline.runner`); it imports only what reading, validating and writing need (the dates
become days since each patient's time zero, :func:`pipeline.derive.dataset.time_zero`), not the
models and the report, so that checking the files does not wait for them. The processed tables
and the quarantine are written private (0600, or stricter by the umask) and without free-text
columns unless ``[privacy] keep_free_text`` names them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.config.settings import Config
from pipeline.derive import dataset as derive
from pipeline.ingest.combine import read_sources
from pipeline.ingest.raw_tables import RawTable
from pipeline.privacy import pseudonyms
from pipeline.schemas.raw import TABLES, free_text_columns
from pipeline.validate import quality
from pipeline.validate.study import Validation, validate_study

MODEL_CACHE = "model_cache"  # fits kept between runs, in the processed folder


@contextlib.contextmanager
def locked(*folders: Path) -> Iterator[None]:
    """Hold the lock of every folder and remove what a killed run left in them."""
    with contextlib.ExitStack() as stack:
        for folder in folders:
            stack.enter_context(outputs.folder_lock(folder))
        yield


def processed_folders(config: Config) -> list[Path]:
    """Return the folders a run writes under the processed folder (itself included)."""
    out = config.outputs
    return [out.processed, out.quarantine, out.processed / MODEL_CACHE]


def without_free_text(frame: pd.DataFrame, table: str, keep: Sequence[str]) -> pd.DataFrame:
    """Drop the free-text columns of ``table`` (:func:`free_text_columns`) not named in ``keep``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Valid rows of the table.
    table : str
        Its name (``patients``, ``sessions``, ``assessments``).
    keep : sequence of str
        ``[privacy] keep_free_text``.

    Returns
    -------
    pandas.DataFrame
        The frame without those columns.
    """
    drop = [c for c in free_text_columns()[table] if c not in keep and c in frame]
    return frame.drop(columns=drop)


def validate_inputs(config: Config) -> tuple[dict[str, RawTable], Validation, list[Path]]:
    """Read and validate the raw tables; write the processed tables and the quarantine.

    Holds the lock of the processed folder while it runs (:func:`outputs.folder_lock`).

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
        file survives), ``<processed>/quarantine/blanked_cells.csv`` (each score cell blanked
        in a kept row, with its file, line, column, value and reason),
        ``<processed>/row_accounting.csv`` and the per-source-file
        summary ``<processed>/quarantine/summary.csv`` and ``summary.json``
        (:mod:`pipeline.validate.quality`).
    """
    with locked(config.outputs.processed):
        return write_processed(config)


def write_processed(config: Config) -> tuple[dict[str, RawTable], Validation, list[Path]]:
    """Do what :func:`validate_inputs` does, for a caller that already holds the folder's lock."""
    outputs.remove_stale_temporaries(processed_folders(config))
    raw = read_sources(config.sources)
    validation = validate_study(raw, config.study.ranges())
    out = config.outputs
    key = pseudonyms.load_key(config.privacy)
    origin = derive.time_zero(validation.valid("assessments"), validation.valid("sessions"))
    keep = config.privacy.keep_free_text
    written = []
    for name in TABLES:
        table = validation.tables[name]
        processed = pseudonyms.deidentify(without_free_text(table.valid, name, keep), key, origin)
        written.append(
            outputs.write_parquet(out.processed / f"{name}.parquet", processed, private=True)
        )
        written.append(
            outputs.write_csv(out.quarantine / f"{name}.csv", table.quarantine, private=True)
        )
    written.append(
        outputs.write_csv(out.processed / "row_accounting.csv", validation.accounting, private=True)
    )
    written.append(
        outputs.write_csv(
            out.quarantine / quality.BLANKED_FILE,
            quality.blanked_cells(raw, validation),
            private=True,
        )
    )
    summary, reasons = quality.file_summary(raw, validation)
    written.append(outputs.write_csv(out.quarantine / "summary.csv", summary, private=True))
    written.append(
        outputs.write_json(
            out.quarantine / "summary.json", quality.summary_json(summary, reasons), private=True
        )
    )
    return raw, validation, written
