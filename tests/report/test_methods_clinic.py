"""The Methods list names each clinic question the run answered, and only those (issue 17)."""

import pandas as pd

from pipeline.report.sections.methods import CLINIC_METHODS, _clinic_items


def test_each_answered_clinic_question_has_one_methods_item():
    answered = {"sessions_to_response", "immediate_relief", "side_effect_rates"}
    tables = {name: pd.DataFrame({"x": [1]}) for name in answered}
    tables["durability"] = pd.DataFrame({"x": []})  # written but empty: not answered
    items = dict(_clinic_items(tables))
    expected = {item for name, item, _ in CLINIC_METHODS if name in answered}
    assert set(items) == expected and len(expected) == 3
    assert "Kaplan–Meier" in items["Sessions to response (§4b)"]
    assert all(len(text) < 600 for text in items.values())


def test_no_clinic_item_without_its_table():
    assert _clinic_items({}) == []
