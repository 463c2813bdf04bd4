"""Report sections built side by side in forked helpers (``pipeline.analyses.side_by_side``).

The report built side by side must be the report built in one process, section for section
and byte for byte in its figures; a builder's error must reach the run as it would in place,
and a helper killed from outside must end in one sentence.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path

import pytest
import report_tables
from factories import write_config, write_study

from pipeline.analyses.side_by_side import built_side_by_side
from pipeline.config.settings import load_config
from pipeline.errors import UserError
from pipeline.ingest.raw_tables import read_raw_tables
from pipeline.privacy.suppression import publish_tables
from pipeline.report import provenance
from pipeline.report.content import build_content
from pipeline.report.html import Figure

ROOT = Path(__file__).resolve().parents[2]
forked = pytest.mark.skipif(
    not sys.platform.startswith("linux") or len(os.sched_getaffinity(0)) < 2,
    reason="helpers are forked on Linux with two cores or more",
)


@forked
def test_results_come_back_in_order_from_the_helpers() -> None:
    here = os.getpid()
    results = built_side_by_side([lambda k=k: (k, os.getpid()) for k in range(6)])
    assert [k for k, _ in results] == list(range(6))
    assert all(pid != here for _, pid in results)


def test_one_worker_builds_everything_here() -> None:
    here = os.getpid()
    assert built_side_by_side([os.getpid, os.getpid], workers=1) == [here, here]


@forked
def test_a_builders_error_is_raised_here_and_the_helpers_are_gone() -> None:
    def broken() -> None:
        raise ValueError("no such table")

    with pytest.raises(ValueError, match="no such table"):
        built_side_by_side([os.getpid, broken, os.getpid])
    assert built_side_by_side([lambda: 1, lambda: 2]) == [1, 2]  # (nothing left behind)


@forked
def test_a_helper_killed_from_outside_is_one_sentence() -> None:
    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(UserError, match=r"killed from outside.*\[engine\] workers = 1"):
        built_side_by_side([killed, lambda: 1])


@forked
def test_the_report_built_side_by_side_is_the_report_built_in_one_process(tmp_path) -> None:
    paths = write_study(tmp_path / "raw")
    config = load_config(write_config(tmp_path, paths))
    published = publish_tables(report_tables.run_tables(), config.privacy.small_cell_threshold)
    run = provenance.collect(config, read_raw_tables(paths), ROOT, "environment variable X")
    alone = dataclasses.replace(config, engine=dataclasses.replace(config.engine, workers=1))
    together = build_content(config, published, run)
    single = build_content(alone, published, run)
    figures = [b for s in together.sections for b in s.blocks if isinstance(b, Figure)]
    assert figures, "the report has figures"
    assert [s.id for s in together.sections] == [s.id for s in single.sections]
    assert together == single  # every block, the figures' PNG bytes included
