import math

import pandas as pd
import pytest

from pipeline.describe.table_one import (
    MISSING,
    std_diff_binary,
    std_diff_categorical,
    std_diff_continuous,
    table_one,
)


def test_continuous_standardised_difference_by_hand():
    # means 2.5 and 4, variances 5/3 and 4: (2.5 - 4) / sqrt((5/3 + 4) / 2)
    value = std_diff_continuous(pd.Series([1, 2, 3, 4]), pd.Series([2, 4, 6, None]))
    assert value == pytest.approx(-1.5 / math.sqrt((5 / 3 + 4) / 2))
    assert value == pytest.approx(-0.891133, abs=1e-6)


def test_binary_standardised_difference_by_hand():
    # Yang & Dalton (2012): (0.3 - 0.1) / sqrt((0.3 * 0.7 + 0.1 * 0.9) / 2) = 0.2 / sqrt(0.15)
    assert std_diff_binary(0.3, 0.1) == pytest.approx(0.516398, abs=1e-6)
    assert math.isnan(std_diff_binary(0.0, 0.0))


def test_categorical_standardised_difference_by_hand():
    # T = (0.3, 0.2), C = (0.4, 0.2): S = [[0.225, -0.07], [-0.07, 0.16]], det = 0.0311,
    # d^2 = 0.01 * 0.16 / 0.0311
    value = std_diff_categorical([0.5, 0.3, 0.2], [0.4, 0.4, 0.2])
    assert value == pytest.approx(math.sqrt(0.01 * 0.16 / 0.0311))
    assert value == pytest.approx(0.226819, abs=1e-6)
    # two categories: the absolute binary difference; an empty category is left out
    assert std_diff_categorical([0.7, 0.3, 0.0], [0.9, 0.1, 0.0]) == pytest.approx(
        abs(std_diff_binary(0.3, 0.1))
    )


@pytest.fixture
def people():
    return pd.DataFrame(
        {
            "patient_id": [f"P{i}" for i in range(8)],
            "depth": pd.Categorical(
                ["superficial"] * 3 + ["deep"] * 5, categories=["superficial", "deep"]
            ),
            "twitch": pd.Categorical(
                ["no twitch", "twitch", None, "twitch", "twitch", "no twitch", "twitch", "twitch"],
                categories=["no twitch", "twitch"],
            ),
            "age": [30, 40, 50, 20, 30, 40, 50, 60],
            "sex": ["female", "male", None, "female", "female", "male", "other", "female"],
            "chronicity": pd.Categorical(
                ["acute", "chronic", "chronic", "acute", "acute", "acute", "chronic", "chronic"],
                categories=["acute", "subacute", "chronic"],
            ),
            "site": ["A", "B", "A", "B", "B", "B", "A", "A"],
            "symptom_weeks": [2, 30, 40, 1, 3, 5, 20, 50],
            "nrs_baseline": [7, 6, None, 8, 7, 6, 5, 7],
            "contraindicated": [False, True, False, False, False, False, True, False],
            "pregnant": pd.array([False, None, False, False, False, False, True, False]),
        }
    )


def test_table_one_counts_and_percentages(people):
    table, diffs = table_one(people, ("depth", "twitch"))
    depth = table[table["factor"] == "depth"]
    sizes = depth[depth["kind"] == "patients"].set_index("level")["n"].to_dict()
    assert sizes == {"superficial": 3, "deep": 5}
    sex = depth[depth["variable"] == "sex"].set_index(["category", "level"])
    assert sex.loc[("female", "deep"), "n"] == 3
    assert sex.loc[("female", "deep"), "percent"] == pytest.approx(60.0)
    assert sex.loc[(MISSING, "superficial"), "n"] == 1  # a missing value is its own category
    # every categorical variable adds up to the group size, subacute (empty) included
    for variable in ("sex", "chronicity", "site"):
        part = depth[depth["variable"] == variable].groupby("level")["n"].sum().to_dict()
        assert part == sizes, variable
    nrs = depth[depth["variable"] == "nrs_baseline"].set_index("level")
    assert nrs.loc["superficial", "n"] == 2 and nrs.loc["superficial", "mean"] == 6.5
    weeks = depth[depth["variable"] == "symptom_weeks"].set_index("level")
    assert weeks.loc["deep", ["median", "q1", "q3"]].tolist() == [5.0, 3.0, 20.0]
    pregnant = depth[depth["variable"] == "pregnant"].set_index("level")
    assert pregnant["n"].to_dict() == {"superficial": 0, "deep": 1}  # missing counted as no
    # the twitch grouping leaves out the patient whose twitch group is unknown
    twitch = table[(table["factor"] == "twitch") & (table["kind"] == "patients")]
    assert twitch["n"].sum() == 7
    d = diffs.set_index(["factor", "variable"])["std_diff"]
    deep_age = [20, 30, 40, 50, 60]
    assert d[("depth", "age")] == pytest.approx(
        std_diff_continuous(pd.Series(deep_age), pd.Series([30, 40, 50]))
    )
    assert d[("depth", "contraindicated")] == pytest.approx(std_diff_binary(1 / 5, 1 / 3))
