"""Pseudonyms and days since time zero: what replaces identifiers and dates in processed data.

**Pseudonyms.** Processed data (``data/processed/*.parquet``) carry ``pseudonym`` instead of
``patient_id``: the first :data:`PSEUDONYM_LENGTH` hexadecimal digits of
HMAC-SHA256(key, patient id). The key comes from the environment variable named by
``[privacy] key_env`` (default ``NEEDLING_PSEUDONYM_KEY``), else from ``[privacy] key_file``
(a file kept outside the repository), else, only when ``[privacy] demo_key = true``, from the
public :data:`DEMO_KEY`, which is fit for the simulated demo data and nothing else. The same key
gives the same pseudonym in every run, so processed files can be linked across runs by whoever
holds the key and by nobody else. Quarantine files keep the raw rows as written, identifiers
included, so that a data manager can correct the source; they stay next to the processed data,
never in a report.

**Dates** in processed data become whole days since the patient's time zero (the baseline
assessment, else the first session; :func:`pipeline.derive.dataset.time_zero`), in ``<name>_day``
columns.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.config.options import PrivacySettings
from pipeline.errors import UserError
from pipeline.schemas.columns import PATIENT_ID

PSEUDONYM_LENGTH = 16
MIN_KEY_LENGTH = 16
DEMO_KEY = b"needling-outcomes PUBLIC demo key: for the simulated demo data only"
PSEUDONYM = "pseudonym"


# ---------------------------------------------------------------------------------------------
# pseudonyms and dates


@dataclass(frozen=True)
class PseudonymKey:
    """The secret behind the pseudonyms and where it came from (never the secret itself)."""

    secret: bytes = field(repr=False)
    source: str


def load_key(settings: PrivacySettings, environ: Mapping[str, str] | None = None) -> PseudonymKey:
    """Find the pseudonym key: environment variable, then key file, then the demo key.

    Parameters
    ----------
    settings : PrivacySettings
        ``[privacy]`` of the configuration.
    environ : mapping, optional
        Environment to read (default :data:`os.environ`).

    Returns
    -------
    PseudonymKey
        The key and a description of its source for the report.

    Raises
    ------
    UserError
        When no key is configured, the key file cannot be read, or the key is too short.
    """
    environ = os.environ if environ is None else environ
    value = environ.get(settings.key_env, "")
    if value.strip():
        secret = value.strip().encode("utf-8")
        source = f"environment variable {settings.key_env}"
    elif settings.key_file is not None:
        try:
            secret = Path(settings.key_file).read_bytes().strip()
        except OSError as exc:
            raise UserError(
                f"{settings.key_file}: the pseudonym key file cannot be read ({exc.strerror})"
            ) from None
        source = f"key file {Path(settings.key_file).name}"
    elif settings.demo_key:
        return PseudonymKey(DEMO_KEY, "the public demo key (demo data only, not a secret)")
    else:
        raise UserError(
            f"no pseudonym key: set the environment variable {settings.key_env} or "
            "[privacy] key_file (a file outside the repository) to a secret of at least "
            f"{MIN_KEY_LENGTH} characters; [privacy] demo_key = true is for the demo data only"
        )
    if len(secret) < MIN_KEY_LENGTH:
        raise UserError(
            f"the pseudonym key from the {source} is shorter than {MIN_KEY_LENGTH} characters"
        )
    return PseudonymKey(secret, source)


def pseudonyms(ids: pd.Series, key: PseudonymKey) -> pd.Series:
    """Keyed pseudonyms of patient identifiers.

    Parameters
    ----------
    ids : pandas.Series
        Patient identifiers (text; surrounding white space is ignored).
    key : PseudonymKey
        The secret.

    Returns
    -------
    pandas.Series
        ``HMAC-SHA256(key, id)`` as lower-case hexadecimal, first :data:`PSEUDONYM_LENGTH`
        digits, on the index of ``ids`` (missing where the identifier is missing).

    Raises
    ------
    RuntimeError
        When two different identifiers get the same pseudonym (a truncation collision).
    """
    # each distinct identifier is hashed once, and each row takes its identifier's pseudonym
    # by position (pyarrow's take: no Python string per row); rows without one stay missing
    codes, found = pd.factorize(ids.astype("str").str.strip())
    unique = found.tolist()
    known = _known(key)
    for i in unique:
        if i not in known:
            known[i] = hmac.new(key.secret, i.encode("utf-8"), hashlib.sha256).hexdigest()[
                :PSEUDONYM_LENGTH
            ]
    hashed = [known[i] for i in unique]
    if len(set(hashed)) != len(hashed):
        raise RuntimeError("two patient identifiers share a pseudonym; lengthen PSEUDONYM_LENGTH")
    rows = pa.array(codes, mask=codes < 0)
    return pd.Series(
        pa.array(hashed, type=pa.large_string()).take(rows), index=ids.index, dtype="str"
    )


_KNOWN: dict[bytes, dict[str, str]] = {}


def _known(key: PseudonymKey) -> dict[str, str]:
    """Return the pseudonyms made so far under ``key`` in this process (one key at a time).

    A run pseudonymises the same patients in every table it writes; each identifier's HMAC is
    computed once. The key's fingerprint, not the key, names the memo.
    """
    fingerprint = hashlib.sha256(b"pseudonym memo\x00" + key.secret).digest()
    if fingerprint not in _KNOWN:
        _KNOWN.clear()
        _KNOWN[fingerprint] = {}
    return _KNOWN[fingerprint]


def deidentify(
    frame: pd.DataFrame, key: PseudonymKey, origin: pd.Series | None = None
) -> pd.DataFrame:
    """Replace ``patient_id`` by ``pseudonym`` and dates by days since the patient's time zero.

    Parameters
    ----------
    frame : pandas.DataFrame
        A processed table.
    key : PseudonymKey
        The pseudonym key.
    origin : pandas.Series, optional
        Time zero per ``patient_id`` (:func:`pipeline.derive.dataset.time_zero`); required when
        ``frame`` has a date column.

    Returns
    -------
    pandas.DataFrame
        The table with ``pseudonym`` where ``patient_id`` was and every datetime column
        ``<name>_date`` replaced by ``<name>_day`` (whole days, ``Int64``; missing when the
        patient has no time zero).
    """
    out = frame.copy()
    dates = [c for c in out.columns if pd.api.types.is_datetime64_any_dtype(out[c])]
    if dates:
        if origin is None or PATIENT_ID not in out:
            raise ValueError("date columns need the patients' time zero to become days")
        # (typed as dates even when no patient has a time zero, e.g. every row quarantined)
        # each patient's time zero by position among the distinct identifiers (a lookup of
        # every row's text identifier in the origin's index hashes each row again)
        codes, found = pd.factorize(out[PATIENT_ID])
        zeros = pd.to_datetime(origin).reindex(found).to_numpy()
        zeros = np.append(zeros, np.datetime64("NaT").astype(zeros.dtype))  # (code -1: none)
        zero = pd.Series(zeros[codes], index=out.index)
        for column in dates:
            days = (out[column] - zero).dt.days.astype("Int64")
            name = column.removesuffix("_date") + "_day"
            out.insert(out.columns.get_loc(column), name, days)
            out = out.drop(columns=column)
    if PATIENT_ID in out:
        out.insert(out.columns.get_loc(PATIENT_ID), PSEUDONYM, pseudonyms(out[PATIENT_ID], key))
        out = out.drop(columns=PATIENT_ID)
    return out


# ---------------------------------------------------------------------------------------------
# small-cell suppression: a linear check over the cells of a table
