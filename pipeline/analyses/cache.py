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

Results travel between processes as pickles without the model rows (the plan has them) and
without patsy's design information, which patsy cannot pickle (:func:`portable`);
:func:`restore` gives both back from the plan. On disk nothing names a patient (the processed
folder holds pseudonymised data only): the conditional modes are stored by position and given
back their patients, in the sorted order the engine uses, from the plan's rows when read.

**Nothing on disk can run code.** The processed folder may sit on a shared drive where anyone
can plant a file, so an entry is a JSON document (``<key>.json``) encoded by
:mod:`pipeline.analyses.codec`, which can only build numbers, text, arrays, frames and the two
result classes, never call anything. Each entry is authenticated with HMAC-SHA256 under a
per-installation key kept outside the processed folder (:func:`cache_key`): by default
``$XDG_CONFIG_HOME/needling-outcomes/cache.key`` (``~/.config/...``), 32 random bytes created
0600 on first use; ``$NEEDLING_CACHE_KEY_FILE`` or ``[engine] cache_key_file`` name another
file. The tag covers the entry's key (its file name) and its body, so an entry that was edited,
moved to another key or written by another installation fails the check; it is then ignored
with a warning (:class:`CacheWarning`) and the analysis is refitted. A file the cache did not
write (any name other than ``<64 hex digits>.json``, an old ``.pkl`` included) is never read
and never deleted.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import platform
import re
import secrets
import warnings
from collections.abc import Mapping
from dataclasses import fields, replace
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import patsy

from pipeline import outputs
from pipeline.analyses import codec
from pipeline.analyses.plans import AnalysisResult, ModelPlan
from pipeline.errors import UserError
from pipeline.lmm.data import FORMULA_NAMESPACE
from pipeline.lmm.fit import LmmFit
from pipeline.lmm.mmrm import MmrmFit

__all__ = [
    "CODE_PACKAGES",
    "KEY_ENV",
    "CacheWarning",
    "FitCache",
    "cache_key",
    "default_key_file",
    "plan_key",
    "portable",
    "restore",
]

KEY_ENV = "NEEDLING_CACHE_KEY_FILE"
"""Environment variable naming the cache key file (wins over ``[engine] cache_key_file``)."""
ENTRY_FORMAT = "needling-outcomes fit cache 2"
KEY_BYTES = 32
_ENTRY = re.compile(r"^[0-9a-f]{64}\.json$")

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
    if isinstance(result.fit, MmrmFit):
        return replace(result, fit=result.fit.without_data())
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
    if isinstance(fit, MmrmFit):
        return replace(result, fit=fit.with_rows_when_needed(plan.rows))
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
    if not isinstance(result.fit, LmmFit):
        return result
    modes = result.fit.random_effects.reset_index(drop=True)
    return replace(result, fit=replace(result.fit, random_effects=modes))


def _with_patients(result: AnalysisResult, plan: ModelPlan) -> AnalysisResult | None:
    """Give the conditional modes back their patients (None when they do not fit the plan)."""
    fit = result.fit
    if not isinstance(fit, LmmFit):
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
    """Feed a frame to ``digest``: its columns, dtypes, category levels, index and values."""
    frame = frame.to_frame() if isinstance(frame, pd.Series) else frame
    digest.update(repr(list(frame.columns)).encode())
    digest.update(repr(len(frame)).encode())
    index = frame.index
    if isinstance(index, pd.RangeIndex):
        digest.update(repr((index.start, index.stop, index.step)).encode())
    else:
        _values_digest(digest, "index", pd.Series(index, copy=False))
    for name, column in frame.items():
        _values_digest(digest, name, column)


