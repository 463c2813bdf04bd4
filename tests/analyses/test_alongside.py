"""A function computed in a process of its own beside the run (pipeline.analyses.alongside)."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest

from pipeline.analyses.alongside import Alongside
from pipeline.errors import UserError


def _sums(values: np.ndarray, scale: float) -> tuple[float, int]:
    return float(values.sum() * scale), os.getpid()


def _fails(message: str) -> None:
    raise ValueError(message)


def _killed() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_result_is_the_functions_computed_in_another_process():
    values = np.arange(10.0)
    total, pid = Alongside(_sums, values, 2.0, what="a sum").result()
    assert total == 90.0
    assert pid != os.getpid()


def test_an_exception_of_the_function_is_raised_by_result():
    job = Alongside(_fails, "no comparison", what="a failure")
    with pytest.raises(ValueError, match="no comparison"):
        job.result()


def test_a_killed_process_is_one_sentence_naming_what_it_computed():
    job = Alongside(_killed, what="the [estimand] block")
    with pytest.raises(UserError, match=r"computing the \[estimand\] block was killed"):
        job.result()


def test_a_forked_process_inherits_the_arguments(pickled_sizes):
    # the forked process reads the call from its copy of this process: what goes down the
    # pipe is a number, not the (large) arguments; they are released once the result is in
    from pipeline.analyses import workers

    sent = pickled_sizes
    values = np.arange(1_000_000.0)  # 8 MB
    total, _ = Alongside(_sums, values, 1.0, what="a sum").result()
    assert total == float(values.sum())
    assert sent and max(sent) < 10_000
    assert workers._INHERITED == {}
