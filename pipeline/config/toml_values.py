"""Readers of TOML values: each checks one key and raises a ConfigError naming file and key.

Every part of the configuration (:mod:`.sources`, :mod:`.source_columns`, :mod:`.study`,
:mod:`.options`, :mod:`.estimand`, :mod:`.planning` and :mod:`.settings`) reads its keys with
these, so a wrong value is reported the same way wherever it sits, e.g. ``analysis.toml:
[model.df_method] must be one of satterthwaite, z, got 'kr'``. The readers share their
arguments: ``section`` is the parsed table, ``key`` the key in it, ``path`` the configuration
file (for messages, and to resolve relative paths) and ``name`` the table's name in messages
(``model``, ``sources.2``). This module imports nothing else of the configuration. Nothing
happens at import time.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError


def fail(path: Path, key: str, message: str) -> ConfigError:
    """Return the error ``{path}: [{key}] {message}`` (raise it), naming the file and the key."""
    return ConfigError(f"{path}: [{key}] {message}")


# What each required section holds, for the message when it is missing (docs/ingestion.md
# lists them too). The MCID values are those of the SAP (Ostelo et al., Spine 2008).
REQUIRED_SECTIONS = {
    "inputs": 'add [inputs] with patients = "...", sessions = "..." and assessments = "..." '
    "(the three CSV files of the data dictionary)",
    "outputs": 'add [outputs] with processed = "data/processed" and reports = "reports"',
    "mcid": "add [mcid.nrs], [mcid.vas] and [mcid.odi], each with points and percent (the "
    "SAP's: 2 and 30, 15 and 30, 10 and 30)",
    "mcid.nrs": "add [mcid.nrs] with points = 2 and percent = 30",
    "mcid.vas": "add [mcid.vas] with points = 15 and percent = 30",
    "mcid.odi": "add [mcid.odi] with points = 10 and percent = 30",
}


def missing_section(path: Path, name: str, note: str = "") -> ConfigError:
    """Return the error for a missing required section: what to add, and where they are listed."""
    return fail(
        path,
        name,
        f"section is missing{note}; {REQUIRED_SECTIONS[name]} "
        "(every required section: docs/ingestion.md)",
    )


def get_table(
    raw: dict[str, Any], name: str, path: Path, *, required: bool = True, label: str = ""
) -> dict:
    """Return the table ``[name]`` of ``raw`` (``{}`` when absent and not ``required``).

    ``label`` names the table in messages when it is nested (``mcid.nrs``).
    """
    value = raw.get(name)
    label = label or name
    if value is None:
        if required:
            raise missing_section(path, label)
        return {}
    if not isinstance(value, dict):
        raise fail(path, label, "must be a table of keys, e.g. [" + label + "]")
    return value


def check_keys(section: dict, allowed: set[str], path: Path, name: str) -> None:
    """Refuse a key of the table ``[name]`` that is not in ``allowed``, naming the first one."""
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise fail(
            path, name, f"unknown key '{unknown[0]}' (allowed: {', '.join(sorted(allowed))})"
        )


def get_section(
    raw: dict[str, Any], name: str, path: Path, settings: type, *, required: bool
) -> dict:
    """Return the table ``[name]``, whose keys must be fields of the dataclass ``settings``."""
    section = get_table(raw, name, path, required=required)
    check_keys(section, {f.name for f in fields(settings)}, path, name)
    return section


def get_paths(raw: dict[str, Any], name: str, path: Path, settings: type) -> Any:
    """Read the required table ``[name]`` of paths into ``settings`` (one path per field)."""
    section = get_section(raw, name, path, settings, required=True)
    return settings(**{f.name: get_path(section, f.name, path, name) for f in fields(settings)})


def get_number(
    section: dict, key: str, path: Path, name: str, default: float, lo: float, hi: float
):
    """Return ``key`` of ``[name]`` (``default`` when absent): a number from ``lo`` to ``hi``."""
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise fail(path, f"{name}.{key}", f"must be a number, got {value!r}")
    if not lo <= value <= hi:
        raise fail(path, f"{name}.{key}", f"must be between {lo:g} and {hi:g}, got {value!r}")
    return value


def get_choice(section: dict, key: str, path: Path, name: str, default: str, allowed: tuple) -> str:
    """Return ``key`` of ``[name]`` (``default`` when absent): one of ``allowed``."""
    value = section.get(key, default)
    if value not in allowed:
        raise fail(path, f"{name}.{key}", f"must be one of {', '.join(allowed)}, got {value!r}")
    return value


def get_path(section: dict, key: str, path: Path, name: str) -> Path:
    """Return the required path ``key`` of ``[name]``, resolved against the file's folder."""
    value = section.get(key)
    if not isinstance(value, str) or not value.strip():
        raise fail(path, f"{name}.{key}", "must be a file or folder path in quotes")
    p = Path(value)
    return p if p.is_absolute() else (path.parent / p)


def get_flag(section: dict, key: str, path: Path, name: str, default: bool) -> bool:
    """Return ``key`` of ``[name]`` (``default`` when absent): true or false."""
    value = section.get(key, default)
    if not isinstance(value, bool):
        raise fail(path, f"{name}.{key}", f"must be true or false, got {value!r}")
    return value


def get_whole(
    section: dict, key: str, path: Path, name: str, default: int, lo: int, hi: int
) -> int:
    """Return ``key`` of ``[name]`` (``default`` when absent): a whole number, ``lo`` to ``hi``."""
    value = get_number(section, key, path, name, default, lo, hi)
    if isinstance(value, float) and not value.is_integer():
        raise fail(path, f"{name}.{key}", "must be a whole number")
    return int(value)


def get_text(section: dict, key: str, path: Path, name: str, default: str | None) -> str | None:
    """Return ``key`` of ``[name]`` (``default`` when absent): text that is not blank."""
    value = section.get(key, default)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise fail(path, f"{name}.{key}", f"must be text in quotes, got {value!r}")
    return value


def get_words(value: object, path: Path, name: str, example: str) -> tuple[str, ...]:
    """Return a list of words in quotes as a tuple (``example`` shows one in the message)."""
    if not isinstance(value, list) or not all(isinstance(w, str) and w.strip() for w in value):
        raise fail(path, name, f"must be a list of words in quotes, e.g. {example}")
    return tuple(value)


def get_text_map(
    section: object, path: Path, name: str, *, keys: tuple | None = None, empty: bool = False
) -> dict:
    """Return the table ``[name]`` as ``{key: text}``; numbers and true/false become text.

    ``keys`` lists the keys allowed (None: any); ``empty`` allows the empty text ``""``.
    """
    if not isinstance(section, dict):
        raise fail(path, name, "must be a table of keys, e.g. [" + name + "]")
    out = {}
    for key, value in section.items():
        if keys is not None and key not in keys:
            raise fail(path, name, f"unknown column '{key}' (allowed: {', '.join(keys)})")
        if isinstance(value, bool):
            value = "yes" if value else "no"
        elif isinstance(value, int | float):
            value = f"{value:g}"
        if not isinstance(value, str) or not (value.strip() or (empty and value == "")):
            raise fail(path, f"{name}.{key}", f"must be text in quotes, got {value!r}")
        out[str(key)] = value
    return out
