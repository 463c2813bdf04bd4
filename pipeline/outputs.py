"""Atomic file writing: every output appears whole or not at all.

Each writer renders to a temporary file in the destination folder and then renames it over the
target with :func:`os.replace`, which is atomic on POSIX file systems, so an interrupted run never
leaves a half-written table or report behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd


def _atomic(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    return _atomic(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (Unix newlines) and return the path."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically and return the path."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as CSV without its index, atomically, and return the path.

    Floats are written with up to 10 significant digits so that results are stable across runs
    and readable in a spreadsheet.
    """
    text = frame.to_csv(index=False, lineterminator="\n", float_format="%.10g")
    return write_text(path, text)


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as Parquet (pyarrow, no index) atomically and return the path."""
    return _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"))
