"""Contracts of the output tables and of the analysis data set (pipeline.schemas)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import report_tables

from pipeline.schemas.analysis import AnalysisContractError, check_analysis
from pipeline.schemas.outputs import (
    MODELS,
    UNPUBLISHED,
    OutputContractError,
    check_output,
    columns,
    for_publication,
)

TABLES = Path(__file__).resolve().parents[2] / "tests" / "expected" / "tables"
# the demo records no adverse-event durations; tests/describe/test_side_effects.py checks the
# table made from the simulator's event table against its contract
NOT_IN_DEMO = {"side_effect_durations"}


@pytest.mark.parametrize("name", sorted(set(MODELS) - NOT_IN_DEMO))
def test_the_published_columns_are_those_of_the_contract(name):
    header = (TABLES / f"{name}.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    published = [c for c in columns(MODELS[name]) if c not in UNPUBLISHED.get(name, ())]
    assert header == published


def test_the_report_fixtures_meet_their_contracts():
    tables = report_tables.run_tables()
    for name in ("contrasts", "fixed_effects", "variance_components", "emmeans", "diagnostics"):
        check_output(name, tables[name])


def test_a_table_that_breaks_its_contract_is_named_with_its_column():
    contrasts = report_tables.contrasts()
    contrasts.loc[0, "kind"] = "slope"  # not a ContrastKind
    with pytest.raises(OutputContractError, match=r"'contrasts'.*kind"):
        check_output("contrasts", contrasts)
    with pytest.raises(OutputContractError, match="p_value"):
        check_output("contrasts", report_tables.contrasts().assign(p_value=1.5))
    with pytest.raises(OutputContractError, match="column"):
        check_output("fixed_effects", report_tables.fixed_effects().drop(columns="df"))


def test_typed_columns_are_not_published():
    contrasts = report_tables.contrasts()
    out = for_publication("contrasts", contrasts)
    assert "kind" in contrasts and "kind" not in out and "within" not in out
    assert list(for_publication("fixed_effects", report_tables.fixed_effects())) == list(
        report_tables.fixed_effects()
    )


def test_the_analysis_data_set_contract(demo_data):
    check_analysis(demo_data)
    broken = demo_data.copy()
    broken.loc[broken.index[0], "nrs"] = 11.0  # NRS is 0-10
    with pytest.raises(AnalysisContractError, match="nrs"):
        check_analysis(broken)
    with pytest.raises(AnalysisContractError, match="instrument"):
        check_analysis(demo_data.drop(columns="odi_change"))


def test_a_table_without_a_contract_passes_unchecked():
    check_output("quarantine_reasons", pd.DataFrame({"anything": [1]}))
