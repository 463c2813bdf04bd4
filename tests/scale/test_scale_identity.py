"""The scaled path (Polars partitions, Dask cluster) gives the in-memory path's files and numbers.

Identity is checked against the pandas path run in the same test: the quarantine files, the
per-file summary and the row accounting byte for byte; the headline trajectory models' tables
(fixed effects, variance components, contrasts, marginal means) with the same text and numbers
to 1e-8 relative (the reference is the in-memory fit, ``fit_plan(trajectory_plan(...))``, which
tests/lmm compares with lme4/lmerTest in R).
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.analyses.plans import fit_plan, trajectory_plan
from pipeline.config.settings import load_config
from pipeline.errors import UserError
from pipeline.processed import validate_inputs
from pipeline.scale.run import run_scaled
from pipeline.scale.tables import read_analysis

ROOT = Path(__file__).resolve().parents[2]
FILES = ["patients.csv", "sessions.csv", "assessments.csv", "summary.csv", "summary.json"]


def _config(tmp: Path, name: str, **engine):
    config = load_config(ROOT / "analysis.toml")
    out = dataclasses.replace(
        config.outputs, processed=tmp / name / "processed", reports=tmp / name / "reports"
    )
    report = dataclasses.replace(config.report, pdf=False)
    return dataclasses.replace(
        config, outputs=out, report=report, engine=dataclasses.replace(config.engine, **engine)
    )


@pytest.fixture(scope="module")
def pandas_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pandas")
    config = _config(tmp, "pandas")
    validate_inputs(config)
    return config


@pytest.fixture(scope="module")
def polars_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("polars")
    config = _config(tmp, "polars", backend="polars", partition_size=60)
    return config, run_scaled(config)


def _same_numbers(left: pd.DataFrame, right: pd.DataFrame, rtol: float = 1e-8) -> None:
    assert list(left.columns) == list(right.columns)
    for column in left.columns:
        a, b = left[column], right[column]
        if pd.api.types.is_float_dtype(a) or pd.api.types.is_float_dtype(b):
            np.testing.assert_allclose(
                a.to_numpy(float), b.to_numpy(float), rtol=rtol, atol=1e-12, err_msg=column
            )
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), column


def test_quarantine_and_accounting_files_are_identical(pandas_path, polars_run):
    config, result = polars_run
    assert result.partitions == 5
    for name in FILES:
        mine = (config.outputs.quarantine / name).read_bytes()
        assert mine == (pandas_path.outputs.quarantine / name).read_bytes(), name
    mine = (config.outputs.processed / "row_accounting.csv").read_bytes()
    assert mine == (pandas_path.outputs.processed / "row_accounting.csv").read_bytes()
    assert result.merged.accounting["quarantined_rows"].sum() > 0  # the demo has some


def test_the_processed_tables_hold_the_same_rows(pandas_path, polars_run):
    config, result = polars_run
    for table in ("patients", "sessions", "assessments"):
        whole = pd.read_parquet(pandas_path.outputs.processed / f"{table}.parquet")
        parts = pd.concat(
            [pd.read_parquet(p) for p in sorted((config.outputs.processed / table).glob("*"))]
        )
        key = ["pseudonym", *[c for c in ("visit", "session_number") if c in whole]]
        whole = whole.sort_values(key).reset_index(drop=True)
        parts = parts.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(parts, whole, check_dtype=False)
    data = read_analysis(config.outputs.processed, result.levels)
    assert len(data) == result.merged.analysis_rows


@pytest.mark.parametrize("outcome", ["nrs", "odi"])
def test_the_headline_model_equals_the_in_memory_fit(polars_run, outcome):
    config, result = polars_run
    from pipeline.derive import dataset as derive
    from pipeline.ingest.combine import read_sources
    from pipeline.validate.study import validate_study

    raw = read_sources(config.sources)
    valid = validate_study(raw, config.study.ranges())
    data = derive.analysis_dataset(
        valid.valid("patients"), valid.valid("sessions"), valid.valid("assessments"), config
    )
    expected = fit_plan(trajectory_plan(data, outcome, "depth", config.model), tests=False)
    for table in ("fixed_effects", "variance_components", "contrasts", "emmeans"):
        mine = result.tables[table]
        mine = mine[(mine["analysis"] == "trajectory_depth") & (mine["outcome"] == outcome)]
        theirs = expected.tables[table]
        mine = mine[list(theirs.columns)].reset_index(drop=True)
        _same_numbers(mine, theirs.reset_index(drop=True))


def test_a_dask_cluster_gives_the_same_tables_and_survives_a_lost_worker(tmp_path, polars_run):
    """A worker killed mid-run: the run completes with the same tables or fails in one
    sentence without touching the reports; a rerun succeeds.

    The rerun does not wait for the killed worker to come back (its nanny restarts it when it
    can): the cluster's remaining worker is enough.
    """
    distributed = pytest.importorskip("distributed")
    _, reference = polars_run
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            memory_limit="1GB",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        config = _config(
            tmp_path,
            "dask",
            backend="dask",
            scheduler=cluster.scheduler_address,
            partition_size=60,
        )
        pids = list(client.run(os.getpid).values())
        killed: list[int] = []

        def kill_after_the_first_partition(line: str) -> None:
            # mid-run: the first partition is validated, the others are on the workers
            if "validate + derive: 1/" in line and not killed:
                killed.append(pids[0])
                os.kill(pids[0], signal.SIGKILL)

        try:
            first = run_scaled(config, progress=kill_after_the_first_partition)
        except UserError as exc:
            assert "\n" not in str(exc)
            assert not (config.outputs.reports / "manifest.json").exists()
            first = None
        assert killed
        second = run_scaled(config)
    for result in [r for r in (first, second) if r is not None]:
        for table in ("fixed_effects", "contrasts"):
            _same_numbers(result.tables[table], reference.tables[table], rtol=1e-8)
    assert (config.outputs.reports / "manifest.json").exists()
    polars_config, _ = polars_run
    for name in FILES:
        mine = (config.outputs.quarantine / name).read_bytes()
        assert mine == (polars_config.outputs.quarantine / name).read_bytes(), name
