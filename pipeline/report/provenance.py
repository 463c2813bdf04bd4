"""Provenance of a run: input checksums, configuration, software versions and git commit."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import pandas as pd

PACKAGES = (
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "pandera",
    "matplotlib",
    "pyarrow",
    "jinja2",
)


DISTRIBUTION = "needling-outcomes"


def pipeline_version() -> str:
    """Return the version of the installed ``needling-outcomes`` package (its metadata).

    ``unknown (not installed)`` when the package is imported from a source tree that was never
    installed (``pip install -e .`` writes the metadata).
    """
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def package_versions() -> dict[str, str]:
    """Return ``{package: version}`` for Python and the packages the results depend on."""
    versions = {"python": platform.python_version(), DISTRIBUTION: pipeline_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=folder, capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def git_commit(folder: Path) -> str:
    """Return the git commit of ``folder`` (``-dirty`` when changed) or ``unknown``."""
    try:
        commit = _git(folder, "rev-parse", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def run_date() -> str:
    """Today's date (UTC), or the date of ``SOURCE_DATE_EPOCH`` when that is set."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC)
        if epoch and epoch.isdigit()
        else dt.datetime.now(tz=dt.UTC)
    )
    return moment.date().isoformat()


def input_files(files: Iterable[tuple[str, str | Path, str]]) -> pd.DataFrame:
    """Tabulate input files as ``role, file, sha256``, one row per file.

    Parameters
    ----------
    files : iterable of (str, str or Path, str)
        ``(role, file, sha256)``; a file given for several roles (a visit sheet feeding three
        tables) is listed once with its roles joined. A file named by an absolute path is shown
        by its name only (no local folders in a report); a relative name is kept.

    Returns
    -------
    pandas.DataFrame
        ``role, file, sha256`` in the order first given.
    """
    roles: dict[tuple[str, str], list[str]] = {}
    for role, file, digest in files:
        shown = Path(file).name if Path(file).is_absolute() else str(file)
        kept = roles.setdefault((shown, digest), [])
        if role not in kept:
            kept.append(role)
    return pd.DataFrame(
        [
            {"role": ", ".join(role), "file": file, "sha256": digest}
            for (file, digest), role in roles.items()
        ],
        columns=["role", "file", "sha256"],
    )
