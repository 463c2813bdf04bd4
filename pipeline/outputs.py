"""Writing files at the edge: whole files, private files, spreadsheet-safe CSVs, whole output sets.

**Files.** Each writer renders to a temporary file in the destination folder and renames it over
the target with :func:`os.replace` (atomic on POSIX file systems), so a file appears whole or not
at all. A file is created with mode 0644, or 0600 when ``private=True`` (quarantine and processed
data: ids and dates); the umask applies on top, so the stricter of the two wins. A temporary file
left by a killed run (``.<name>.<random>.tmp``) is removed by the next run
(:func:`remove_stale_temporaries`).

**CSV.** Every CSV is written spreadsheet-safe (:func:`neutralise`): a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading single quote, as OWASP
recommends against formula injection, so Excel or LibreOffice shows it as text instead of running
it. Numbers are untouched, and so is text that is a plain signed number (``-3``).

**Output sets.** The reports folder is written all or nothing (:class:`OutputSet`): the run writes
every file into a staging folder beside the target, adds ``manifest.json`` (run id, SHA-256 of
every file) and swaps the staging folder in with one atomic ``renameat2(RENAME_EXCHANGE)``; where
that call is missing the swap is two renames, and a run killed between them is rolled back to the
old set by the next run (:func:`tidy_output_folder`). A run holds a lock on each folder it writes
(:func:`folder_lock`), refuses a folder holding files it did not write (:func:`check_owned`), and
deletes only what an earlier manifest lists. :func:`verify_set` is ``outcomes check``.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.errors import UserError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "needling-outcomes output set 1"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a cell as a formula (OWASP, CSV injection)."""

_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # names made by tempfile.mkstemp below


# ---------------------------------------------------------------------------------------------
# single files


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode(private: bool = False) -> int:
    """Return the permission bits of a new file: 0644 or 0600 (private), minus the umask."""
    return (0o600 if private else 0o644) & ~_umask()


