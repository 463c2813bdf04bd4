"""Contract of the analysis data set: one row per valid assessment, derived (SAP §2–§4).

:func:`pipeline.derive.dataset.analysis_dataset` builds it; the models, the descriptive tables
and the report read it; the runner checks it against :class:`AnalysisData` before writing
``analysis.parquet``. Columns beyond those declared here may be added (``strict = False``), but
every declared column must be there with its type and range.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaError, SchemaErrors
from pandera.typing import Series

from pipeline.schemas.columns import INSTRUMENT_COLUMNS

DEPTH_LEVELS = ["superficial", "deep"]
TWITCH_LEVELS = ["no twitch", "twitch"]
CHRONICITY_LEVELS = ["acute", "subacute", "chronic"]


class AnalysisData(pa.DataFrameModel):
    """The analysis data set (identified: ``patient_id`` is pseudonymised when written)."""

    patient_id: Series[str] = pa.Field(description="Patient identifier.")
    visit: Series[pd.Int64Dtype] = pa.Field(ge=0, description="Visit number, 0 = baseline.")
    weeks: Series[float] = pa.Field(nullable=True, description="Weeks since baseline.")
    sessions_completed: Series[int] = pa.Field(ge=0, description="Sessions before the visit.")
    twitch_share_before: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    nrs: Series[float] = pa.Field(nullable=True, ge=0, le=10)
    vas_mm: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    odi: Series[float] = pa.Field(nullable=True, ge=0, le=100)
    site: Series[str]
    age: Series[pd.Int64Dtype] = pa.Field(nullable=True, ge=0)
    chronicity: Series[pa.Category] = pa.Field(nullable=True, isin=CHRONICITY_LEVELS)
    contraindicated: Series[bool]
    protocol_deviation: Series[bool]
    n_sessions: Series[int] = pa.Field(ge=0)
    deep_share: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    twitch_share: Series[float] = pa.Field(nullable=True, ge=0, le=1)
    n_adverse_events: Series[int] = pa.Field(ge=0)
    depth: Series[pa.Category] = pa.Field(nullable=True, isin=DEPTH_LEVELS)
    twitch: Series[pa.Category] = pa.Field(nullable=True, isin=TWITCH_LEVELS)

    class Config:
        """Validation settings."""

        strict = False

    @pa.dataframe_check(error="every instrument has its score, baseline and change columns")
    @classmethod
    def _instrument_columns(cls, frame: pd.DataFrame) -> bool:
        wanted = [
            f"{column}{suffix}"
            for column in INSTRUMENT_COLUMNS.values()
            for suffix in ("", "_baseline", "_change", "_pct_change", "_responder")
        ]
        return all(c in frame.columns for c in wanted)


class AnalysisContractError(ValueError):
    """The analysis data set breaks its contract (a bug in the derivation, not in the data)."""


def check_analysis(frame: pd.DataFrame) -> None:
    """Validate the analysis data set against :class:`AnalysisData`.

    Raises
    ------
    AnalysisContractError
        Naming the first columns and checks that fail.
    """
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
