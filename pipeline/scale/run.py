"""A run on the Polars or Dask backend: partition, validate, derive, fit, write all or nothing.

``outcomes run`` comes here when ``[engine] backend`` is ``"polars"`` or ``"dask"``
(:func:`pipeline.runner.run`). The processed folder receives what the pandas path writes, with
the same meaning and, for the quarantine and the row accounting, the same files:
``quarantine/<table>.csv``, ``quarantine/blanked_cells.csv``, ``quarantine/summary.csv`` and
``summary.json``, ``row_accounting.csv``; the valid tables and the analysis data set are Parquet
partitions by patient hash, ``<table>/part-<k>.parquet`` and ``analysis/part-<k>.parquet``.

The reports folder receives the tables of the scaled run (the headline trajectory models'
``fixed_effects``, ``variance_components``, ``contrasts``, ``emmeans``, ``scale_fits``, and
``row_accounting``, ``quarantine_reasons``) as one output set (:class:`pipeline.outputs.OutputSet`):
nothing of it is written unless every step finished, so a run stopped by a lost cluster leaves
the previous set in place. The HTML and PDF report of the pandas path are not built at scale.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import shutil
import time as clock
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline import outputs
from pipeline.config.settings import Config
from pipeline.describe import summaries
from pipeline.errors import UserError
from pipeline.privacy import suppression as privacy
from pipeline.scale.cluster import executor
from pipeline.scale.model import fit_headlines
from pipeline.scale.partition import count_patients, partition_inputs
from pipeline.scale.tables import (
    ANALYSIS,
    Merged,
    global_levels,
    merge_reports,
    process_partition,
)
from pipeline.schemas.raw import TABLES
from pipeline.validate import quality

STAGING = ".partitions"  # raw partitions, inside the processed folder, removed after the run

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScaledRun:
    """What a scaled run produced.

    Attributes
    ----------
    merged : Merged
        Row accounting, quarantine and summaries over every partition.
    levels : dict of str to list
        Study-wide level order of the categorical columns of the analysis data set.
    tables : dict of str to pandas.DataFrame
        The published tables.
    written : tuple of Path
        Files written.
    partitions : int
        Number of partitions.
    seconds : dict of str to float
        Wall time of each stage (partition, validate_derive, models, write).
    backend : str
        Where it ran.
    """

    merged: Merged
    levels: dict[str, list]
    tables: dict[str, pd.DataFrame]
    written: tuple[Path, ...]
    partitions: int
    seconds: dict[str, float]
    backend: str


def _inputs(config: Config) -> dict[str, Path]:
    sources = config.sources
    if len(sources) != 1 or not sources[0].legacy:
        raise UserError(
            f'{config.source}: [engine] backend = "{config.engine.backend}" reads the three '
            "canonical CSV files of an [inputs] section; map other layouts ([[sources]]) with "
            'backend = "pandas", or convert them to canonical files first'
        )
    return {t: Path(p[0]) for t, p in sources[0].files.items()}


def write_validation(config: Config, merged: Merged) -> list[Path]:
    """Write the quarantine, the row accounting and the per-file summary (the pandas files)."""
    out = config.outputs
    written = [
        outputs.write_csv(out.quarantine / f"{name}.csv", merged.quarantine[name], private=True)
        for name in TABLES
    ]
    written.append(
        outputs.write_csv(out.processed / "row_accounting.csv", merged.accounting, private=True)
    )
    written.append(
        outputs.write_csv(out.quarantine / quality.BLANKED_FILE, merged.blanked, private=True)
    )
    written.append(outputs.write_csv(out.quarantine / "summary.csv", merged.summary, private=True))
    written.append(
        outputs.write_json(
            out.quarantine / "summary.json",
            quality.summary_json(merged.summary, merged.reasons),
            private=True,
        )
    )
    return written


def run_scaled(config: Config, progress: Progress | None = None) -> ScaledRun:
    """Run partition -> validate + derive -> headline models -> tables on the configured engine.

    Parameters
    ----------
    config : Config
        A configuration with ``[engine] backend = "polars"`` or ``"dask"``.
    progress : callable, optional
        Called with one line as each stage starts and ends.

    Returns
    -------
    ScaledRun
        Accounting, tables, files written and stage times.

    Raises
    ------
    UserError
        Input not in the ``[inputs]`` form, a file-level problem, no valid assessment, a
        cluster that cannot finish.
    """
    say = progress or (lambda line: None)
    out = config.outputs
    with outputs.folder_lock(out.processed), outputs.folder_lock(out.reports):
        outputs.tidy_output_folder(out.reports)
        outputs.check_owned(out.reports)
        return _run(config, _inputs(config), say)


def _run(config: Config, paths: dict[str, Path], say: Progress) -> ScaledRun:
    out = config.outputs
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}  # CPU time of this process per stage (Dask workers not included)
    started, c0 = clock.perf_counter(), clock.process_time()
    n_patients = count_patients(paths["patients"])
    n_parts = max(1, math.ceil(n_patients / config.engine.partition_size))
    staging = out.processed / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    for stale in [*TABLES, ANALYSIS]:
        shutil.rmtree(out.processed / stale, ignore_errors=True)
    raw = partition_inputs(paths, staging, n_parts)
    seconds["partition"] = clock.perf_counter() - started
    cpu["partition"] = clock.process_time() - c0
    say(
        f"partition: {n_patients} patients into {n_parts} partition(s) by patient hash, "
        f"{seconds['partition']:.1f} s"
    )
    try:
        with executor(config.engine) as pool:
            say(f"validate + derive: {n_parts} partition(s) on {pool.name}")
            t0, c0 = clock.perf_counter(), clock.process_time()
            reports = pool.map(
                process_partition,
                list(range(n_parts)),
                staging,
                raw,
                config,
                progress=lambda done, total: say(f"  validate + derive: {done}/{total} partitions"),
            )
            merged = merge_reports(reports, raw)
            seconds["validate_derive"] = clock.perf_counter() - t0
            cpu["validate_derive"] = clock.process_time() - c0
            written = write_validation(config, merged)
            if merged.analysis_rows == 0:
                raise UserError(
                    "no valid assessment is left after validation; see the quarantine files"
                )
            levels = global_levels(merged.levels, config)
            parts = [out.processed / ANALYSIS / f"part-{k:05d}.parquet" for k in range(n_parts)]
            say(f"models: headline trajectory models over {n_parts} partition(s)")
            t0, c0 = clock.perf_counter(), clock.process_time()
            models = fit_headlines(pool, parts, config, levels, say)
            seconds["models"] = clock.perf_counter() - t0
            cpu["models"] = clock.process_time() - c0
            backend = pool.name
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    t0, c0 = clock.perf_counter(), clock.process_time()
    counted = privacy.publish_tables(
        {
            "row_accounting": merged.accounting,
            "quarantine_reasons": summaries.quarantine_reasons(merged.failures),
        },
        config.privacy.small_cell_threshold,
        config.privacy.audience,
    )
    tables = {
        **counted,
        **{("scale_fits" if k == "diagnostics" else k): v for k, v in models.items()},
    }
    written += write_tables(config, tables)
    seconds["write"] = clock.perf_counter() - t0
    cpu["write"] = clock.process_time() - c0
    say("cpu of this process: " + ", ".join(f"{k} {v:.1f} s" for k, v in cpu.items()))
    say("done: " + ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return ScaledRun(merged, levels, tables, tuple(written), n_parts, seconds, backend)


def write_tables(config: Config, tables: dict[str, pd.DataFrame]) -> list[Path]:
    """Write the tables as one output set (all or nothing) with its manifest."""
    digest = outputs.csv_text(pd.concat(list(tables.values()), keys=list(tables), sort=False))
    run_id = hashlib.sha256(digest.encode()).hexdigest()[:16]
    with outputs.OutputSet(config.outputs.reports, run_id) as staged:
        written = [staged.write_csv(f"tables/{n}.csv", t) for n, t in tables.items()]
        written.append(staged.commit(dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds")))
    return written