def _atomic(path: Path, write: Callable[[Path], None], private: bool = False) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)  # mkstemp creates the file 0600: a copy of private data is never world-readable
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, file_mode(private))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_bytes(path: Path, data: bytes, private: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically and return the path (0600 when ``private``)."""
    return _atomic(path, lambda tmp: tmp.write_bytes(data), private)


def write_text(path: Path, text: str, private: bool = False) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (Unix newlines) and return the path."""
    return write_bytes(path, text.encode("utf-8"), private)


def json_text(obj: Any) -> str:
    """Indented, key-sorted JSON text of ``obj`` with a final newline."""
    return json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n"


def write_json(path: Path, obj: Any, private: bool = False) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically and return the path."""
    return write_text(path, json_text(obj), private)


_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _is_formula(value: object) -> bool:
    """Whether a cell starts like a formula (a plain signed number such as ``-3.5`` does not)."""
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not _PLAIN_NUMBER.match(value)
    )


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix a single quote to every text cell (and header) a spreadsheet would run as a formula.

    A text cell that is a plain signed number (``-3``, ``+1.5e-2``) is left alone: a
    spreadsheet reads it as that number and runs nothing.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table about to be written as CSV.

    Returns
    -------
    pandas.DataFrame
        A copy in which every text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a
        carriage return reads ``'`` followed by the cell (OWASP); numbers, missing values and
        other cells are unchanged.
    """
    out = frame.rename(columns=lambda c: f"'{c}" if _is_formula(c) else c)
    for position, (_, column) in enumerate(out.items()):
        if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
            continue
        flagged = column.map(_is_formula).astype(bool)
        if flagged.any():
            values = column.astype(object)
            values[flagged] = "'" + values[flagged].astype(str)
            out.isetitem(position, values)
    return out


def csv_text(frame: pd.DataFrame) -> str:
    """CSV text of ``frame`` (no index, up to 10 significant digits, spreadsheet-safe)."""
    return neutralise(frame).to_csv(index=False, lineterminator="\n", float_format="%.10g")


def write_csv(path: Path, frame: pd.DataFrame, private: bool = False) -> Path:
    """Write ``frame`` as spreadsheet-safe CSV without its index, atomically; return the path.

    Floats are written with up to 10 significant digits so that results are stable across runs
    and readable in a spreadsheet; text cells are neutralised (:func:`neutralise`).
    """
    return write_text(path, csv_text(frame), private)


def write_parquet(path: Path, frame: pd.DataFrame, private: bool = False) -> Path:
    """Write ``frame`` as Parquet (pyarrow, no index) atomically and return the path."""
    return _atomic(path, lambda tmp: frame.to_parquet(tmp, index=False, engine="pyarrow"), private)


def remove_stale_temporaries(folders: Iterable[Path]) -> list[Path]:
    """Delete the temporary files a killed run left in ``folders`` (not recursive).

    Only names of the writers' own pattern (``.<name>.<8 characters>.tmp``) are touched. Call
    it while holding the folder's lock (:func:`folder_lock`), so no running writer is hit.

    Returns
    -------
    list of Path
        The files deleted.
    """
    removed = []
    for folder in folders:
        if not Path(folder).is_dir():
            continue
        for path in Path(folder).iterdir():
            if path.is_file() and _TEMPORARY.match(path.name):
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


# ---------------------------------------------------------------------------------------------
# one run per folder


def _lock_path(folder: Path) -> Path:
    folder = Path(folder).absolute()
    return folder.parent / f".{folder.name}.lock"


def _try_lock(fd: int) -> bool:
    """Take an exclusive lock on an open file without waiting; False when another holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[Path]:
    """Hold an exclusive lock on an output folder for the duration of the block.

    The lock is ``fcntl.flock`` (``msvcrt.locking`` on Windows) on ``.<folder>.lock`` beside
    the folder (the folder itself is swapped by :class:`OutputSet`). The kernel releases it
    when the process ends, however it ends, so a killed run never leaves a stale lock.

    Raises
    ------
    UserError
        When another run holds the lock.
    """
    lock = _lock_path(folder)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if not _try_lock(fd):
            raise UserError(
                f"another run is writing to {folder} (it holds {lock}); wait for it to finish "
                "or give this run other [outputs] folders"
            )
        yield lock
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------
# output sets


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(folder: Path) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.is_symlink()
    )


def read_manifest(folder: Path) -> dict | None:
    """Return the manifest of an output set, or None when there is none or it is not ours."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        return None
    if not isinstance(manifest.get("files"), dict):
        return None
    return manifest


def check_owned(folder: Path) -> None:
    """Refuse an output folder that holds files the pipeline did not write.

    A folder that does not exist, is empty, or holds exactly the files of its manifest (and
    the manifest) belongs to the pipeline.

    Raises
    ------
    UserError
        Naming the first foreign file.
    """
    folder = Path(folder)
    if not folder.exists():
        return
    if not folder.is_dir():
        raise UserError(f"{folder} is a file, not a folder; give [outputs] reports a folder")
    present = _files(folder)
    if not present:
        return
    manifest = read_manifest(folder)
    listed = set(manifest["files"]) | {MANIFEST} if manifest else set()
    foreign = [name for name in present if name not in listed]
    if foreign:
        raise UserError(
            f"{folder / foreign[0]} was not written by the pipeline (the output folder holds "
            f"{len(foreign)} such file(s)); give [outputs] reports an empty or new folder, or "
            "move those files out"
        )


def _staged(folder: Path, kind: str) -> list[Path]:
    folder = Path(folder).absolute()
    pattern = re.compile(rf"^\.{re.escape(folder.name)}\.{kind}-[0-9a-f]{{32}}$")
    if not folder.parent.is_dir():
        return []
    return sorted(p for p in folder.parent.iterdir() if pattern.match(p.name) and p.is_dir())


def tidy_output_folder(folder: Path) -> None:
    """Finish what a killed run left beside ``folder``: roll back a half swap, drop staging.

    Call it while holding the folder's lock. When the folder is missing but an old set moved
    aside by an interrupted two-rename swap exists, the old set is put back; then every
    staging folder and every set moved aside is deleted.
    """
    folder = Path(folder).absolute()
    old = _staged(folder, "old")
    if not folder.exists() and old:
        os.rename(old[-1], folder)
        old = old[:-1]
    for leftover in [*_staged(folder, "staging"), *old]:
        shutil.rmtree(leftover, ignore_errors=True)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths with Linux's renameat2; False when it is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    status = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if status == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _fsync_folder(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _swap(staging: Path, target: Path, aside: Path) -> None:
    """Put ``staging`` where ``target`` is; the old set ends in ``staging`` or ``aside``.

    SIGINT and SIGTERM are held back during the swap, so a Ctrl-C cannot fall between the two
    renames of the fallback.
    """
    if not hasattr(signal, "pthread_sigmask"):  # Windows
        _rename_over(staging, target, aside)
        return
    held = {signal.SIGINT, signal.SIGTERM}
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        _rename_over(staging, target, aside)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _rename_over(staging: Path, target: Path, aside: Path) -> None:
    if not target.exists():
        os.rename(staging, target)
    elif not _exchange(staging, target):  # after an exchange the old set is in staging
        # two renames; tidy_output_folder rolls back a run killed between them
        os.rename(target, aside)
        os.rename(staging, target)
    _fsync_folder(target.parent)


class OutputSet:
    """One run's output folder, written beside the target and swapped in whole.

    Parameters
    ----------
    target : Path
        The output folder (``[outputs] reports``).
    run_id : str
        Identifier of the set, written into its manifest (and by the caller into the report).

    Notes
    -----
    Use as a context manager: files are written with :meth:`write_text`, :meth:`write_bytes`
    and :meth:`write_csv` into a hidden staging folder ``.<target>.staging-<id>`` beside the
    target; :meth:`commit` adds ``manifest.json`` and swaps. Leaving the block without a
    commit (an exception, Ctrl-C) deletes the staging folder; a kill leaves it for
    :func:`tidy_output_folder`. Call :func:`check_owned` and :func:`tidy_output_folder` on the
    target, under :func:`folder_lock`, before writing.
    """

    def __init__(self, target: Path, run_id: str) -> None:
        self.target = Path(target).absolute()
        self.run_id = run_id
        token = uuid.uuid4().hex
        self.staging = self.target.parent / f".{self.target.name}.staging-{token}"
        self.aside = self.target.parent / f".{self.target.name}.old-{token}"
        self.files: list[str] = []
        self.committed = False

    def __enter__(self) -> OutputSet:
        self.staging.mkdir(parents=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.committed:
            shutil.rmtree(self.staging, ignore_errors=True)

    def _where(self, relative: str) -> Path:
        self.files.append(Path(relative).as_posix())
        return self.staging / relative

    def write_bytes(self, relative: str, data: bytes) -> Path:
        """Write a file of the set; return where it will be after the commit."""
        write_bytes(self._where(relative), data)
        return self.target / relative

    def write_text(self, relative: str, text: str) -> Path:
        """Write a UTF-8 text file of the set; return where it will be after the commit."""
        write_text(self._where(relative), text)
        return self.target / relative

    def write_csv(self, relative: str, frame: pd.DataFrame) -> Path:
        """Write a spreadsheet-safe CSV of the set; return where it will be after the commit."""
        write_csv(self._where(relative), frame)
        return self.target / relative

    def commit(self, created: str) -> Path:
        """Write the manifest and swap the staging folder in; delete the old set.

        Parameters
        ----------
        created : str
            When the set was made (ISO 8601), recorded in the manifest.

        Returns
        -------
        Path
            The manifest, in the target folder.
        """
        manifest = {
            "format": MANIFEST_FORMAT,
            "run_id": self.run_id,
            "created": created,
            "files": {name: _sha256(self.staging / name) for name in sorted(self.files)},
        }
        write_text(self.staging / MANIFEST, json_text(manifest))
        _fsync_folder(self.staging)
        _swap(self.staging, self.target, self.aside)
        self.committed = True
        for old in (self.staging, self.aside):
            shutil.rmtree(old, ignore_errors=True)
        return self.target / MANIFEST


def verify_set(folder: Path, marked: Iterable[str] = ()) -> list[str]:
    """Check that a folder holds one complete output set; return the problems found.

    Parameters
    ----------
    folder : Path
        An output folder.
    marked : iterable of str
        Files of the set that must contain the run id in their text (the HTML report).

    Returns
    -------
    list of str
        One sentence per problem: no manifest, a listed file missing or with another SHA-256,
        a file the manifest does not list, a marked file without the manifest's run id. Empty
        when the folder is one complete set.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"{folder / MANIFEST} is missing or is not a manifest of the pipeline"]
    problems = []
    listed = manifest["files"]
    for name, digest in sorted(listed.items()):
        path = folder / name
        if not path.is_file():
            problems.append(f"{path} is listed in the manifest but missing")
        elif _sha256(path) != digest:
            problems.append(f"{path} differs from the file of run {manifest['run_id']}")
    for name in _files(folder):
        if name != MANIFEST and name not in listed:
            problems.append(f"{folder / name} is not part of run {manifest['run_id']}")
    for name in marked:
        path = folder / name
        if name in listed and path.is_file():
            if str(manifest["run_id"]) not in path.read_text(encoding="utf-8", errors="replace"):
                problems.append(f"{path} does not carry run id {manifest['run_id']}")
    return problems
