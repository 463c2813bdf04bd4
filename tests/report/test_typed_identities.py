"""Labels are for people: rewording every label changes no selection.

The Holm primary family, the effect sizes, the report's headline rows, its forest plots and
sensitivity tables, and the small-cell protection of the flow are chosen by typed fields
(``kind``, ``family``, ``question``, ``stage``). These tests reword every label the code
produces (monkeypatched label constants, then every remaining label replaced by a meaningless
one) and check that the selections do not move.
"""

from __future__ import annotations

import pandas as pd
import pytest
import report_tables

from pipeline.analyses import plans as an
from pipeline.analyses import run as pl
from pipeline.analyses.headline import answer_table
from pipeline.config.options import ModelSettings
from pipeline.config.study import Study, legacy_outcomes
from pipeline.privacy.suppression import publish_tables
from pipeline.report.sections.common import fit_flags
from pipeline.report.sections.outcomes import forest_rows
from pipeline.report.sections.sensitivity import sensitivity_section
from pipeline.schemas.identity import AnalysisKind, ContrastKind, Family, identify, plan_identities

REWORDED = {
    "SLOPE_LABEL": "{name}: Steigungsunterschied je {unit}{suffix}",
    "VISIT_LABEL": "{name} @ Termin {visit}{suffix}",
}


def _fit_some(data: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """A primary, a secondary and a sensitivity analysis of NRS, combined (fast settings)."""
    settings = ModelSettings(df_method="z", random_slope=False)
    subset, note = an.completers(data)
    plans = [
        an.trajectory_plan(data, "nrs", "depth", settings),
        an.trajectory_plan(data, "nrs", "twitch", settings),
        an.change_plan(data, "nrs", "depth", settings),
        an.trajectory_plan(subset, "nrs", "depth", settings, population="completers", notes=[note]),
    ]
    return pl.combine(pl.run_analyses(plans, "z", workers=1))


@pytest.fixture(scope="module")
def both_wordings(demo_data) -> tuple[dict, dict]:
    plain = _fit_some(demo_data)
    with pytest.MonkeyPatch.context() as patch:
        for name, text in REWORDED.items():
            patch.setattr(an, name, text)
        reworded = _fit_some(demo_data)
    return plain, reworded


def _numbers(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    return frame[columns].reset_index(drop=True)


def test_rewording_the_contrast_labels_changes_no_family_and_no_effect_size(both_wordings):
    plain, reworded = both_wordings
    a, b = plain["contrasts"], reworded["contrasts"]
    # the labels did change ...
    assert not a["contrast"].str.contains("Steigung").any()
    assert b.loc[b["kind"] == ContrastKind.SLOPE, "contrast"].str.contains("Steigung").all()
    # ... and nothing chosen from them did
    keys = ["analysis", "outcome", "question", "kind", "visit", "estimate", "family", "p_holm"]
    pd.testing.assert_frame_equal(_numbers(a, keys), _numbers(b, keys))
    primary = a[a["family"] == Family.PRIMARY]
    # no session-level or joint fit here: depth's slope difference is the one headline
    assert primary["analysis"].tolist() == ["trajectory_depth"]
    assert (primary["kind"] == ContrastKind.SLOPE).all()
    # the sensitivity analysis is fitted without its likelihood-ratio tests
    assert "sensitivity_completers_depth" not in set(plain["model_comparison"]["analysis"])
    sizes = ["analysis", "outcome", "estimate", "effect_size"]
    pd.testing.assert_frame_equal(
        _numbers(plain["effect_sizes"], sizes), _numbers(reworded["effect_sizes"], sizes)
    )


def _scrambled(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every label replaced by a meaningless one (same label, same replacement)."""
    out = dict(tables)
    labels = {text: f"label {i}" for i, text in enumerate(tables["contrasts"]["contrast"].unique())}
    out["contrasts"] = tables["contrasts"].assign(contrast=lambda t: t["contrast"].map(labels))
    if "effect_sizes" in tables:
        out["effect_sizes"] = tables["effect_sizes"].assign(
            contrast=lambda t: t["contrast"].map(labels)
        )
    if "flow" in tables:
        out["flow"] = tables["flow"].assign(label=[f"step {i}" for i in range(len(tables["flow"]))])
    return out


def test_the_report_selects_the_same_rows_from_reworded_tables(both_wordings):
    plain, _ = both_wordings
    for tables in (plain, report_tables.run_tables()):
        scrambled = _scrambled(tables)
        study = Study(outcomes=legacy_outcomes(report_tables.MCID))
        before = answer_table(tables, study, visit=4)
        after = answer_table(scrambled, study, visit=4)
        assert len(before)
        pd.testing.assert_frame_equal(before, after)
        for factor in ("depth", "twitch"):
            pd.testing.assert_frame_equal(
                forest_rows(tables["contrasts"], factor),
                forest_rows(scrambled["contrasts"], factor),
            )
        flags = fit_flags(tables.get("diagnostics"))
        one = sensitivity_section(tables, flags)
        two = sensitivity_section(scrambled, flags)
        assert (one is None) == (two is None)
        if one is not None:
            rows = [[row[:2] + row[3:] for row in block.rows] for block in one.blocks[:-1]]
            assert rows == [[row[:2] + row[3:] for row in block.rows] for block in two.blocks[:-1]]


def test_the_flow_is_protected_the_same_whatever_its_labels():
    accounting, _, flow = report_tables.accounting()
    flow = flow.assign(patients=[241, 3, 3, 238, 2, 236, 236, 173, 230])
    scrambled = flow.assign(label=[f"step {i}" for i in range(len(flow))])
    a = publish_tables({"row_accounting": accounting, "flow": flow}, 5)
    b = publish_tables({"row_accounting": accounting, "flow": scrambled}, 5)
    assert a["flow"]["patients"].tolist() == b["flow"]["patients"].tolist()
    # totals of the flow are never hidden (pipeline.privacy.suppression): both stay whole
    assert a["flow"]["patients"].tolist() == flow["patients"].tolist()


def test_every_analysis_name_of_the_plan_reads_back_as_its_identity():
    for identity in plan_identities():
        assert identify(identity.name) == identity
    assert identify("my_own_model") is None
    kinds = {i.kind for i in plan_identities()}
    assert kinds == set(AnalysisKind)
