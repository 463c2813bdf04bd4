"""Word and lay out the report from the run's published tidy tables.

The runner computes the tables, applies small-cell suppression and passes them here; this module
only selects rows, words sentences from the numbers, formats cells and draws the figures. No
number shown is recomputed from the data (the individual-trajectory panel draws a sample of the
analysis data set, without identifiers).

A section is built only from the tables it needs: when a run has not produced a table (a
model that was not fitted, a table not yet part of the pipeline), the sections and blocks that
depend on it are left out rather than shown empty.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config.settings import Config
from pipeline.derive.dataset import INSTRUMENT_COLUMNS
from pipeline.describe import summaries
from pipeline.ingest.raw_tables import RawTable, sha256_of
from pipeline.report import design, provenance
from pipeline.report import figures as report_figures
from pipeline.report.html import (
    MISSING,
    Block,
    Figure,
    Heading,
    Paragraph,
    ReportContent,
    Section,
    Table,
    fmt,
    fmt_ci,
    fmt_p,
    png,
    sig,
    table,
)

TITLE = "Dry needling for low back pain: outcome report"
OUTCOMES = {"nrs": "NRS pain (0–10)", "vas": "VAS pain (mm)", "odi": "ODI (%)"}
SHORT = {"nrs": "NRS", "vas": "VAS (mm)", "odi": "ODI (%)"}
OUTCOME_WORDS = {"nrs": "NRS pain", "vas": "VAS pain", "odi": "ODI disability"}
UNITS = {"nrs": "points", "vas": "mm", "odi": "points"}


@dataclass(frozen=True)
class Question:
    """One question of the plan: a patient-level grouping and its two levels."""

    factor: str
    number: int
    title: str
    level: str
    reference: str
    level_words: str
    reference_words: str


QUESTIONS = (
    Question(
        "twitch",
        1,
        "Twitch response: twitch vs no twitch",
        "twitch",
        "no twitch",
        "a twitch response elicited",
        "without one",
    ),
    Question(
        "depth",
        2,
        "Needling depth: superficial vs deep",
        "deep",
        "superficial",
        "deep needling",
        "superficial needling",
    ),
)
FACTOR_LABELS = {"depth": "Needling depth", "twitch": "Twitch response"}
ANALYSIS_WORDS = {
    "trajectory": "Trajectory model",
    "change": "Change from baseline",
    "session": "Session-level model",
    "joint": "Joint model (depth and twitch)",
    "subgroup": "Subgroup",
    "sensitivity": "Sensitivity",
}
MAIN_KINDS = ("trajectory", "change", "session", "joint")
SUPPRESSION_NOTE = (
    "{marker}: a count from 1 to {below} (suppressed); [c]: withheld so that a suppressed count "
    "cannot be worked out from the other numbers of the table."
)


# ---------------------------------------------------------------------------------------------
# small helpers


def analysis_label(name: str) -> str:
    """Name an analysis for readers.

    ``sensitivity_completers_depth`` becomes "Sensitivity: completers, depth".
    """
    kind, _, rest = name.partition("_")
    words = ANALYSIS_WORDS.get(kind, kind.capitalize())
    if kind == "joint":
        return words
    parts = rest.split("_") if rest else []
    factor = parts.pop() if parts and parts[-1] in FACTOR_LABELS else ""
    detail = " ".join(parts)
    if kind == "session":
        return f"{words}, {factor or detail}" if (factor or detail) else words
    if detail:
        words = f"{words}: {detail}" if kind in ("sensitivity",) else f"{words} by {detail}"
    return f"{words}, {factor}" if factor else words


def _kind(analysis: str) -> str:
    return analysis.partition("_")[0]


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "1")
    return bool(value) if value is not None and value is not pd.NA else False


def _present(tables: Mapping[str, pd.DataFrame], *names: str) -> bool:
    return all(name in tables and not tables[name].empty for name in names)


def _number(value: Any) -> float:
    """Return a float, or NaN for a suppression marker or a missing value."""
    if isinstance(value, str) or value is None or value is pd.NA:
        return math.nan
    return float(value)


def _signed(value: float, digits: int) -> str:
    return fmt(float(value), digits) if value < 0 else "+" + fmt(float(value), digits)


def fit_flags(diagnostics: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """Short fit status per ``(analysis, outcome)``: ``ok`` or what to look at."""
    flags: dict[tuple[str, str], str] = {}
    if diagnostics is None:
        return flags
    for row in diagnostics.to_dict(orient="records"):
        notes = []
        if str(row.get("status", "ok")) not in ("ok", "nan", MISSING):
            notes.append(str(row["status"]))
        else:
            if "converged" in row and not _truthy(row["converged"]):
                notes.append("not converged")
            if _truthy(row.get("boundary")):
                notes.append("boundary fit")
            fallback = row.get("fallback")
            if isinstance(fallback, str) and fallback.strip():
                notes.append("random slope dropped")
        flags[(row["analysis"], row["outcome"])] = "; ".join(notes) or "ok"
    return flags


# ---------------------------------------------------------------------------------------------
# the answers: primary effects and the sentences that word them


def primary_effects(tables: Mapping[str, pd.DataFrame], time_column: str) -> pd.DataFrame:
    """Select the difference in slopes answering each question, per outcome.

    From ``contrasts`` (family ``primary``, with Holm-adjusted p) when the run has them, else
    from the interaction term of the trajectory models in ``fixed_effects`` (unadjusted p).

    Returns
    -------
    pandas.DataFrame
        ``question, outcome, analysis, estimate, ci_low, ci_high, p, adjusted``.
    """
    columns = ["question", "outcome", "analysis", "estimate", "ci_low", "ci_high", "p", "adjusted"]
    rows = []
    if _present(tables, "contrasts") and "family" in tables["contrasts"]:
        contrasts = tables["contrasts"]
        chosen = contrasts[contrasts["family"].astype(str) == "primary"]
        for r in chosen.to_dict(orient="records"):
            holm = _number(r.get("p_holm"))
            rows.append(
                {
                    "question": r["question"],
                    "outcome": r["outcome"],
                    "analysis": r["analysis"],
                    "estimate": r["estimate"],
                    "ci_low": r["ci_low"],
                    "ci_high": r["ci_high"],
                    "p": holm if not math.isnan(holm) else r["p_value"],
                    "adjusted": not math.isnan(holm),
                }
            )
    elif _present(tables, "fixed_effects"):
        fe = tables["fixed_effects"]
        for q in QUESTIONS:
            term = f"{time_column}:{q.factor}[T.{q.level}]"
            chosen = fe[(fe["analysis"] == f"trajectory_{q.factor}") & (fe["term"] == term)]
            for r in chosen.to_dict(orient="records"):
                rows.append(
                    {
                        "question": q.factor,
                        "outcome": r["outcome"],
                        "analysis": r["analysis"],
                        "estimate": r["estimate"],
                        "ci_low": r["ci_low"],
                        "ci_high": r["ci_high"],
                        "p": r["p_value"],
                        "adjusted": False,
                    }
                )
    return pd.DataFrame(rows, columns=columns)


def slope_sentence(effect: Mapping[str, Any], question: Question, time_unit: str) -> str:
    """Word one difference in slopes as a plain sentence.

    Parameters
    ----------
    effect : mapping
        A row of :func:`primary_effects`.
    question : Question
        The question it answers.
    time_unit : str
        ``week`` or ``session``.

    Returns
    -------
    str
        E.g. "NRS pain fell faster with deep needling than with superficial needling: by 0.102
        points per week more (95 % CI 0.064 to 0.140; Holm-adjusted p < 0.001)."
    """
    outcome = effect["outcome"]
    words, unit = OUTCOME_WORDS.get(outcome, outcome), UNITS.get(outcome, "points")
    est, low, high = (float(effect[k]) for k in ("estimate", "ci_low", "ci_high"))
    p_words = ("Holm-adjusted p" if effect["adjusted"] else "p") + (
        " < 0.001" if fmt_p(effect["p"]) == "< 0.001" else f" = {fmt_p(effect['p'])}"
    )
    who = f"with {question.level_words} than {question.reference_words}"
    if question.factor == "depth":
        who = f"with {question.level_words} than with {question.reference_words}"
    if high < 0:
        return (
            f"{words} fell faster {who}: by {fmt(-est, 3)} {unit} per {time_unit} more "
            f"(95 % CI {fmt(-high, 3)} to {fmt(-low, 3)}; {p_words})."
        )
    if low > 0:
        return (
            f"{words} fell more slowly {who}: by {fmt(est, 3)} {unit} per {time_unit} less "
            f"(95 % CI {fmt(low, 3)} to {fmt(high, 3)}; {p_words})."
        )
    return (
        f"{words}: no clear difference in the rate of change {who} (difference in slope "
        f"{_signed(est, 3)} {unit} per {time_unit}, 95 % CI {fmt(low, 3)} to {fmt(high, 3)}, "
        f"which includes no difference; {p_words})."
    )


def mcid_sentence(effect: Mapping[str, Any], horizon: float, points: float, percent: float) -> str:
    """Compare the slope difference accumulated over ``horizon`` weeks with the MCID.

    The MCID (SAP §2) is the smallest change that matters to one patient; the slope difference is
    a group average, so the sentence says where its accumulated interval lies relative to it.
    """
    outcome = effect["outcome"]
    unit = UNITS.get(outcome, "points")
    est, low, high = (float(effect[k]) * horizon for k in ("estimate", "ci_low", "ci_high"))
    largest, smallest = max(abs(low), abs(high)), min(abs(low), abs(high))
    if largest < points:
        where = "the whole interval is smaller than that"
    elif smallest >= points and low * high > 0:
        where = "the whole interval is at least that large"
    else:
        where = "the interval includes that size"
    return (
        f"Over {horizon:g} weeks that adds up to {_signed(est, 1)} {unit} (95 % CI "
        f"{fmt(low, 1)} to {fmt(high, 1)}); the minimal clinically important difference for one "
        f"patient is {points:g} {unit} or {percent:g} % of baseline, and {where}."
    )


def _adjusted_sentence(
    contrasts: pd.DataFrame, question: Question, outcome: str, time_unit: str
) -> str | None:
    """Word the same slope difference in the joint model (adjusted for the other grouping)."""
    joint = contrasts[
        (contrasts["analysis"] == "joint")
        & (contrasts["question"] == question.factor)
        & (contrasts["outcome"] == outcome)
        & contrasts["contrast"].astype(str).str.contains("slope")
    ]
    if joint.empty:
        return None
    r = joint.iloc[0]
    other = "depth" if question.factor == "twitch" else "twitch response"
    unit = UNITS.get(outcome, "points")
    return (
        f"Adjusted for {other} (joint model): {_signed(float(r['estimate']), 3)} {unit} per "
        f"{time_unit} (95 % CI {fmt(float(r['ci_low']), 3)} to {fmt(float(r['ci_high']), 3)})."
    )


def _horizon(tables: Mapping[str, pd.DataFrame]) -> float | None:
    """Weeks from baseline to the last scheduled visit (its mean, rounded)."""
    if not _present(tables, "mean_by_visit"):
        return None
    means = tables["mean_by_visit"]
    last = means[means["visit"] == means["visit"].max()]
    weeks = pd.to_numeric(last["mean_weeks"], errors="coerce").mean()
    return float(round(weeks)) if not math.isnan(weeks) and weeks > 0 else None


# ---------------------------------------------------------------------------------------------
# sections


def _summary(tables: Mapping[str, pd.DataFrame], config: Config) -> Section | None:
    time_axis = config.model.time_axis
    time_unit = "week" if time_axis == "weeks" else "session"
    time_column = "weeks" if time_axis == "weeks" else "sessions_completed"
    effects = primary_effects(tables, time_column)
    if effects.empty:
        return None
    horizon = _horizon(tables) if time_axis == "weeks" else None
    contrasts = tables.get("contrasts")
    blocks: list[Block] = []
    for q in QUESTIONS:
        rows = effects[effects["question"] == q.factor]
        if rows.empty:
            continue
        blocks.append(Heading(f"Question {q.number}. {q.title}"))
        for effect in sorted(
            rows.to_dict(orient="records"), key=lambda r: list(OUTCOMES).index(r["outcome"])
        ):
            text = slope_sentence(effect, q, time_unit)
            if horizon and effect["outcome"] in config.mcid:
                rule = config.mcid[effect["outcome"]]
                text += " " + mcid_sentence(effect, horizon, rule.points, rule.percent)
            if contrasts is not None and not contrasts.empty:
                adjusted = _adjusted_sentence(contrasts, q, effect["outcome"], time_unit)
                text += f" {adjusted}" if adjusted else ""
            blocks.append(Paragraph(text, "headline"))
    adjusted = bool(effects["adjusted"].any())
    blocks.append(
        Paragraph(
            "Each answer is the difference between the groups in the average rate of change per "
            f"{time_unit} (trajectory model, SAP §4.1); negative values mean faster improvement, "
            "since higher scores are worse. "
            + (
                "p-values are adjusted by Holm's method across the primary family (the "
                "difference in slopes for depth and for twitch, three outcomes)."
                if adjusted
                else "p-values are not adjusted for multiplicity."
            )
            + " Groups are patient-level exposures, not randomised arms: differences may reflect "
            "who received what as well as what they received.",
            "note",
        )
    )
    if _present(tables, "adverse_event_rate_ratio"):
        for r in tables["adverse_event_rate_ratio"].to_dict(orient="records"):
            if isinstance(r["rate_ratio"], str):
                continue
            blocks.append(
                Paragraph(
                    f"Safety: adverse events were {fmt(float(r['rate_ratio']), 2)} times as "
                    f"frequent after {r['level']} as after {r['reference']} sessions (95 % CI "
                    f"{fmt_ci(r['ci_low'], r['ci_high'])}); see Safety."
                )
            )
    return Section("summary", "Summary", tuple(blocks))


def _provenance(
    config: Config,
    raw: Mapping[str, RawTable],
    project_root: Path,
    key_source: str,
    versions: Mapping[str, str],
) -> Section:
    files = [(name, *file) for name, table in raw.items() for file in table.file_digests()]
    files += [
        ("REDCap data dictionary", Path(s.dictionary), sha256_of(Path(s.dictionary)))
        for s in config.sources
        if s.kind == "redcap" and s.dictionary
    ]
    files.append(("configuration", config.source, sha256_of(config.source)))
    inputs = provenance.input_files(files)
    m = config.model
    settings = [
        ("Configuration file", config.source.name),
        ("Time axis", m.time_axis),
        ("Degrees of freedom", m.df_method),
        ("Baseline covariates", ", ".join(m.covariates) or "none"),
        ("Random slope for time", "yes" if m.random_slope else "no"),
    ]
    if hasattr(m, "site"):
        settings.append(("Clinic effect", str(m.site)))
    settings += [
        (f"MCID {o.name.upper()}", o.mcid.describe(UNITS.get(o.name, o.unit)))
        for o in config.study.outcomes
    ]
    th = config.thresholds
    settings += [
        ("Deep patient", f"deep needling in at least {th.deep_share:g} of sessions"),
        ("Twitch patient", f"twitch response in at least {th.twitch_share:g} of sessions"),
        (
            "Chronicity",
            f"acute < {th.acute_below_weeks:g} weeks, chronic > {th.chronic_above_weeks:g}",
        ),
        ("ODI unanswered sections allowed", str(th.odi_max_missing_sections)),
        ("Small-cell threshold", str(config.privacy.small_cell_threshold)),
        ("Pseudonym key", key_source),
    ]
    blocks: list[Block] = [
        table(
            inputs,
            [("Input", "role", None), ("File", "file", None), ("SHA-256", "sha256", None)],
            caption="Input files",
        ),
        Table(
            header=("Setting", "Value"),
            rows=tuple(settings),
            numeric=(False, False),
            caption="Configuration",
        ),
        Table(
            header=("Software", "Version"),
            rows=tuple(versions.items()),
            numeric=(False, False),
            caption="Software",
        ),
        Paragraph(
            f"Pipeline commit {provenance.git_commit(project_root)}; report date "
            f"{provenance.run_date()}. The PDF is printed from this HTML by headless Chromium."
        ),
    ]
    return Section("provenance", "Provenance", tuple(blocks))


def _observed_by_visit(means: pd.DataFrame) -> Table:
    """Patients with a value of the first outcome at each visit, by group: the dropout pattern."""
    first = "nrs" if (means["outcome"] == "nrs").any() else str(means["outcome"].iloc[0])
    nrs = means[means["outcome"] == first]
    columns = [(f, g) for f, g in dict.fromkeys(zip(nrs["factor"], nrs["group"], strict=True))]
    rows = []
    for visit in sorted(nrs["visit"].unique()):
        cells = ["baseline" if visit == 0 else f"visit {visit}"]
        for factor, group in columns:
            hit = nrs[(nrs["visit"] == visit) & (nrs["factor"] == factor) & (nrs["group"] == group)]
            cells.append(fmt(hit["n"].iloc[0]) if len(hit) else "0")
        rows.append(tuple(cells))
    return Table(
        header=("Visit", *(f"{g} ({f})" for f, g in columns)),
        rows=tuple(rows),
        numeric=(False, *([True] * len(columns))),
        caption=f"Patients with an {SHORT.get(first, first.upper()).split(' ')[0]} assessment at "
        "each visit, by group (dropout pattern)",
        note="Missing visits are analysed under missing at random: the mixed models use every "
        "available assessment.",
    )


def _data(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    if not _present(tables, "row_accounting"):
        return None
    blocks: list[Block] = []
    if _present(tables, "flow"):
        flow = tables["flow"]
        counts = dict(zip(flow["step"], flow["patients"], strict=True))
        blocks.append(
            Figure(
                png(report_figures.flow_diagram(flow)),
                alt=(
                    f"Flow diagram: {counts.get('enrolled')} patients enrolled, "
                    f"{counts.get('excluded')} excluded, {counts.get('treated')} treated, "
                    + ", ".join(
                        f"{label.lower()} {counts[step]}"
                        for step, label in zip(flow["step"], flow["label"], strict=True)
                        if step.startswith(("assessed:", "analysed:"))
                    )
                ),
                caption="Flow of patients. Excluded patients are those whose record broke the data "
                "contract (a record can break several rules). Counts: " + note,
                anchor="flow",
            )
        )
    blocks.append(
        table(
            tables["row_accounting"],
            [
                ("Table", "table", None),
                ("File", "file", None),
                ("Rows read", "#raw_rows", None),
                ("Valid", "#processed_rows", None),
                ("Quarantined", "#quarantined_rows", None),
                ("Blank lines skipped", "#blank_lines", None),
            ],
            caption="Row accounting: rows read = valid + quarantined",
            note="Every raw row is analysed or quarantined with its reason; nothing is dropped "
            "silently. Quarantined rows are kept, as written, in data/processed/quarantine/ for "
            "the data manager. " + note,
        )
    )
    reasons = tables.get("quarantine_reasons")
    if reasons is not None and not reasons.empty:
        blocks.append(
            table(
                reasons,
                [("Table", "table", None), ("Rule broken", "rule", None), ("Rows", "#rows", None)],
                caption="Most frequent reasons for quarantine (a row can break several rules)",
            )
        )
    elif reasons is not None:
        blocks.append(Paragraph("No row was quarantined."))
    if _present(tables, "mean_by_visit"):
        blocks.append(_observed_by_visit(tables["mean_by_visit"]))
    return Section("data", "Data", tuple(blocks))


def _pct(row: Mapping[str, Any]) -> str:
    n, percent = row["n"], row["percent"]
    if isinstance(n, str):
        return n
    return f"{fmt(n)} ({fmt(percent, 1)} %)" if not isinstance(percent, str) else f"{n} ({percent})"


def _table_one_block(one: pd.DataFrame, diffs: pd.DataFrame, factor: str) -> Table:
    part = one[one["factor"] == factor]
    levels = list(dict.fromkeys(part["level"]))
    sizes = part[part["kind"] == "patients"].set_index("level")["n"]
    header = ("Characteristic", *(f"{lv} (n = {fmt(sizes[lv])})" for lv in levels), "Std. diff.")
    diff = diffs[diffs["factor"] == factor].set_index("variable")["std_diff"]
    rows, groups = [], set()
    for variable in dict.fromkeys(part.loc[part["kind"] != "patients", "variable"]):
        block = part[part["variable"] == variable]
        first = block.iloc[0]
        d = diff.get(variable, math.nan)
        d_text = d if isinstance(d, str) else fmt(_number(d), 2)
        if first["kind"] == "continuous":
            cells = []
            for lv in levels:
                r = block[block["level"] == lv].iloc[0]
                if first["statistic"].startswith("median"):
                    text = f"{fmt(r['median'], 1)} ({fmt(r['q1'], 1)}–{fmt(r['q3'], 1)})"
                else:
                    text = f"{fmt(r['mean'], 1)} ({fmt(r['sd'], 1)})"
                if isinstance(r["n"], str) or r["n"] != sizes[lv]:
                    text += f"; n = {fmt(r['n'])}"
                cells.append(text)
            rows.append((f"{first['label']}, {first['statistic']}", *cells, d_text))
        elif first["kind"] == "binary":
            cells = [_pct(block[block["level"] == lv].iloc[0]) for lv in levels]
            rows.append((f"{first['label']}, n (%)", *cells, d_text))
        else:
            groups.add(len(rows))
            rows.append((f"{first['label']}, n (%)", *([""] * len(levels)), d_text))
            for category in dict.fromkeys(block["category"]):
                cells = [
                    _pct(block[(block["category"] == category) & (block["level"] == lv)].iloc[0])
                    for lv in levels
                ]
                rows.append((f"  {category}", *cells, ""))
    return Table(
        header=header,
        rows=tuple(rows),
        numeric=(False, *([True] * (len(levels) + 1))),
        caption=f"Baseline characteristics by {FACTOR_LABELS.get(factor, factor).lower()}",
        group_rows=frozenset(groups),
        anchor=f"table-one-{factor}",
    )


def _table_one(tables: Mapping[str, pd.DataFrame], note: str) -> Section | None:
    if not _present(tables, "table_one", "table_one_std_diff"):
        return None
    one, diffs = tables["table_one"], tables["table_one_std_diff"]
    blocks: list[Block] = [
        _table_one_block(one, diffs, factor) for factor in dict.fromkeys(one["factor"])
    ]
    blocks.append(
        Paragraph(
            "Patients with at least one valid assessment. Standardised difference: second group "
            "minus the first, in pooled standard deviations (Yang & Dalton 2012; categorical "
            "variables: multinomial, always positive); an absolute value above 0.1 is commonly "
            "read as imbalance. Continuous variables: mean (SD) or median (quartiles); "
            "'n = ' when some values are missing. " + note,
            "note",
        )
    )
    return Section("table-one", "Table 1: baseline characteristics", tuple(blocks))


def _means_table(means: pd.DataFrame, factor: str) -> Table:
    part = means[means["factor"] == factor]
    groups = list(dict.fromkeys(part["group"]))
    rows = []
    for outcome in [o for o in OUTCOMES if o in set(part["outcome"])]:
        for visit in sorted(part.loc[part["outcome"] == outcome, "visit"].unique()):
            cells = [SHORT[outcome], "baseline" if visit == 0 else str(visit)]
            for group in groups:
                hit = part[
                    (part["outcome"] == outcome)
                    & (part["visit"] == visit)
                    & (part["group"] == group)
                ]
                if hit.empty:
                    cells += [MISSING, "0"]
                    continue
                r = hit.iloc[0]
                cells += [f"{fmt(r['mean'], 2)} ({fmt_ci(r['ci_low'], r['ci_high'])})", fmt(r["n"])]
            rows.append(tuple(cells))
    header = ["Outcome", "Visit"]
    for group in groups:
        header += [f"{group}: mean (95 % CI)", "n"]
    return Table(
        header=tuple(header),
        rows=tuple(rows),
        numeric=(False, False, *([True] * (2 * len(groups)))),
        caption=f"Observed means by visit and {FACTOR_LABELS.get(factor, factor).lower()}",
    )


def _emmeans_tables(emmeans: pd.DataFrame, factor: str) -> list[Table]:
    out = []
    part = emmeans[
        (emmeans["factor"] == factor) & emmeans["analysis"].map(lambda a: _kind(a) in MAIN_KINDS)
    ]
    for analysis in dict.fromkeys(part["analysis"]):
        rows_of = part[part["analysis"] == analysis]
        levels = list(dict.fromkeys(rows_of["level"].astype(str)))
        rows = []
        for outcome in [o for o in OUTCOMES if o in set(rows_of["outcome"])]:
            one = rows_of[rows_of["outcome"] == outcome]
            for visit in sorted(one["visit"].unique()):
                at = one[one["visit"] == visit]
                cells = [SHORT[outcome], str(visit), fmt(_number(at["time"].iloc[0]), 1)]
                for level in levels:
                    hit = at[at["level"].astype(str) == level]
                    r = hit.iloc[0] if len(hit) else None
                    cells.append(
                        f"{fmt(r['estimate'], 2)} ({fmt_ci(r['ci_low'], r['ci_high'])})"
                        if r is not None
                        else MISSING
                    )
                rows.append(tuple(cells))
        out.append(
            Table(
                header=("Outcome", "Visit", "Time", *(f"{lv} (95 % CI)" for lv in levels)),
                rows=tuple(rows),
                numeric=(False, True, True, *([True] * len(levels))),
                caption=f"Estimated marginal means: {analysis_label(analysis)}",
            )
        )
    return out


def _contrast_table(
    rows: pd.DataFrame,
    flags: Mapping[tuple[str, str], str],
    caption: str,
    effect_sizes: pd.DataFrame | None = None,
) -> Table:
    """Contrasts with their fit flag and, when the run has them, standardised effect sizes."""
    note = (
        "Fit: 'ok', or the convergence, boundary or fallback flag of the model that gave the "
        "estimate (details under Diagnostics)."
    )
    if effect_sizes is not None and not effect_sizes.empty:
        sizes = effect_sizes[
            ["analysis", "outcome", "contrast", "effect_size", "ci_low", "ci_high"]
        ]
        rows = rows.merge(
            sizes.rename(columns={"ci_low": "es_low", "ci_high": "es_high"}),
            on=["analysis", "outcome", "contrast"],
            how="left",
        )
        note += (
            " Effect size: the difference divided by the "
            f"{effect_sizes['standardiser'].iloc[0]} (differences in slope have none)."
        )

    def digits(r: Mapping[str, Any]) -> int:
        return 3 if "slope" in str(r["contrast"]) else 2

    columns: list[tuple[str, str, Callable | None]] = [
        ("Analysis", "analysis", lambda r: analysis_label(r["analysis"])),
        ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], r["outcome"])),
        ("Contrast", "contrast", None),
        ("Estimate", "#estimate", lambda r: fmt(r["estimate"], digits(r))),
        ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], digits(r))),
        ("df", "#df", lambda r: fmt(r["df"], 1)),
        ("p", "#p_value", lambda r: fmt_p(r["p_value"])),
    ]
    if "p_holm" in rows:
        columns.append(("Holm p", "#p_holm", lambda r: fmt_p(r["p_holm"])))
    if "effect_size" in rows:
        columns.append(
            (
                "Effect size (95 % CI)",
                "#es",
                lambda r: (
                    MISSING
                    if pd.isna(r["effect_size"])
                    else f"{fmt(r['effect_size'])} ({fmt_ci(r['es_low'], r['es_high'])})"
                ),
            )
        )
    columns.append(("Fit", "fit", lambda r: flags.get((r["analysis"], r["outcome"]), MISSING)))
    return table(rows, columns, caption=caption, note=note)


def _forest_rows(contrasts: pd.DataFrame, factor: str) -> pd.DataFrame:
    slopes = contrasts[
        (contrasts["question"] == factor) & contrasts["contrast"].astype(str).str.contains("slope")
    ]
    rows = []
    for r in slopes.to_dict(orient="records"):
        detail = (
            str(r["contrast"]).rpartition("(")[2].rstrip(")") if "(" in str(r["contrast"]) else ""
        )
        label = analysis_label(r["analysis"]) + (f" ({detail})" if detail else "")
        rows.append(
            {
                "panel": r["outcome"],
                "label": label,
                "estimate": r["estimate"],
                "ci_low": r["ci_low"],
                "ci_high": r["ci_high"],
                "primary": str(r.get("family", "")) == "primary",
            }
        )
    return pd.DataFrame(
        rows, columns=["panel", "label", "estimate", "ci_low", "ci_high", "primary"]
    )


def _outcomes(
    tables: Mapping[str, pd.DataFrame],
    analysis: pd.DataFrame | None,
    config: Config,
    flags: Mapping[tuple[str, str], str],
) -> Section | None:
    if not _present(tables, "mean_by_visit"):
        return None
    means = tables["mean_by_visit"]
    time_unit = "week" if config.model.time_axis == "weeks" else "session"
    blocks: list[Block] = []
    if analysis is not None and "depth" in analysis:
        sample = summaries.trajectory_sample(
            analysis, INSTRUMENT_COLUMNS, "depth", config.report.spaghetti_patients
        )
        if not sample.empty:
            blocks.append(
                Figure(
                    png(
                        report_figures.spaghetti(
                            sample, outcome_labels=OUTCOMES, group_label="Depth"
                        )
                    ),
                    alt="Individual trajectories of NRS, VAS and ODI over weeks since baseline "
                    f"for a random sample of up to {config.report.spaghetti_patients} patients "
                    "per depth group",
                    caption=f"Individual trajectories of a reproducible random sample of up to "
                    f"{config.report.spaghetti_patients} patients per depth group (no identifiers; "
                    "the same patients in every column).",
                    anchor="spaghetti",
                )
            )
    contrasts = tables.get("contrasts")
    for q in QUESTIONS:
        part = means[means["factor"] == q.factor]
        if part.empty:
            continue
        label = FACTOR_LABELS[q.factor]
        blocks.append(Heading(f"Question {q.number}. {q.title}", anchor=f"outcomes-{q.factor}"))
        blocks.append(
            Figure(
                png(
                    report_figures.mean_trajectories(
                        part, outcome_labels=OUTCOMES, group_label=label
                    )
                ),
                alt=f"Mean NRS, VAS and ODI at each visit by {label.lower()} "
                f"({q.reference} and {q.level}) with 95 % confidence intervals",
                caption=f"Observed mean at each visit by {label.lower()}, plotted at the visit's "
                "mean weeks since baseline; bars are 95 % t confidence intervals. Patients who "
                "left early are missing from later visits (the models account for that).",
                anchor=f"trajectories-{q.factor}",
            )
        )
        blocks.append(_means_table(means, q.factor))
        if _present(tables, "emmeans"):
            blocks += _emmeans_tables(tables["emmeans"], q.factor)
        if contrasts is not None and not contrasts.empty:
            main = contrasts[
                (contrasts["question"] == q.factor)
                & contrasts["analysis"].map(lambda a: _kind(a) in MAIN_KINDS)
            ]
            if not main.empty:
                blocks.append(
                    _contrast_table(
                        main,
                        flags,
                        f"Contrasts: {q.level} − {q.reference}",
                        tables.get("effect_sizes"),
                    )
                )
            forest_rows = _forest_rows(contrasts, q.factor)
            if not forest_rows.empty:
                unit_of = {
                    o: f"{OUTCOMES[o]}: difference in slope, {UNITS[o]} per {time_unit}"
                    for o in OUTCOMES
                }
                blocks.append(
                    Figure(
                        png(report_figures.forest(forest_rows, panel_labels=unit_of)),
                        alt=f"Forest plot of the difference in slope, {q.level} minus "
                        f"{q.reference}, for each outcome and analysis, with 95 % CIs",
                        caption=f"Difference in slope ({q.level} − {q.reference}) across outcomes "
                        "and analyses, with 95 % confidence intervals; filled squares: the primary "
                        "family (Holm-adjusted p in the table), open circles: other analyses.",
                        anchor=f"forest-{q.factor}",
                    )
                )
        if _present(tables, "model_comparison"):
            tests = tables["model_comparison"]
            tests = tests[tests["analysis"].astype(str).str.endswith(q.factor)]
            if not tests.empty:
                blocks.append(
                    table(
                        tests,
                        [
                            ("Analysis", "analysis", lambda r: analysis_label(r["analysis"])),
                            ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], "")),
                            ("Test", "test", None),
                            ("df", "#df", lambda r: fmt(r["df"])),
                            ("χ²", "#chisq", lambda r: fmt(r["chisq"], 2)),
                            ("p", "#p", lambda r: fmt_p(r["p_value"])),
                        ],
                        caption="Likelihood-ratio tests (ML fits of nested models)",
                    )
                )
    return Section("outcomes", "Outcomes", tuple(blocks))


def _responders_and_safety(tables: Mapping[str, pd.DataFrame], config: Config, note: str):
    sections = []
    if _present(tables, "responders"):
        resp = tables["responders"]
        mcid = "; ".join(
            f"{name.upper()} ≥ {r.points:g} {UNITS[name]} or ≥ {r.percent:g} %"
            for name, r in config.mcid.items()
        )
        sections.append(
            Section(
                "responders",
                "Responders",
                (
                    Paragraph(
                        "A responder improved from baseline by at least the MCID at their last "
                        f"post-baseline assessment ({mcid}); patients without one are not counted."
                    ),
                    table(
                        resp,
                        [
                            ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], "")),
                            ("Grouping", "group", None),
                            ("Quantity", "quantity", None),
                            (
                                "Level",
                                "level",
                                lambda r: (
                                    r["level"]
                                    if r["quantity"] == "proportion"
                                    else f"{r['level']} vs {r['reference']}"
                                ),
                            ),
                            ("Patients", "#n", None),
                            ("Responders", "#responders", None),
                            ("Estimate", "#estimate", lambda r: fmt(r["estimate"], 3)),
                            ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                            ("p", "#p", lambda r: fmt_p(r["p_value"])),
                            ("Method", "method", None),
                        ],
                        caption="Responders at the last assessment",
                        note=note,
                    ),
                ),
            )
        )
    if _present(tables, "adverse_event_rates"):
        blocks: list[Block] = [
            table(
                tables["adverse_event_rates"],
                [
                    ("Grouping", "group", None),
                    ("Level", "level", None),
                    ("Sessions", "#sessions", None),
                    ("Events", "#events", None),
                    ("Per 100 sessions", "#rate", lambda r: fmt(r["rate_per_100"], 1)),
                    (
                        "95 % CI (exact Poisson)",
                        "#ci",
                        lambda r: fmt_ci(r["ci_low"], r["ci_high"], 1),
                    ),
                    ("Not recorded", "#not_recorded", None),
                ],
                caption="Adverse events per 100 sessions",
                note="Sessions whose adverse-event field was left empty are not in the "
                "denominators. " + note,
            )
        ]
        if _present(tables, "adverse_event_rate_ratio"):
            blocks.append(
                table(
                    tables["adverse_event_rate_ratio"],
                    [
                        ("Comparison", "level", lambda r: f"{r['level']} vs {r['reference']}"),
                        ("Rate ratio", "#rr", lambda r: fmt(r["rate_ratio"], 2)),
                        ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"])),
                        ("p", "#p", lambda r: fmt_p(r["p_value"])),
                        ("Method", "method", None),
                    ],
                    caption="Rate ratio",
                )
            )
        sections.append(Section("safety", "Safety", tuple(blocks)))
    return sections


def _sensitivity(
    tables: Mapping[str, pd.DataFrame], flags: Mapping[tuple[str, str], str]
) -> Section | None:
    if not _present(tables, "contrasts"):
        return None
    contrasts = tables["contrasts"]
    kinds = contrasts["analysis"].map(_kind)
    slopes = contrasts["contrast"].astype(str).str.contains("slope")
    chosen = contrasts[slopes & kinds.isin(["trajectory", "sensitivity", "subgroup"])]
    if not kinds.isin(["sensitivity", "subgroup"]).any() or chosen.empty:
        return None
    blocks: list[Block] = []
    n_patients = {}
    if _present(tables, "diagnostics"):
        d = tables["diagnostics"]
        n_patients = {
            (a, o): n for a, o, n in zip(d["analysis"], d["outcome"], d["n_patients"], strict=True)
        }
    for q in QUESTIONS:
        rows = chosen[chosen["question"] == q.factor]
        if rows.empty:
            continue
        rows = rows.assign(
            patients=[
                n_patients.get((a, o), MISSING)
                for a, o in zip(rows["analysis"], rows["outcome"], strict=True)
            ]
        )
        blocks.append(
            table(
                rows.sort_values(["outcome", "analysis"], key=lambda s: s.map(str), kind="stable"),
                [
                    ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], "")),
                    ("Analysis", "analysis", lambda r: analysis_label(r["analysis"])),
                    ("Contrast", "contrast", None),
                    ("Patients", "#patients", None),
                    ("Estimate", "#e", lambda r: fmt(r["estimate"], 3)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                    ("Fit", "fit", lambda r: flags.get((r["analysis"], r["outcome"]), MISSING)),
                ],
                caption=f"{FACTOR_LABELS[q.factor]}: difference in slope in the primary, "
                "sensitivity and subgroup analyses",
            )
        )
    blocks.append(
        Paragraph(
            "Sensitivity analyses refit the trajectory model in sub-populations (completers; "
            "excluding patients with contraindications or protocol deviations); subgroup analyses "
            "estimate the difference within each level of the subgroup. Their p-values are not "
            "adjusted for multiplicity.",
            "note",
        )
    )
    return Section("sensitivity", "Sensitivity and subgroup analyses", tuple(blocks))


def _diagnostics(
    tables: Mapping[str, pd.DataFrame],
    flags: Mapping[tuple[str, str], str],
    residuals: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
) -> Section | None:
    if not _present(tables, "diagnostics"):
        return None
    d = tables["diagnostics"].drop(columns=["fit_seconds"], errors="ignore")
    columns: list[tuple[str, str, Callable | None]] = [
        ("Analysis", "analysis", lambda r: analysis_label(r["analysis"])),
        ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], r["outcome"])),
        ("Fit", "fit", lambda r: flags.get((r["analysis"], r["outcome"]), MISSING)),
        ("Obs.", "#n_obs", None),
        ("Patients", "#n_patients", None),
        ("Random effects", "random_effects", None),
        ("Optimiser", "optimizer", None),
    ]
    if "residual_sd" in d:
        columns += [
            ("Residual SD", "#rsd", lambda r: fmt(r["residual_sd"], 2)),
            ("Skew", "#skew", lambda r: fmt(r["residual_skewness"], 2)),
            ("Kurtosis (excess)", "#kurt", lambda r: fmt(r["residual_excess_kurtosis"], 2)),
            (
                "Beyond 3 SD",
                "#b3",
                lambda r: fmt(100 * _number(r["residual_share_beyond_3sd"]), 1) + " %",
            ),
        ]
    blocks: list[Block] = [
        table(d, columns, caption="Model fits"),
    ]
    notes = []
    for r in d.to_dict(orient="records"):
        text = []
        for key in ("message", "fallback", "warnings"):
            value = r.get(key)
            if isinstance(value, str) and value.strip():
                text.append(value.strip())
        if text:
            notes.append(
                (
                    analysis_label(r["analysis"]),
                    OUTCOMES.get(r["outcome"], r["outcome"]),
                    " | ".join(text),
                )
            )
    if notes:
        blocks.append(
            Table(
                header=("Analysis", "Outcome", "Messages and warnings, as raised"),
                rows=tuple(notes),
                numeric=(False, False, False),
                caption="Every message and warning raised while fitting (none filtered)",
            )
        )
    blocks.append(
        Paragraph(
            "statsmodels warns that 'the MLE may be on the boundary' whenever a variance is below "
            "a fixed 0.01, an ordinary value for a slope on the NRS scale; the pipeline judges a "
            "boundary fit by the likelihood and the estimates (a variance near zero or a "
            "correlation of ±1), as lme4 does, and flags it in the Fit column next to every "
            "estimate the model gives.",
            "note",
        )
    )
    for (analysis, outcome), (fitted, resid) in residuals.items():
        title = f"{analysis_label(analysis)}, {OUTCOMES.get(outcome, outcome)}"
        blocks.append(
            Figure(
                png(report_figures.residual_plots(fitted, resid, title=title)),
                alt=f"Residuals against fitted values and normal quantile plot for {title}",
                caption=f"Conditional residuals (with the random effects) of {title}; fit: "
                f"{flags.get((analysis, outcome), MISSING)}.",
                anchor=f"residuals-{analysis}-{outcome}",
            )
        )
    return Section("diagnostics", "Diagnostics", tuple(blocks))


def methods_text(
    tables: Mapping[str, pd.DataFrame],
    config: Config,
    versions: Mapping[str, str],
    formulas: Mapping[tuple[str, str], str],
) -> list[str]:
    """Generate the methods paragraphs from the analyses the run produced and its settings."""
    m = config.model
    time_words = (
        "weeks since the baseline assessment"
        if m.time_axis == "weeks"
        else "the number of needling sessions completed before the assessment"
    )
    df_words = (
        "Satterthwaite degrees of freedom, computed as R's lmerTest does"
        if m.df_method == "satterthwaite"
        else "large-sample normal (z) reference distributions"
    )
    analyses = []
    if _present(tables, "diagnostics"):
        analyses = list(dict.fromkeys(tables["diagnostics"]["analysis"]))
    elif _present(tables, "fixed_effects"):
        analyses = list(dict.fromkeys(tables["fixed_effects"]["analysis"]))
    kinds = {_kind(a) for a in analyses}
    th = config.thresholds
    covariates = ", ".join(m.covariates) or "none"
    first = [
        f"Groups are patient-level exposures: a patient is 'deep' when at least "
        f"{th.deep_share:g} of their sessions were deep and 'twitch' when a twitch response was "
        f"elicited in at least {th.twitch_share:g} of the sessions where it was recorded "
        "(references: superficial, no twitch, acute pain). Time is "
        f"{time_words}. Outcomes are NRS pain, VAS pain and the Oswestry Disability Index "
        f"(scored over the answered sections, at most {th.odi_max_missing_sections} unanswered)."
    ]
    models = []
    if "trajectory" in kinds:
        models.append(
            "trajectory models (SAP §4.1): outcome ~ time × group + baseline covariates "
            f"({covariates}), with a correlated random intercept and slope for time per patient, "
            "refitted with a random intercept only when the slope variance is at the boundary"
        )
    if "change" in kinds:
        models.append(
            "change-from-baseline (MMRM-style) models (§4.2): post-baseline assessments, "
            "outcome ~ baseline + visit × group with visit categorical and a random intercept "
            "per patient, giving the difference between groups at each visit"
        )
    if "session" in kinds:
        models.append(
            "a session-level twitch model (§4.3) splitting the share of earlier sessions with a "
            "twitch response into the patient's mean (between) and the deviation from it "
            "(within; free of between-patient confounding)"
        )
    if "joint" in kinds:
        models.append("a joint model with depth and twitch together (§4.4), as they are confounded")
    if "subgroup" in kinds:
        models.append("subgroup models with a three-way interaction with chronicity")
    if "sensitivity" in kinds:
        models.append(
            "sensitivity refits of the trajectory model in completers and excluding patients "
            "with contraindications or protocol deviations"
        )
    site = getattr(m, "site", None)
    site_words = (
        f" The clinic enters as configured ([model] site = {site}: with at least "
        f"{getattr(m, 'min_sites_random', 5)} clinics a random intercept, otherwise a fixed "
        "effect, when 'auto')."
        if site
        else ""
    )
    second = (
        "Linear mixed-effects models were fitted for each outcome: "
        + "; ".join(models)
        + "."
        + site_words
        + " Estimation was by restricted maximum likelihood in statsmodels "
        f"{versions.get('statsmodels', '?')}, checked against a second optimiser and keeping the "
        "better REML criterion; standard errors are from (X'V⁻¹X)⁻¹ at the estimated variance "
        f"components, as in lme4, and tests and intervals use {df_words}."
    )
    if _present(tables, "emmeans"):
        second += (
            " Estimated marginal means are predictions at each visit averaged with equal weights "
            "over the other categorical variables, as R's emmeans computes them."
        )
    if _present(tables, "model_comparison"):
        second += (
            " Interactions were tested by likelihood-ratio tests between maximum-likelihood fits "
            "of the nested models."
        )
    contrasts = tables.get("contrasts")
    if contrasts is not None and "family" in contrasts and (contrasts["family"] == "primary").any():
        second += (
            " Multiplicity: Holm's method across the primary family, the difference in slopes for "
            "depth and for twitch in the trajectory models of the three outcomes; other "
            "p-values are unadjusted."
        )
    else:
        second += " p-values are not adjusted for multiplicity."
    if _present(tables, "effect_sizes"):
        second += (
            " Standardised effect sizes divide a between-group difference by the "
            f"{tables['effect_sizes']['standardiser'].iloc[0]}."
        )
    quoted = [f"{analysis_label(a)}, {o}: {f}" for (a, o), f in sorted(formulas.items())]
    third = (
        "All available assessments were used, which is valid when missed visits are missing at "
        "random given the observed data; no value was imputed, and rows that broke the data "
        "contract were quarantined. Responders reached the MCID (SAP §2) at their last "
        "post-baseline assessment (risk difference with a Wald interval; odds ratio by logistic "
        "regression); adverse events are given per 100 sessions with exact Poisson intervals and "
        "compared by the exact conditional rate-ratio test. Published counts from 1 to "
        f"{config.privacy.small_cell_threshold - 1} are suppressed, with complementary "
        "suppression (README, Privacy). Software: "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if k != "needling-outcomes")
        + "."
    )
    paragraphs = [*first, second, third]
    if quoted:
        paragraphs.append("Models in lme4 notation: " + "; ".join(quoted) + ".")
    return paragraphs


def _appendix(tables: Mapping[str, pd.DataFrame]) -> Section | None:
    if not _present(tables, "fixed_effects"):
        return None
    fe = tables["fixed_effects"]
    fe = fe[fe["analysis"].map(lambda a: _kind(a) in MAIN_KINDS)]
    blocks: list[Block] = []
    for analysis in dict.fromkeys(fe["analysis"]):
        blocks.append(
            table(
                fe[fe["analysis"] == analysis],
                [
                    ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], r["outcome"])),
                    ("Term", "term", None),
                    ("Estimate", "#e", lambda r: fmt(r["estimate"], 3)),
                    ("SE", "#se", lambda r: fmt(r["std_err"], 3)),
                    ("df", "#df", lambda r: fmt(r["df"], 1)),
                    ("95 % CI", "#ci", lambda r: fmt_ci(r["ci_low"], r["ci_high"], 3)),
                    ("p", "#p", lambda r: fmt_p(r["p_value"])),
                ],
                caption=f"Fixed effects: {analysis_label(analysis)}",
            )
        )
    if _present(tables, "variance_components"):
        vc = tables["variance_components"]
        vc = vc[vc["analysis"].map(lambda a: _kind(a) in MAIN_KINDS)]
        blocks.append(
            table(
                vc,
                [
                    ("Analysis", "analysis", lambda r: analysis_label(r["analysis"])),
                    ("Outcome", "outcome", lambda r: SHORT.get(r["outcome"], "")),
                    ("Group", "group", None),
                    ("Term", "term", None),
                    ("Variance", "#v", lambda r: sig(r["variance"])),
                    ("SD", "#sd", lambda r: sig(r["std_dev"])),
                    ("Correlation", "#c", lambda r: sig(r["correlation"], 3)),
                ],
                caption="Variance components",
            )
        )
    blocks.append(
        Paragraph(
            "Reference levels: superficial needling, no twitch, acute pain. Estimates of the "
            "sensitivity and subgroup models are in reports/tables/fixed_effects.csv.",
            "note",
        )
    )
    return Section("appendix", "Appendix: model estimates", tuple(blocks))


def build_content(
    config: Config,
    raw: Mapping[str, RawTable],
    tables: Mapping[str, pd.DataFrame],
    *,
    project_root: Path,
    key_source: str,
    analysis: pd.DataFrame | None = None,
    residuals: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]] | None = None,
    formulas: Mapping[tuple[str, str], str] | None = None,
) -> ReportContent:
    """Assemble the report of one run.

    Parameters
    ----------
    config : Config
        The run's configuration.
    raw : mapping of str to RawTable
        Raw tables as read (file names and SHA-256 for provenance).
    tables : mapping of str to pandas.DataFrame
        The published tables (small cells already suppressed), by file stem.
    project_root : Path
        Folder whose git commit is recorded.
    key_source : str
        Where the pseudonym key came from (never the key).
    analysis : pandas.DataFrame, optional
        The analysis data set, for the individual-trajectory panel.
    residuals : mapping, optional
        ``(analysis, outcome) -> (fitted, residuals)`` arrays of the models whose residual plots
        are shown.
    formulas : mapping, optional
        ``(analysis, outcome) -> formula`` in lme4 notation, quoted in the methods.

    Returns
    -------
    ReportContent
        The sections in reading order.
    """
    versions = provenance.package_versions()
    threshold = config.privacy.small_cell_threshold
    note = SUPPRESSION_NOTE.format(marker=f"<{threshold}", below=max(threshold - 1, 0))
    flags = fit_flags(tables.get("diagnostics"))
    if config.study.declared:
        return _declared_content(
            config,
            raw,
            tables,
            project_root,
            key_source,
            versions,
            note,
            flags,
            residuals,
            formulas,
        )
    sections: list[Section | None] = [
        _summary(tables, config),
        _provenance(config, raw, project_root, key_source, versions),
        _data(tables, note),
        _table_one(tables, note),
        _outcomes(tables, analysis, config, flags),
        *_responders_and_safety(tables, config, note),
        _sensitivity(tables, flags),
        _diagnostics(tables, flags, residuals or {}),
        Section(
            "methods",
            "Methods",
            tuple(Paragraph(p) for p in methods_text(tables, config, versions, formulas or {})),
        ),
        _appendix(tables),
    ]
    return ReportContent(
        title=TITLE,
        run_date=provenance.run_date(),
        intro="Generated by needling-outcomes from the raw files listed under Provenance. No "
        "patient identifier or calendar date is shown: time is counted from each patient's "
        f"baseline, and counts below {threshold} are suppressed.",
        sections=tuple(s for s in sections if s is not None),
    )


def _primary_visit(tables: Mapping[str, pd.DataFrame]) -> int | None:
    """Return the visit of the primary family's visit differences (a trial's primary visit)."""
    contrasts = tables.get("contrasts")
    if contrasts is None or contrasts.empty or "kind" not in contrasts:
        return None
    chosen = contrasts[
        (contrasts["family"].astype(str) == "primary")
        & (contrasts["kind"].astype(str) == "visit_difference")
    ]
    visits = pd.to_numeric(chosen["visit"], errors="coerce").dropna()
    return int(visits.iloc[0]) if len(visits) else None


def _declared_content(
    config: Config,
    raw: Mapping[str, RawTable],
    tables: Mapping[str, pd.DataFrame],
    project_root: Path,
    key_source: str,
    versions: Mapping[str, str],
    note: str,
    flags: Mapping[tuple[str, str], str],
    residuals: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]] | None,
    formulas: Mapping[tuple[str, str], str] | None,
) -> ReportContent:
    """Assemble the report of a study that declares its design (:mod:`pipeline.report.design`)."""
    threshold = config.privacy.small_cell_threshold
    sections: list[Section | None] = [
        design.summary(tables, config, _primary_visit(tables)),
        design.not_in_design(tables),
        _provenance(config, raw, project_root, key_source, versions),
        _data(tables, note),
        _table_one(tables, note),
        design.outcomes(tables, config, flags),
        design.responders(tables, config, note),
        _diagnostics(tables, flags, residuals or {}),
        Section(
            "methods",
            "Methods",
            tuple(Paragraph(p) for p in design.methods(config, versions, formulas or {})),
        ),
        _appendix(tables),
    ]
    kind = "randomised trial" if config.study.design == "trial" else "observational study"
    return ReportContent(
        title=f"Outcome report: {kind}",
        run_date=provenance.run_date(),
        intro="Generated by needling-outcomes from the raw files listed under Provenance. No "
        "patient identifier or calendar date is shown: time is counted from each patient's "
        f"baseline, and counts below {threshold} are suppressed.",
        sections=tuple(s for s in sections if s is not None),
    )
