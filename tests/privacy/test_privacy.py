import numpy as np
import pandas as pd
import pytest

from pipeline.config.options import PrivacySettings
from pipeline.derive.dataset import time_zero
from pipeline.errors import UserError
from pipeline.privacy.audit import PRIMARY, Audit
from pipeline.privacy.cells import CellGrid
from pipeline.privacy.pseudonyms import (
    DEMO_KEY,
    PSEUDONYM_LENGTH,
    PseudonymKey,
    deidentify,
    load_key,
    pseudonyms,
)
from pipeline.privacy.suppression import COMPLEMENTARY, for_csv, protect, publish_tables

KEY = PseudonymKey(b"a test key of more than sixteen bytes", "test")


# --- the key ---------------------------------------------------------------------------------


def test_key_comes_from_the_environment_first(tmp_path):
    key_file = tmp_path / "pseudonym.key"
    key_file.write_text("a key from the key file, long enough\n")
    settings = PrivacySettings(key_file=key_file, demo_key=True)
    env = {"NEEDLING_PSEUDONYM_KEY": "  a key from the environment  "}
    key = load_key(settings, env)
    assert key.secret == b"a key from the environment"
    assert "NEEDLING_PSEUDONYM_KEY" in key.source
    key = load_key(settings, {})
    assert key.secret == b"a key from the key file, long enough"
    assert key.source == "key file pseudonym.key"
    assert "secret" not in repr(key) and "long enough" not in repr(key)


def test_demo_key_only_when_asked_for_and_no_key_is_one_sentence(tmp_path):
    assert load_key(PrivacySettings(demo_key=True), {}).secret == DEMO_KEY
    with pytest.raises(UserError, match="no pseudonym key: set the environment variable") as err:
        load_key(PrivacySettings(), {})
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="shorter than 16 characters"):
        load_key(PrivacySettings(), {"NEEDLING_PSEUDONYM_KEY": "short"})
    with pytest.raises(UserError, match="cannot be read"):
        load_key(PrivacySettings(key_file=tmp_path / "absent.key"), {})


# --- pseudonyms and dates --------------------------------------------------------------------


def test_pseudonym_is_truncated_hmac_sha256():
    # RFC 4231, test case 2: HMAC-SHA256(key "Jefe", "what do ya want for nothing?")
    full = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    out = pseudonyms(pd.Series(["what do ya want for nothing?"]), PseudonymKey(b"Jefe", "rfc"))
    assert out.iloc[0] == full[:PSEUDONYM_LENGTH]


def test_pseudonyms_are_stable_keyed_and_ignore_surrounding_space():
    ids = pd.Series(["P1", " P1 ", "P2", None])
    out = pseudonyms(ids, KEY)
    assert out.iloc[0] == out.iloc[1] != out.iloc[2]
    assert pd.isna(out.iloc[3])
    other = pseudonyms(ids, PseudonymKey(b"another key of sixteen bytes", "test"))
    assert other.iloc[0] != out.iloc[0]
    assert out.iloc[0] not in ("P1",) and len(out.iloc[0]) == PSEUDONYM_LENGTH


def test_each_identifier_is_hashed_once_per_key_and_a_new_key_starts_afresh(monkeypatch):
    import pipeline.privacy.pseudonyms as module

    module._KNOWN.clear()  # (whatever earlier tests made)
    calls = []
    real = module.hmac.new
    monkeypatch.setattr(
        module.hmac, "new", lambda key, msg, digest: calls.append(msg) or real(key, msg, digest)
    )
    other = PseudonymKey(b"another key of sixteen bytes", "test")
    ids = pd.Series(["Q1", "Q2", "Q1"])
    first = pseudonyms(ids, KEY)
    again = pseudonyms(pd.Series(["Q2", "Q3"]), KEY)  # a second table of the same run
    assert calls == [b"Q1", b"Q2", b"Q3"]
    assert again.iloc[0] == first.iloc[1]
    changed = pseudonyms(ids, other)
    assert calls[3:] == [b"Q1", b"Q2"] and changed.iloc[0] != first.iloc[0]
    # back to the first key: its pseudonyms again, made afresh (one key's memo at a time)
    assert pseudonyms(ids, KEY).tolist() == first.tolist()


