"""The clinic's own questions (SAP §4b, issue 17): every table they need, or why not.

:func:`clinic_tables` runs each question's analysis on the run's data and returns its published
tables; a question the data cannot answer gets a row of ``clinic_omitted`` (``question``,
``reason``) instead, which its report section states.
"""

from __future__ import annotations

import pandas as pd

from pipeline.config.settings import Study
from pipeline.describe import sessions_to_response


def clinic_tables(
    data: pd.DataFrame, sessions: pd.DataFrame, study: Study, threshold: int
) -> dict[str, pd.DataFrame]:
    """Tables of the clinic questions, and ``clinic_omitted`` for those not analysable.

    Parameters
    ----------
    data : pandas.DataFrame
        The analysis data set.
    sessions : pandas.DataFrame
        The valid sessions (empty for a study without a session log).
    study : Study
        The study's declarations.
    threshold : int
        The small-cell threshold (curves are cut where fewer patients remain at risk).

    Returns
    -------
    dict of str to pandas.DataFrame
        Tables by name (file stem in ``reports/tables``).
    """
    out: dict[str, pd.DataFrame] = {}
    omitted: list[tuple[str, str]] = []
    reason = sessions_to_response.omission_reason(data, study)
    if reason:
        omitted.append((sessions_to_response.QUESTION, reason))
    else:
        out.update(sessions_to_response.sessions_to_response_tables(data, study, max(1, threshold)))
    if omitted:
        out["clinic_omitted"] = pd.DataFrame(omitted, columns=["question", "reason"])
    return out
