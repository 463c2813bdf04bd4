"""The share file on disk: human-readable JSON, versioned, checked when read.

Layout (format version 1; every number is a sum over at least ``min_patients_per_cell``
patients or a count, see docs/federation.md for the full field list)::

    {
      "format": "needling-outcomes share file",
      "format_version": 1,
      "pipeline_version": "0.1.0",
      "specification_hash": "<sha256 of the model-relevant configuration>",
      "specification": {time_axis, nominal_time, schedule, outcomes, groups, covariates,
                        random_slope, df_method, clinic_effect, min_patients_per_cell,
                        thresholds},
      "clinic": "<name>",
      "disclosure": {min_patients_per_cell, rule, patients_* and assessments_* counts},
      "models": [
        {"outcome", "response", "group", "formula",
         "fixed_effects": [p design-column names], "random_effects": [q names],
         "sites": [{"site", "n_patients", "n_obs", "xtx": p x p, "xty": p, "yty",
                    "cells": [{"z": rows x q, "n_patients",
                               "sum_a": q x (p+1), "sum_aa": q(p+1) x q(p+1)}]}],
         "clinic_fit": {"status", "message", "n_patients", "n_obs",
                        "estimands": [{"estimand", "label", "estimate", "std_err", "df"}]},
         "descriptives": [{"visit", "time", "level", "n_patients", "mean", "sd", "withheld"}]}
      ]
    }

``sum_a`` is ``sum_i Z'[X_i, y_i]`` over the cell's patients and ``sum_aa`` the sum of the outer
products of the flattened blocks (row ``j (p + 1) + u`` is entry ``(j, u)`` of the block).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.errors import UserError
from pipeline.federate.share import FORMAT, FORMAT_VERSION
from pipeline.lmm.sufficient import SufficientStatistics

__all__ = ["ShareFileError", "read_share", "site_statistics", "write_share"]


class ShareFileError(UserError):
    """A share file is missing, not JSON, of another format or internally inconsistent."""


def write_share(share: dict[str, Any], path: Path) -> Path:
    """Write a share file as indented JSON (floats exactly, as their shortest repr).

    Parameters
    ----------
    share : dict
        From :func:`pipeline.federate.share.build_share`.
    path : Path
        Destination (its folder is created).

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(share, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _need(obj: Any, key: str, kind: type | tuple[type, ...], path: Path, where: str) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        raise ShareFileError(f"{path}: {where} has no '{key}' field.")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ShareFileError(f"{path}: {where}.{key} has the wrong type.")
    return value


def _matrix(value: Any, shape: tuple[int, ...], path: Path, where: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ShareFileError(f"{path}: {where} is not a numeric array.") from None
    if arr.shape != shape or not np.all(np.isfinite(arr)):
        raise ShareFileError(
            f"{path}: {where} has shape {arr.shape}, expected {shape} finite numbers."
        )
    return arr


def read_share(path: Path) -> dict[str, Any]:
    """Read a share file and check its format, version and internal consistency.

    Parameters
    ----------
    path : Path
        A file written by :func:`write_share`.

    Returns
    -------
    dict
        The file's content.

    Raises
    ------
    ShareFileError
        One sentence naming the file and the field at fault.
    """
    path = Path(path)
    try:
        share = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShareFileError(f"{path}: share file not found.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShareFileError(f"{path}: not a readable JSON share file ({exc}).") from None
    if not isinstance(share, dict) or share.get("format") != FORMAT:
        raise ShareFileError(f"{path}: not a needling-outcomes share file (no 'format' field).")
    version = share.get("format_version")
    if version != FORMAT_VERSION:
        raise ShareFileError(
            f"{path}: share file format version {version!r}; this pipeline reads version "
            f"{FORMAT_VERSION}."
        )
    for key, kind in (
        ("pipeline_version", str),
        ("specification_hash", str),
        ("specification", dict),
        ("clinic", str),
        ("disclosure", dict),
        ("models", list),
    ):
        _need(share, key, kind, path, "the file")
    for m, model in enumerate(share["models"]):
        where = f"models[{m}]"
        fixed = _need(model, "fixed_effects", list, path, where)
        random = _need(model, "random_effects", list, path, where)
        p, q = len(fixed), len(random)
        for s, site in enumerate(_need(model, "sites", list, path, where)):
            w = f"{where}.sites[{s}]"
            _need(site, "site", str, path, w)
            _matrix(_need(site, "xtx", list, path, w), (p, p), path, f"{w}.xtx")
            _matrix(_need(site, "xty", list, path, w), (p,), path, f"{w}.xty")
            _need(site, "yty", (int, float), path, w)
            _need(site, "n_obs", int, path, w)
            for c, cell in enumerate(_need(site, "cells", list, path, w)):
                wc = f"{w}.cells[{c}]"
                z = np.asarray(_need(cell, "z", list, path, wc), dtype=float)
                if z.ndim != 2 or z.shape[1] != q:
                    raise ShareFileError(f"{path}: {wc}.z must have {q} column(s).")
                _need(cell, "n_patients", int, path, wc)
                _matrix(_need(cell, "sum_a", list, path, wc), (q, p + 1), path, f"{wc}.sum_a")
                d = q * (p + 1)
                _matrix(_need(cell, "sum_aa", list, path, wc), (d, d), path, f"{wc}.sum_aa")
        _need(model, "clinic_fit", dict, path, where)
    return share


def site_statistics(site: dict[str, Any], p: int, q: int) -> SufficientStatistics:
    """Return the engine's statistics of one site block of a (checked) share file.

    Parameters
    ----------
    site : dict
        ``models[m].sites[s]`` of a share file.
    p, q : int
        Numbers of fixed and random effects of the model.

    Returns
    -------
    SufficientStatistics
        The statistics of :mod:`pipeline.lmm.sufficient`.
    """
    cells = site["cells"]
    n_cells = len(cells)
    return SufficientStatistics(
        z=tuple(np.asarray(c["z"], dtype=float).reshape(-1, q) for c in cells),
        n_groups=np.asarray([c["n_patients"] for c in cells], dtype=int),
        sum_a=np.asarray([c["sum_a"] for c in cells], dtype=float).reshape(n_cells, q, p + 1),
        sum_aa=np.asarray([c["sum_aa"] for c in cells], dtype=float).reshape(
            n_cells, q, p + 1, q, p + 1
        ),
        xtx=np.asarray(site["xtx"], dtype=float),
        xty=np.asarray(site["xty"], dtype=float),
        yty=float(site["yty"]),
        n_obs=int(site["n_obs"]),
    )
