"""The two workflow steps with their file I/O: a clinic's ``share`` and the centre's ``pool``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config.settings import Config, load_config
from pipeline.derive.adverse_events import event_record
from pipeline.derive.dataset import analysis_dataset
from pipeline.federate.pool import PooledModel, pool_shares, two_stage
from pipeline.federate.report import pooled_tables, write_pooled
from pipeline.federate.schema import read_share, write_share
from pipeline.federate.share import build_share
from pipeline.ingest.combine import read_sources
from pipeline.validate.study import validate_study

__all__ = ["PooledAnalysis", "pool_files", "share_clinic"]


def share_clinic(config: str | Path | Config, out: Path | None = None) -> dict[str, Any]:
    """Read, validate and derive a clinic's data and build (and write) its share file.

    Parameters
    ----------
    config : str, Path or Config
        The clinic's configuration, with a ``[federation]`` section.
    out : Path, optional
        Where to write the share file.

    Returns
    -------
    dict
        The share file's content.
    """
    cfg = config if isinstance(config, Config) else load_config(config)
    raw = read_sources(cfg.sources)
    validation = validate_study(raw)
    sessions = validation.valid("sessions")
    data = analysis_dataset(
        validation.valid("patients"),
        sessions,
        validation.valid("assessments"),
        cfg,
        event_record(sessions, raw["sessions"].events) if cfg.study.sessions else None,
    )
    share = build_share(data, cfg)
    if out is not None:
        write_share(share, out)
    return share


@dataclass(frozen=True)
class PooledAnalysis:
    """The result of pooling share files.

    Attributes
    ----------
    models : list of PooledModel
        The exact pooled fits.
    tables : dict of str to pandas.DataFrame
        Tidy tables (:func:`pipeline.federate.report.pooled_tables`).
    written : dict of str to Path
        Files written (empty when no folder was given).
    """

    models: list[PooledModel]
    tables: dict[str, pd.DataFrame]
    written: dict[str, Path]


def pool_files(
    paths: Sequence[str | Path], out: Path | None = None, *, two_stage_meta: bool = False
) -> PooledAnalysis:
    """Read and check share files, fit the pooled models, optionally meta-analyse and write.

    Parameters
    ----------
    paths : sequence of path
        Share files, one or more per clinic network member.
    out : Path, optional
        Folder for the tables and ``pooled.html``.
    two_stage_meta : bool, default False
        Also meta-analyse the clinics' own fits.

    Returns
    -------
    PooledAnalysis
        Fits, tables and files written.

    Raises
    ------
    pipeline.errors.UserError
        A file that cannot be read, or files that differ in version or specification.
    """
    shares = [(Path(p), read_share(Path(p))) for p in paths]
    models = pool_shares(shares)
    meta = two_stage(shares) if two_stage_meta else None
    written = write_pooled(out, models, shares, meta) if out is not None else {}
    return PooledAnalysis(models, pooled_tables(models, shares, meta), written)
