"""Flow of patients through the study, in the spirit of a CONSORT diagram (pure function).

Enrolled (rows of the patients file) → excluded, with the rules their row broke (quarantined
patients) → included (valid patient records) → treated (at least one valid session), or not →
assessed at each visit (a valid assessment at that visit) → analysed (patients in the primary
analysis, from its diagnostics, per outcome).

Each row carries its typed :class:`~pipeline.schemas.identity.FlowStage` (``stage``) and the
visit, outcome or broken rule it is about (``detail``); code selects rows by ``stage``, never by
the ``step`` identifier's prefix or the label. ``stage`` and ``detail`` are not published
(``flow.csv`` keeps ``step, label, patients``).
"""

from __future__ import annotations

import pandas as pd

from pipeline.describe.ids import listed_in
from pipeline.ingest.raw_tables import SOURCE_ROW
from pipeline.schemas.columns import INSTRUMENTS, PATIENT_ID
from pipeline.schemas.identity import AnalysisId, AnalysisKind, FlowStage
from pipeline.schemas.outputs import FLOW_COLUMNS
from pipeline.validate.study import Validation, rule_text

COLUMNS = FLOW_COLUMNS
PRIMARY_ANALYSIS = AnalysisId(AnalysisKind.TRAJECTORY, "depth").name
OUTCOME_LABELS = {name: i.abbreviation for name, i in INSTRUMENTS.items()}


def visit_words(visit: int) -> str:
    """Name a visit for readers: ``baseline (visit 0)``, ``visit 2``."""
    return "baseline (visit 0)" if visit == 0 else f"visit {visit}"


def flow_counts(
    validation: Validation,
    diagnostics: pd.DataFrame | None = None,
    analysis: str = PRIMARY_ANALYSIS,
    has_sessions: bool = True,
) -> pd.DataFrame:
    """Count patients at each step of the flow.

    Parameters
    ----------
    validation : Validation
        The validation result (raw rows, quarantine and failures of every table).
    diagnostics : pandas.DataFrame, optional
        The diagnostics table; its ``n_patients`` for ``analysis`` give the analysed counts.
    analysis : str
        The primary analysis.
    has_sessions : bool, default True
        Whether the study has a session log; without one there are no ``treated`` steps.

    Returns
    -------
    pandas.DataFrame
        ``step, label, patients, stage, detail``. Steps: ``enrolled``, ``excluded``, one
        ``excluded:<check>:<column>`` per rule broken by an excluded patient's row (a row can
        break several; stage ``exclusion_reason``, detail ``<check>:<column>``), ``included``,
        ``not_treated``, ``treated``, ``assessed:<visit>`` (stage ``assessed``, detail the
        visit) and ``analysed:<outcome>`` (stage ``analysed``, detail the outcome).
    """
    patients = validation.tables["patients"]
    valid = patients.valid
    sessions = validation.valid("sessions")
    assessments = validation.valid("assessments")
    rows = [
        (
            "enrolled",
            "Patients enrolled (rows of the patients file)",
            patients.raw_rows,
            FlowStage.ENROLLED,
            None,
        ),
        (
            "excluded",
            "Excluded: patient record broke the data contract",
            len(patients.quarantine),
            FlowStage.EXCLUDED,
            None,
        ),
    ]
    failures = validation.failures
    failures = failures[failures["table"] == "patients"]
    reasons = (
        failures.groupby(["check", "column"], sort=True)[SOURCE_ROW]
        .nunique()
        .reset_index()
        .sort_values([SOURCE_ROW, "check"], ascending=[False, True], kind="stable")
    )
    for r in reasons.itertuples(index=False):
        rule = f"{r.check}:{r.column}"
        rows.append(
            (
                f"excluded:{rule}",
                rule_text(r.check, r.column),
                getattr(r, SOURCE_ROW),
                FlowStage.EXCLUSION_REASON,
                rule,
            )
        )
    treated = listed_in(valid[PATIENT_ID], sessions[PATIENT_ID])
    rows.append(("included", "Valid patient records", len(valid), FlowStage.INCLUDED, None))
    if has_sessions:
        rows += [
            (
                "not_treated",
                "No valid needling session",
                int((~treated).sum()),
                FlowStage.NOT_TREATED,
                None,
            ),
            (
                "treated",
                "Treated: at least one valid needling session",
                int(treated.sum()),
                FlowStage.TREATED,
                None,
            ),
        ]
    by_visit = assessments.groupby("visit", sort=True)[PATIENT_ID].nunique()
    for visit, count in by_visit.items():
        rows.append(
            (
                f"assessed:{visit}",
                f"Assessed at {visit_words(visit)}",
                int(count),
                FlowStage.ASSESSED,
                int(visit),
            )
        )
    if diagnostics is not None and not diagnostics.empty:
        primary = diagnostics[diagnostics["analysis"] == analysis]
        if "status" in primary:
            primary = primary[primary["status"] == "ok"]
        for r in primary.itertuples(index=False):
            label = OUTCOME_LABELS.get(r.outcome, r.outcome)
            rows.append(
                (
                    f"analysed:{r.outcome}",
                    f"Analysed, {label}",
                    int(r.n_patients),
                    FlowStage.ANALYSED,
                    r.outcome,
                )
            )
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["stage"] = out["stage"].map(str)
    out["patients"] = out["patients"].astype("int64")
    return out
