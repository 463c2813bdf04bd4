"""Provenance of a run: input checksums, configuration, software versions and git commit.

This is the report's edge: it reads files (SHA-256 of every input), asks git for the commit and
the environment for the date. :func:`collect` gathers everything into a :class:`RunProvenance`
that the (pure) report sections only format.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pandas as pd

from pipeline.config.settings import Config
from pipeline.ingest.raw_tables import RawTable, sha256_of

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


def package_source() -> Path:
    """Return the folder the running ``pipeline`` package was imported from, its parent."""
    import pipeline  # the package itself, wherever it was installed

    return Path(pipeline.__file__).resolve().parent.parent


def installed_commit() -> str | None:
    """Return the commit recorded when the package was installed from git (PEP 610), or None."""
    try:
        text = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    if not text:
        return None
    try:
        info = json.loads(text)
    except ValueError:
        return None
    commit = info.get("vcs_info", {}).get("commit_id")
    return str(commit) if commit else None


def pipeline_commit(source: Path | None = None) -> str:
    """Return the commit of the pipeline's own code, wherever the configuration lives.

    The git checkout the package runs from (an editable install, ``source`` when given), else
    the commit ``pip`` recorded when it installed the package from git, else ``unknown``
    (a release installed from a wheel is identified by its version).
    """
    found = git_commit(source or package_source())
    if found != "unknown":
        return found
    return installed_commit() or "unknown"


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


@dataclass(frozen=True)
class RunProvenance:
    """What the report records about where its numbers came from.

    Attributes
    ----------
    inputs : pandas.DataFrame
        ``role, file, sha256`` of every input file (:func:`input_files`).
    versions : dict of str to str
        Python and package versions (:func:`package_versions`).
    commit : str
        Git commit of the pipeline's own code (:func:`pipeline_commit`).
    run_date : str
        Date of the report (:func:`run_date`).
    key_source : str
        Where the pseudonym key came from (never the key).
    config_location : str
        Folder of the configuration file, and its own git commit when it is in a repository.
    """

    inputs: pd.DataFrame
    versions: dict[str, str]
    commit: str
    run_date: str
    key_source: str
    config_location: str = ""


def collect(
    config: Config, raw: Mapping[str, RawTable], project_root: Path | None, key_source: str
) -> RunProvenance:
    """Hash the inputs, read the versions, the commit and the date of one run.

    Parameters
    ----------
    config : Config
        The run's configuration (its file and any REDCap data dictionary are hashed too).
    raw : mapping of str to RawTable
        Raw tables as read (file names and SHA-256).
    project_root : Path or None
        Source folder of the pipeline whose commit is recorded; None: the folder the running
        package was imported from (:func:`pipeline_commit`), never the configuration's folder.
    key_source : str
        Where the pseudonym key came from.

    Returns
    -------
    RunProvenance
        Everything the provenance section shows.
    """
    files = [(name, *file) for name, table in raw.items() for file in table.file_digests()]
    files += [
        ("REDCap data dictionary", Path(s.dictionary), sha256_of(Path(s.dictionary)))
        for s in config.sources
        if s.kind == "redcap" and s.dictionary
    ]
    files.append(("configuration", config.source, sha256_of(config.source)))
    folder = config.source.resolve().parent
    config_commit = git_commit(folder)
    return RunProvenance(
        inputs=input_files(files),
        versions=package_versions(),
        commit=pipeline_commit(project_root),
        run_date=run_date(),
        key_source=key_source,
        config_location=str(folder)
        + (f" (git commit {config_commit})" if config_commit != "unknown" else ""),
    )
