"""Fits of the plan kept between runs, keyed by the data and the model specification.

Fitting the plan is most of ``outcomes run`` on large data, and a run after a change that
leaves the models alone (report settings, MCIDs, the small-cell threshold, a new figure) need
not refit them. :class:`FitCache` keeps each analysis's result under a key that hashes
everything the result depends on (:func:`plan_key`):

* the plan: its rows (values, dtypes, category levels, row order), formula, random effects,
  site, evaluation points, contrasts, tests, baseline values and notes;
* the inference asked for (degrees of freedom, likelihood-ratio tests or not);
* the code: every source file of the engine (:mod:`pipeline.lmm`) and of the analyses
  (:mod:`pipeline.analyses`), and the versions
  of Python, numpy, scipy, pandas, patsy and statsmodels.

A changed row, setting, module or library therefore gives a new key and a new fit, and an
unchanged analysis is read back with the numbers it had. The entries a run did not use are
deleted at its end (:meth:`FitCache.keep_only`), so the folder holds one run's fits.

Results travel between processes and to disk as pickles without the model rows (the plan
has them) and without patsy's design information, which patsy cannot pickle
(:func:`portable`); :func:`restore` gives both back from the plan. On disk nothing names a
patient (the processed folder holds pseudonymised data only): the conditional modes are
stored by position and given back their patients, in the sorted order the engine uses, from
the plan's rows when read. The cache files are written by
the pipeline into its own processed-data folder and, like any pickle, must not be taken from
anywhere else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import pickle
import platform
from dataclasses import fields, replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import patsy

from pipeline import outputs
from pipeline.analyses.plans import AnalysisResult, ModelPlan
from pipeline.lmm.data import FORMULA_NAMESPACE

__all__ = ["CODE_PACKAGES", "FitCache", "plan_key", "portable", "restore"]

CODE_PACKAGES = ("pipeline.lmm", "pipeline.analyses")
"""Packages whose every source file is part of every key (a new module is covered unasked)."""

_LIBRARIES = ("numpy", "scipy", "pandas", "patsy", "statsmodels")
_FRAMES = ("rows", "baseline")  # hashed by value, the other fields of a plan by repr


def portable(result: AnalysisResult) -> AnalysisResult:
    """Return the result without what the plan already holds, so that it can be pickled.

    Dropped: patsy's design information (patsy cannot pickle it) and the model rows (the
    plan's own rows, which a worker would otherwise send back as a copy).

    Parameters
    ----------
    result : AnalysisResult
        A fitted analysis.

    Returns
    -------
    AnalysisResult
        The same result with ``rows=None`` and, if it has a fit, ``design_info=None``.
    """
    result = replace(result, rows=None)
    if result.fit is None or result.fit.design_info is None:
        return result
    return replace(result, fit=replace(result.fit, design_info=None))


def restore(result: AnalysisResult, plan: ModelPlan) -> AnalysisResult:
    """Give back what :func:`portable` dropped: the plan's rows and the design information.

    The first row is enough when every categorical variable carries its levels (the plan's
    rows do); the full rows are used otherwise, and the design columns must come out the same.

    Parameters
    ----------
    result : AnalysisResult
        A result from :func:`portable`.
    plan : ModelPlan
        The plan it was fitted from.

    Returns
    -------
    AnalysisResult
        The result with the plan's rows and a fit that can build design rows again.

    Raises
    ------
    RuntimeError
        If the design cannot be rebuilt with the same columns.
    """
    if result.rows is None:
        result = replace(result, rows=plan.rows)
    fit = result.fit
    if fit is None or fit.design_info is not None:
        return result
    env = patsy.EvalEnvironment([dict(FORMULA_NAMESPACE)])
    for rows in (plan.rows.head(1), plan.rows):
        _, x = patsy.dmatrices(fit.formula, rows, NA_action="drop", eval_env=env)
        if tuple(x.design_info.column_names) == fit.design_columns:
            return replace(result, fit=replace(fit, design_info=x.design_info))
    raise RuntimeError(f"the design of {fit.formula!r} could not be rebuilt")


def _without_patients(result: AnalysisResult) -> AnalysisResult:
    """Portable result whose conditional modes are indexed 0..n-1 instead of by patient."""
    result = portable(result)
    if result.fit is None:
        return result
    modes = result.fit.random_effects.reset_index(drop=True)
    return replace(result, fit=replace(result.fit, random_effects=modes))


def _with_patients(result: AnalysisResult, plan: ModelPlan) -> AnalysisResult | None:
    """Give the conditional modes back their patients (None when they do not fit the plan)."""
    fit = result.fit
    if fit is None:
        return result
    patients = np.sort(plan.rows[fit.group].unique())
    if len(patients) != len(fit.random_effects):
        return None
    modes = fit.random_effects.set_axis(pd.Index(patients, name=fit.group), axis=0)
    return replace(result, fit=replace(fit, random_effects=modes))


@cache
def _code_fingerprint() -> bytes:
    digest = hashlib.sha256()
    for package in CODE_PACKAGES:
        spec = importlib.util.find_spec(package)
        folder = Path(spec.origin).parent
        for source in sorted(folder.rglob("*.py")):
            digest.update(source.relative_to(folder.parent).as_posix().encode())
            digest.update(source.read_bytes())
    versions = [platform.python_version()]
    for name in _LIBRARIES:
        module = __import__(name)
        versions.append(f"{name}={getattr(module, '__version__', '?')}")
    digest.update(";".join(versions).encode())
    return digest.digest()


def _frame_digest(digest: hashlib._Hash, frame: pd.DataFrame | pd.Series) -> None:
    frame = frame.to_frame() if isinstance(frame, pd.Series) else frame
    digest.update(repr(list(frame.columns)).encode())
    digest.update(repr(len(frame)).encode())
    for name, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, pd.CategoricalDtype):
            digest.update(f"{name}:category:{list(dtype.categories)}:{dtype.ordered}".encode())
        else:
            digest.update(f"{name}:{dtype}".encode())
    values = pd.util.hash_pandas_object(frame, index=True, categorize=False)
    digest.update(np.ascontiguousarray(values.to_numpy()).tobytes())


def plan_key(plan: ModelPlan, df_method: str, tests: bool) -> str:
    """Hash of everything an analysis's result depends on (see the module docstring).

    Parameters
    ----------
    plan : ModelPlan
        The analysis.
    df_method : str
        Degrees of freedom of its tests and intervals.
    tests : bool
        Whether its likelihood-ratio tests are run.

    Returns
    -------
    str
        Hexadecimal SHA-256.
    """
    digest = hashlib.sha256(_code_fingerprint())
    spec = [(f.name, getattr(plan, f.name)) for f in fields(plan) if f.name not in _FRAMES]
    digest.update(repr((spec, df_method, tests)).encode())
    _frame_digest(digest, plan.rows)
    _frame_digest(digest, plan.baseline)
    return digest.hexdigest()


class FitCache:
    """A folder of fitted analyses, one pickle per key (:func:`plan_key`).

    Parameters
    ----------
    folder : Path
        Where the fits are kept (created when first written).
    read : bool, default True
        Read fits back; False refits everything and replaces the entries.
    """

    def __init__(self, folder: Path, read: bool = True) -> None:
        self.folder = Path(folder)
        self.read = read

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.pkl"

    def load(self, key: str, plan: ModelPlan) -> AnalysisResult | None:
        """Return the portable result stored under ``key``, or None.

        A file that cannot be read back (truncated, written by an incompatible version) is
        treated as missing.

        Parameters
        ----------
        key : str
            From :func:`plan_key`.
        plan : ModelPlan
            The plan of that key (its rows name the patients of the conditional modes).

        Returns
        -------
        AnalysisResult or None
            The stored result (without design information: see :func:`restore`).
        """
        path = self._path(key)
        if not self.read or not path.exists():
            return None
        try:
            result = pickle.loads(path.read_bytes())
        except Exception:  # an unreadable entry is a cache miss, never an error
            return None
        if not isinstance(result, AnalysisResult):
            return None
        return _with_patients(result, plan)

    def store(self, key: str, result: AnalysisResult) -> None:
        """Write a result under ``key`` atomically, without patient identifiers.

        Parameters
        ----------
        key : str
            From :func:`plan_key`.
        result : AnalysisResult
            The result; its design information is dropped (:func:`portable`) and its
            conditional modes are indexed by position.
        """
        outputs.write_bytes(self._path(key), pickle.dumps(_without_patients(result), protocol=5))

    def keep_only(self, keys: set[str]) -> None:
        """Delete every entry whose key is not in ``keys``.

        Parameters
        ----------
        keys : set of str
            The keys to keep (those of the run that just ended).
        """
        if not self.folder.is_dir():
            return
        for path in self.folder.glob("*.pkl"):
            if path.stem not in keys:
                path.unlink(missing_ok=True)