def test_deidentify_replaces_ids_and_dates_by_pseudonym_and_days():
    assessments = pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2"],
            "visit": [0, 1, 1],
            "assessment_date": pd.to_datetime(["2025-01-06", "2025-01-20", "2025-02-03"]),
        }
    )
    sessions = pd.DataFrame(
        {
            "patient_id": ["P1", "P2", "P2"],
            "session_date": pd.to_datetime(["2025-01-06", "2025-01-31", "2025-01-28"]),
        }
    )
    # P1: baseline assessment; P2 has none, so its first session (28 January)
    zero = time_zero(assessments, sessions)
    assert zero.to_dict() == {
        "P1": pd.Timestamp("2025-01-06"),
        "P2": pd.Timestamp("2025-01-28"),
    }
    out = deidentify(assessments, KEY, zero)
    assert list(out.columns) == ["pseudonym", "visit", "assessment_day"]
    assert out["assessment_day"].tolist() == [0, 14, 6]
    assert out["pseudonym"].tolist() == pseudonyms(assessments["patient_id"], KEY).tolist()
    with pytest.raises(ValueError, match="time zero"):
        deidentify(assessments, KEY)


# --- small-cell suppression ------------------------------------------------------------------


def undetermined_by_audit(grid: CellGrid, primary: set, complementary: set) -> bool:
    """No hidden cell has a unique value (exact integer audit)."""
    markers = {k: PRIMARY for k in primary} | {k: "complement" for k in complementary}
    return Audit(grid, markers, 5).findings() == []


def test_protect_leaves_no_small_cell_recoverable_from_a_total():
    grid = CellGrid()
    total = grid.cell("total", 241, ("t", 0, "total"), fixed=True)
    parts = [
        grid.cell(f"p{i}", v, ("t", 0, f"p{i}"), sensitive=True)
        for i, v in enumerate([3, 120, 118, 0])
    ]
    grid.total(total, parts)
    primary, complementary = protect(grid, 5)
    assert primary == {"p0"}
    # the zero is shown (exact); the smallest other count goes
    assert complementary == {"p2"}
    assert undetermined_by_audit(grid, primary, complementary)


def test_protect_covers_hidden_differences():
    # n = responders + non-responders, with 3 non-responders implied by the published counts
    grid = CellGrid()
    n = grid.cell("n", 60, ("t", 0, "n"), sensitive=True)
    r = grid.cell("r", 57, ("t", 0, "responders"), sensitive=True)
    hidden = grid.cell("non", 3, sensitive=True)
    grid.total(n, [r, hidden])
    primary, complementary = protect(grid, 5)
    assert primary == set()
    assert complementary == {"r"}  # the smaller published count goes
    assert undetermined_by_audit(grid, primary, complementary)


def test_row_accounting_and_flow_are_published_as_counted():
    accounting = pd.DataFrame(
        {
            "table": ["patients", "sessions"],
            "file": ["patients.csv", "sessions.csv"],
            "raw_rows": [241, 1050],
            "processed_rows": [240, 1050],
            "quarantined_rows": [1, 0],
            "blank_lines": [0, 2],
        }
    )
    flow = pd.DataFrame(
        {
            "step": ["enrolled", "excluded", "included", "not_treated", "treated", "analysed:nrs"],
            "label": ["e", "x", "i", "n", "t", "a"],
            "patients": [241, 1, 240, 0, 240, 238],
            "stage": ["enrolled", "excluded", "included", "not_treated", "treated", "analysed"],
        }
    )
    out = publish_tables({"row_accounting": accounting, "flow": flow}, 5)
    # overall totals and row counts of files describe the data, not a patient: never hidden
    pd.testing.assert_frame_equal(out["row_accounting"], accounting)
    pd.testing.assert_frame_equal(out["flow"], flow)


