"""A large input file's bytes, mapped read-only from the operating system's file cache.

Reading a file copies it into memory the process has not used before, and on some machines
each new page of memory costs more than parsing it: reading an 86 MB export took 40 ms where
mapping it takes 2 ms. :class:`MappedFile` is the file's pages as the system already holds them
(``mmap``, read-only), with the few ``bytes`` methods the readers use, so a reader handles a
mapped file and a ``bytes`` object alike. numpy, pyarrow and hashlib read it in place through
the buffer protocol; slicing it returns ``bytes``.

Only files of at least :data:`MAPPED_FROM` bytes are mapped (a small file is read: mapping has
a fixed cost), and only where the system offers it; otherwise :func:`file_bytes` returns
``bytes``. The map is read-only: the pipeline cannot change an input through it. A file should
not be rewritten while a run reads it (that is true of any reader; a file cut short under a
mapped read ends the process).
"""

from __future__ import annotations

import mmap
import sys
from pathlib import Path

import numpy as np

#: Files smaller than this are read into memory rather than mapped.
MAPPED_FROM = 1 << 20

#: Bytes looked at a time when scanning a mapped file (the block fits the processor's cache).
_BLOCK = 1 << 20


class MappedFile(mmap.mmap):
    """A file mapped read-only, answering the ``bytes`` methods the readers use.

    Create it with :func:`file_bytes`. Slices are ``bytes``; :meth:`decode` and
    :meth:`isascii` read the map in place.
    """

    def startswith(self, prefix: bytes | tuple[bytes, ...]) -> bool:
        """Whether the file starts with ``prefix`` (or one of them)."""
        prefixes = prefix if isinstance(prefix, tuple) else (prefix,)
        return any(self[: len(p)] == p for p in prefixes)

    def endswith(self, suffix: bytes) -> bool:
        """Whether the file ends with ``suffix``."""
        return len(suffix) <= len(self) and self[len(self) - len(suffix) :] == suffix

    def __contains__(self, sub: object) -> bool:
        return isinstance(sub, bytes) and self.find(sub) >= 0

    def isascii(self) -> bool:
        """Whether every byte is below 128 (a block at a time, without copying the file)."""
        data = np.frombuffer(self, dtype=np.uint8)
        return not any(
            int(data[at : at + _BLOCK].max()) >= 128 for at in range(0, data.size, _BLOCK)
        )

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """Decode the whole file (as ``bytes.decode``), read in place."""
        return str(memoryview(self), encoding, errors)

    def count(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        """How often ``sub`` occurs in ``[start:end]`` (as ``bytes.count``; the range is copied)."""
        return self[start:end].count(sub)

    def strip(self, chars: bytes | None = None) -> bytes:
        """Return the file without leading and trailing ``chars`` (a copy)."""
        return self[:].strip(chars)

    def split(self, sep: bytes) -> list[bytes]:
        """Return the file split at ``sep`` (a copy)."""
        return self[:].split(sep)


def file_bytes(path: Path) -> bytes | MappedFile:
    """Return a file's bytes: mapped when it is large and the system allows it, else read.

    Parameters
    ----------
    path : Path
        A regular file.

    Returns
    -------
    bytes or MappedFile
        The file's content.

    Raises
    ------
    OSError
        The file cannot be opened or read.
    """
    with open(path, "rb") as handle:
        size = handle.seek(0, 2)
        if size >= MAPPED_FROM:
            try:
                return _mapped(handle.fileno())
            except (OSError, ValueError):
                pass  # (a file system that cannot map: read it)
        handle.seek(0)
        return handle.read()


def _mapped(fileno: int) -> MappedFile:
    if sys.platform == "win32":
        return MappedFile(fileno, 0, access=mmap.ACCESS_READ)
    # MAP_POPULATE fills the page table at once instead of one fault per page.
    flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
    return MappedFile(fileno, 0, flags=flags, prot=mmap.PROT_READ)