def _values_digest(digest: hashlib._Hash, name: object, column: pd.Series) -> None:
    """Feed one column's name, dtype and values to ``digest``.

    Numbers go in as their bytes (hashing runs at memory speed); a categorical column as its
    codes, and its levels once per set of levels (the plans' rows share one: :func:`_levels`);
    anything else through pandas' hashing of values.
    """
    dtype = column.dtype
    digest.update(f"{name}:{dtype.name}".encode())
    if isinstance(dtype, pd.CategoricalDtype):
        digest.update(f"{dtype.ordered}:".encode() + _levels(dtype.categories))
        digest.update(np.ascontiguousarray(column.cat.codes.to_numpy()).tobytes())
    elif isinstance(column.array, _MASKED):  # Int64, boolean, Float64
        values = column.to_numpy(dtype=dtype.numpy_dtype, na_value=0)
        mask = np.asarray(column.isna().to_numpy(), dtype=bool)
        digest.update(np.ascontiguousarray(values).tobytes() + np.packbits(mask).tobytes())
    elif isinstance(dtype, np.dtype) and dtype.kind in "biufcmM":
        digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
    else:
        values = pd.util.hash_pandas_object(column, index=False, categorize=False)
        digest.update(np.ascontiguousarray(values.to_numpy()).tobytes())


_LEVELS: dict[int, tuple[pd.Index, bytes]] = {}
_MASKED = (pd.arrays.IntegerArray, pd.arrays.BooleanArray, pd.arrays.FloatingArray)


def _levels(categories: pd.Index) -> bytes:
    """Digest of a categorical column's levels, kept while that set of levels lives.

    The plans' rows are taken from one data set, so their identifier columns share one set of
    levels (100,000 patients at 100,000 patients); it is hashed once, not once per plan.
    """
    held = _LEVELS.get(id(categories))
    if held is not None and held[0] is categories:
        return held[1]
    hashed = pd.util.hash_pandas_object(categories, index=False, categorize=False)
    found = hashlib.sha256(
        repr(len(categories)).encode() + np.ascontiguousarray(hashed.to_numpy()).tobytes()
    ).digest()
    if len(_LEVELS) >= 64:
        _LEVELS.pop(next(iter(_LEVELS)))
    _LEVELS[id(categories)] = (categories, found)
    return found


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


class CacheWarning(UserWarning):
    """A cache entry was ignored (tampered, foreign or unreadable) or the cache is off."""


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """Return the per-installation key file: ``$XDG_CONFIG_HOME/needling-outcomes/cache.key``.

    ``$XDG_CONFIG_HOME`` defaults to ``~/.config``.
    """
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "needling-outcomes" / "cache.key"