def test_responder_block_is_withheld_with_its_small_count():
    responders = pd.DataFrame(
        {
            "outcome": ["nrs"] * 4 + ["vas"] * 4,
            "group": ["depth"] * 8,
            "quantity": ["proportion", "proportion", "risk difference", "odds ratio"] * 2,
            "level": ["superficial", "deep", "deep", "deep"] * 2,
            "reference": ["", "", "superficial", "superficial"] * 2,
            "estimate": [0.5, 0.95, 0.45, 19.0, 0.6, 0.7, 0.1, 1.5],
            "ci_low": [np.nan, np.nan, 0.3, 5.0, np.nan, np.nan, -0.1, 0.8],
            "ci_high": [np.nan, np.nan, 0.6, 70.0, np.nan, np.nan, 0.3, 2.8],
            "p_value": [np.nan, np.nan, 0.001, 0.001, np.nan, np.nan, 0.2, 0.2],
            "n": [40, 60, 100, 100, 40, 60, 100, 100],
            "responders": [20, 57, 77, 77, 24, 42, 66, 66],
            "method": ["m"] * 8,
            "note": [""] * 8,
        }
    )
    out = publish_tables({"responders": responders}, 5)["responders"]
    nrs, vas = out.iloc[:4], out.iloc[4:]
    # 3 deep non-responders (60 - 57): the deep responders or n go, and every estimate with them
    assert {nrs.loc[1, "n"], nrs.loc[1, "responders"]} & {COMPLEMENTARY}
    assert (nrs[["estimate", "ci_low", "ci_high", "p_value"]] == COMPLEMENTARY).all().all()
    # no small count for VAS: shown as computed
    pd.testing.assert_frame_equal(
        vas.astype(str).reset_index(drop=True),
        responders.iloc[4:].astype(str).reset_index(drop=True),
    )


def test_event_rates_withhold_the_rate_of_a_small_count():
    rates = pd.DataFrame(
        {
            "group": ["depth", "depth"],
            "level": ["superficial", "deep"],
            "sessions": [400, 500],
            "events": [3, 60],
            "not_recorded": [0, 0],
            "rate_per_100": [0.75, 12.0],
            "ci_low": [0.15, 9.2],
            "ci_high": [2.2, 15.4],
            "method": ["m", "m"],
            "note": ["", ""],
        }
    )
    out = publish_tables({"adverse_event_rates": rates}, 5)["adverse_event_rates"]
    assert out.loc[0, "events"] == "<5"
    assert out.loc[0, ["rate_per_100", "ci_low", "ci_high"]].tolist() == [COMPLEMENTARY] * 3
    assert out.loc[1, "events"] == 60 and out.loc[0, "not_recorded"] == 0


def test_threshold_zero_publishes_everything_and_unknown_tables_are_refused():
    frame = pd.DataFrame({"table": ["t"], "rows": [1], "check": ["c"], "column": ["x"]})
    out = publish_tables({"quarantine_reasons": frame}, 0)
    pd.testing.assert_frame_equal(out["quarantine_reasons"], frame)
    # rows quarantined per rule are row counts of a file: never hidden
    assert (
        publish_tables({"quarantine_reasons": frame}, 5)["quarantine_reasons"].loc[0, "rows"] == 1
    )
    with pytest.raises(ValueError, match="no small-cell rule"):
        publish_tables({"new_table": frame}, 5)


def test_suppressed_columns_keep_the_csv_float_format():
    frame = pd.DataFrame({"x": pd.array([1 / 3, "[c]", np.nan], dtype=object), "y": [1, 2, 3]})
    text = for_csv(frame).to_csv(index=False, lineterminator="\n", float_format="%.10g")
    assert text == "x,y\n0.3333333333,1\n[c],2\n,3\n"
