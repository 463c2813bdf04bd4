"""Contract of the analysis data set: one row per valid assessment, derived (SAP §2–§4).

:func:`pipeline.derive.dataset.analysis_dataset` builds it; the models, the descriptive tables
and the report read it; the runner checks it against :class:`AnalysisData` before writing
``analysis.parquet``. Columns beyond those declared here may be added (``strict = False``), but
every declared column must be there with its type and range.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors
from pandera.typing import Series

from pipeline.schemas.columns import INSTRUMENT_COLUMNS
from pipeline.schemas.frameworks import pandas_first

pandas_first()  # (before any model below is built; see the module)

DEPTH_LEVELS = ["superficial", "deep"]
TWITCH_LEVELS = ["no twitch", "twitch"]
CHRONICITY_LEVELS = ["acute", "subacute", "chronic"]


class AnalysisData(pa.DataFrameModel):
    """The analysis data set (identified: ``patient_id`` is pseudonymised when written)."""

    patient_id: Series[str] = pa.Field(description="Patient identifier.")
    visit: Series[pd.Int64Dtype] = pa.Field(ge=0, description="Visit number, 0 = baseline.")
    weeks: Series[float] = pa.Field(nullable=True, description="Weeks since baseline.")
    co_intervention_started: Optional[Series[pd.BooleanDtype]] = pa.Field(  # noqa: UP045
        nullable=True,
        description="A co-intervention or medication started since the previous assessment "
        "(an intercurrent event); missing where not asked.",
    )
    sessions_completed: Series[int] = pa.Field(ge=0, description="Sessions before the visit.")
    twitch_share_before: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    # the needling default's outcomes; a declared design has its own (check_analysis)
    nrs: Optional[Series[float]] = pa.Field(nullable=True, ge=0, le=10)  # noqa: UP045
    vas_mm: Optional[Series[float]] = pa.Field(nullable=True, ge=0, le=100)  # noqa: UP045
    odi: Optional[Series[float]] = pa.Field(nullable=True, ge=0, le=100)  # noqa: UP045
    site: Series[str]
    age: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    chronicity: Series[pa.Category] = pa.Field(nullable=True, isin=CHRONICITY_LEVELS)
    contraindicated: Series[pd.BooleanDtype] = pa.Field(
        nullable=True, description="Missing where no contraindication flag was recorded."
    )
    protocol_deviation: Series[pd.BooleanDtype] = pa.Field(
        nullable=True, description="Missing where not recorded."
    )
    n_sessions: Series[int] = pa.Field(ge=0)
    deep_share: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    twitch_share: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    n_adverse_events: Series[int] = pa.Field(ge=0)
    depth: Series[pa.Category] = pa.Field(nullable=True, isin=DEPTH_LEVELS)
    twitch: Series[pa.Category] = pa.Field(nullable=True, isin=TWITCH_LEVELS)

    class Config:
        """Validation settings."""

        strict = False


class AnalysisContractError(ValueError):
    """The analysis data set breaks its contract (a bug in the derivation, not in the data)."""


def check_analysis(
    frame: pd.DataFrame, outcomes: Sequence[str] = tuple(INSTRUMENT_COLUMNS.values())
) -> None:
    """Validate the analysis data set against :class:`AnalysisData`.

    Parameters
    ----------
    frame : pandas.DataFrame
        The analysis data set.
    outcomes : sequence of str
        Columns of the study's outcomes (NRS, VAS and ODI by default): each must come with its
        baseline, change, percent change and responder columns.

    Raises
    ------
    AnalysisContractError
        Naming the first columns and checks that fail.
    """
    wanted = [
        f"{column}{suffix}"
        for column in outcomes
        for suffix in ("", "_baseline", "_change", "_pct_change", "_responder")
    ]
    missing = [c for c in wanted if c not in frame.columns]
    if missing:
        raise AnalysisContractError(
            f"the analysis data set breaks its contract: no column {missing[0]} (every outcome "
            f"instrument has its score, baseline and change columns)"
        )
    try:
        AnalysisData.validate(frame, lazy=True)
    except (SchemaError, SchemaErrors) as exc:
        where = failures(exc)
        raise AnalysisContractError(f"the analysis data set breaks its contract: {where}") from exc


def failures(exc: SchemaError | SchemaErrors) -> str:
    """Summarise a pandera failure as ``column: check`` pairs (the first five)."""
    cases = getattr(exc, "failure_cases", None)
    if not isinstance(cases, pd.DataFrame):
        return str(exc)
    first = cases.drop_duplicates(["column", "check"]).head(5)
    return "; ".join(f"{r['column']}: {r['check']}" for r in first.to_dict("records"))