def cache_key(
    configured: Path | None = None,
    processed: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> bytes | None:
    """Read the HMAC key of the fit cache, creating it (0600, 32 random bytes) on first use.

    Parameters
    ----------
    configured : Path, optional
        ``[engine] cache_key_file``.
    processed : Path, optional
        The processed folder, which must not hold the key (anyone who can write entries there
        could then forge them).
    environ : mapping, optional
        Environment (default :data:`os.environ`); ``$NEEDLING_CACHE_KEY_FILE`` wins.

    Returns
    -------
    bytes or None
        The key, or None (with a :class:`CacheWarning`) when it can be neither read nor
        created: the run then fits every model and keeps nothing.

    Raises
    ------
    UserError
        When the key file is inside the processed folder, or holds fewer than 32 bytes.
    """
    environ = os.environ if environ is None else environ
    path = Path(environ.get(KEY_ENV) or configured or default_key_file(environ))
    if processed is not None and path.absolute().is_relative_to(Path(processed).absolute()):
        raise UserError(
            f"{path}: the fit cache's key must not be kept in the processed folder "
            f"{processed}; set [engine] cache_key_file or ${KEY_ENV} to a file outside it"
        )
    try:
        try:
            key = path.read_bytes()
        except FileNotFoundError:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = secrets.token_bytes(KEY_BYTES)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
    except OSError as exc:
        warnings.warn(
            f"the fit cache is off for this run: its key {path} can be neither read nor "
            f"created ({exc.strerror}); every model is fitted",
            CacheWarning,
            stacklevel=2,
        )
        return None
    if len(key) < KEY_BYTES:
        raise UserError(
            f"{path}: the fit cache's key holds {len(key)} bytes, fewer than {KEY_BYTES}; "
            "delete the file and a new key is made"
        )
    return key


def _tag(secret: bytes, key: str, body: str) -> str:
    message = f"{ENTRY_FORMAT}\0{key}\0".encode() + body.encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


class FitCache:
    """A folder of fitted analyses, one authenticated JSON entry per key (:func:`plan_key`).

    Parameters
    ----------
    folder : Path
        Where the fits are kept (created when first written).
    read : bool, default True
        Read fits back; False refits everything and replaces the entries.
    secret : bytes, optional
        The HMAC key; default :func:`cache_key` (the installation's key). When no key can be
        had the cache neither reads nor writes.
    """

    def __init__(self, folder: Path, read: bool = True, secret: bytes | None = None) -> None:
        self.folder = Path(folder)
        self.read = read
        self.secret = cache_key(processed=None) if secret is None else secret

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.json"

    def check(self, key: str) -> tuple[str | None, str | None]:
        """Return ``(body, problem)`` of the entry under ``key``, authenticated.

        ``body`` is the entry's encoded result when its tag verifies; otherwise it is None and
        ``problem`` says why (None when there is simply no entry).
        """
        path = self._path(key)
        if self.secret is None or not self.read or not path.is_file():
            return None, None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            body, tag = entry["body"], entry["tag"]
            if entry.get("format") != ENTRY_FORMAT or not isinstance(body, str):
                raise ValueError("not an entry of this version")
        except (OSError, ValueError, KeyError, TypeError):
            return None, f"{path} is unreadable or not a fit-cache entry; the model is refitted"
        if not isinstance(tag, str) or not hmac.compare_digest(tag, _tag(self.secret, key, body)):
            return None, (
                f"{path} failed authentication (changed, or written by another installation); "
                "it was ignored and the model refitted"
            )
        return body, None

    def load(self, key: str, plan: ModelPlan) -> tuple[AnalysisResult | None, str | None]:
        """Return the portable result stored under ``key`` and why it was not, if it was not.

        An entry that fails authentication, cannot be decoded or does not fit the plan is
        treated as missing, with a one-sentence reason for a :class:`CacheWarning`.

        Parameters
        ----------
        key : str
            From :func:`plan_key`.
        plan : ModelPlan
            The plan of that key (its rows name the patients of the conditional modes).

        Returns
        -------
        result : AnalysisResult or None
            The stored result (without design information: see :func:`restore`).
        problem : str or None
            Why an entry present was not used.
        """
        body, problem = self.check(key)
        if body is None:
            return None, problem
        try:
            result = codec.decode(json.loads(body))
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            return None, f"{self._path(key)} could not be decoded ({exc}); the model is refitted"
        restored = _with_patients(result, plan) if isinstance(result, AnalysisResult) else None
        if restored is None:
            return None, f"{self._path(key)} does not fit its analysis; the model is refitted"
        return restored, None

    def store(self, key: str, result: AnalysisResult) -> None:
        """Write a result under ``key`` atomically, authenticated, without patient identifiers.

        Parameters
        ----------
        key : str
            From :func:`plan_key`.
        result : AnalysisResult
            The result; its design information is dropped (:func:`portable`) and its
            conditional modes are indexed by position.
        """
        if self.secret is None:
            return
        body = json.dumps(codec.encode(_without_patients(result)), separators=(",", ":"))
        entry = {"format": ENTRY_FORMAT, "tag": _tag(self.secret, key, body), "body": body}
        outputs.write_text(self._path(key), json.dumps(entry), private=True)

    def keep_only(self, keys: set[str]) -> None:
        """Delete every entry of the cache whose key is not in ``keys``.

        Only names the cache writes (``<64 hex digits>.json``) are considered; any other file
        in the folder is left alone.

        Parameters
        ----------
        keys : set of str
            The keys to keep (those of the run that just ended).
        """
        if self.secret is None or not self.folder.is_dir():
            return
        for path in self.folder.iterdir():
            if _ENTRY.match(path.name) and path.is_file() and path.stem not in keys:
                path.unlink(missing_ok=True)
