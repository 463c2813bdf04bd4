"""The run's worker pools hand their calls over alike (``pipeline.analyses.workers.Handover``).

The model fits, the estimand beside them and the pieces built after them all give their workers
work through one :class:`~pipeline.analyses.workers.Handover`: a forked worker reads the call
from its copy of the run (only a number goes down the pipe), a spawned one gets it pickled, and
either way the results are the same and nothing stays registered once the results are in.
"""

from __future__ import annotations

import multiprocessing
import os
import sys

import numpy as np
import pytest

from pipeline.analyses import workers
from pipeline.analyses.side_by_side import built_side_by_side

forked = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="workers are forked on Linux"
)


def _total(values: np.ndarray, scale: float) -> tuple[float, int]:
    return float(values.sum()) * scale, os.getpid()


def _nested() -> list[int]:
    """Build two pieces side by side from inside a worker (they are built in place there)."""
    return built_side_by_side([os.getpid, os.getpid], workers=2)


def _calls() -> list[tuple]:
    return [(_total, (np.arange(1_000_000.0) + k, 0.5)) for k in range(3)]


@forked
def test_forked_workers_get_a_number_and_the_registry_is_emptied(pickled_sizes):
    pool = workers.worker_pool(2)
    try:
        with workers.Handover(_calls()) as calls:
            assert len(workers._INHERITED) == 3
            results = [calls.submit(pool, i).result() for i in range(3)]
    finally:
        pool.shutdown()
    assert [r for r, _ in results] == [
        float((np.arange(1_000_000.0) + k).sum()) * 0.5 for k in range(3)
    ]
    assert all(pid != os.getpid() for _, pid in results)
    assert pickled_sizes and max(pickled_sizes) < 10_000  # (each call's argument is 8 MB)
    assert workers._INHERITED == {}


def test_spawned_workers_get_the_calls_pickled(monkeypatch, pickled_sizes):
    monkeypatch.setattr(workers, "_pool_context", lambda: multiprocessing.get_context("spawn"))
    pool = workers.worker_pool(1)
    try:
        calls = workers.Handover(_calls()[:1])
        assert workers._INHERITED == {}  # (nothing to inherit)
        total, pid = calls.submit(pool, 0).result()
        calls.release()
    finally:
        pool.shutdown()
    assert total == float(np.arange(1_000_000.0).sum()) * 0.5 and pid != os.getpid()
    assert max(pickled_sizes) > 8_000_000  # the argument went down the pipe


@forked
def test_a_worker_knows_it_is_one_and_builds_side_by_side_pieces_in_place():
    assert not workers.in_worker()
    pool = workers.worker_pool(1)
    try:
        assert pool.submit(workers.in_worker).result()
        worker = pool.submit(os.getpid).result()
        assert pool.submit(_nested).result() == [worker, worker]
    finally:
        pool.shutdown()


@forked
def test_forked_workers_leave_the_objects_they_inherited_to_the_parent():
    # The first submission forks the workers with the run's objects frozen: a worker's full
    # garbage collection then skips them (no walk over the run's objects, no page copied by
    # writing to them); the run's own collector is back to normal once they are started.
    import gc

    pool = workers.worker_pool(2)
    try:
        with workers.Handover([(gc.get_freeze_count, ())] * 4) as calls:
            frozen = [calls.submit(pool, i).result() for i in range(4)]
    finally:
        pool.shutdown()
    assert min(frozen) > 1_000  # (the pipeline and its libraries are imported here)
    assert gc.get_freeze_count() == 0
