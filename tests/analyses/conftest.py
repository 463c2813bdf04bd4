"""Fixtures of the analysis tests."""

from __future__ import annotations

from multiprocessing.reduction import ForkingPickler

import pytest


@pytest.fixture()
def pickled_sizes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of what this process pickles for other processes (calls and their arguments).

    Only this process's pickling is seen: a forked worker's copy of the list is its own.
    """
    sizes: list[int] = []
    dumps = ForkingPickler.dumps

    def counting(obj, protocol=None):  # type: ignore[no-untyped-def]
        data = dumps(obj, protocol)
        sizes.append(len(data))
        return data

    monkeypatch.setattr(ForkingPickler, "dumps", counting)
    return sizes
