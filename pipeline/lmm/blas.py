"""Run a block with the BLAS library numpy uses (OpenBLAS) on one thread.

The mixed-model engine multiplies tall, thin matrices (thousands of patients by a dozen
columns) and reduces long vectors. Multi-threaded OpenBLAS splits such products across cores
and synchronises its threads for each call, which costs more than the product itself, and
several times more when the cores are busy: the plan runs one worker process per core
(:func:`pipeline.analyses.run.run_analyses`), each of which would otherwise start its own BLAS
threads. One thread is also deterministic: a reduction split across a machine-dependent
number of threads is summed in a different order, so the last digits of the estimates would
depend on the machine.

OpenBLAS reads its thread count only once, from the environment, when numpy is first
imported, so :func:`single_threaded` sets it through OpenBLAS' own functions, found with
:mod:`ctypes` in the library numpy has loaded (as ``threadpoolctl`` does). Where no OpenBLAS
is found (another BLAS, another platform) it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import numpy as np

__all__ = ["single_threaded"]

_PREFIXES = ("scipy_openblas", "openblas")
_SUFFIXES = ("64_", "")


def _loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries loaded in this process (Linux), else numpy's own."""
    maps = Path("/proc/self/maps")
    if sys.platform.startswith("linux") and maps.exists():
        paths = {
            line.split()[-1]
            for line in maps.read_text().splitlines()
            if "openblas" in line.lower() and line.split()[-1].startswith("/")
        }
        return sorted(paths)
    root = Path(np.__file__).resolve().parent
    folders = [root / ".dylibs", root.parent / "numpy.libs"]
    found = (p for folder in folders if folder.is_dir() for p in folder.glob("*openblas*"))
    return sorted(str(p) for p in found)


@cache
def _controls() -> tuple[tuple[ctypes._CFuncPtr, ctypes._CFuncPtr], ...]:
    """``(get_num_threads, set_num_threads)`` of every OpenBLAS found."""
    found = []
    for path in _loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            for suffix in _SUFFIXES:
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and put is not None:
                    get.restype = ctypes.c_int
                    put.argtypes = [ctypes.c_int]
                    found.append((get, put))
                    break
            else:
                continue
            break
    return tuple(found)


@contextlib.contextmanager
def single_threaded() -> Iterator[None]:
    """Limit OpenBLAS to one thread inside the block; restore the previous count after.

    Yields
    ------
    None
        Control to the block.
    """
    controls = _controls()
    previous = [get() for get, _ in controls]
    for _, put in controls:
        put(1)
    try:
        yield
    finally:
        for (_, put), count in zip(controls, previous, strict=True):
            put(count)
