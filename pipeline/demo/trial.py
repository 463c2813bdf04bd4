"""A simulated two-arm randomised trial as a clinic would hold it (``data/raw/examples/trial/``).

Deep dry needling against sham needling in chronic low back pain, 200 patients randomised 1:1,
assessed at baseline, 3 months and 12 months. The file is **wide** (one row per patient), has
**no dates** and **no session log**; patients are identified by their **initials**, which repeat,
so the configuration numbers patients by their row. The primary outcome is the Roland–Morris
Disability Questionnaire (0–24, higher is worse); the secondary is the Patient-Specific
Functional Scale (0–10, higher is better). Covariates: age, sex, diagnosis (non-specific,
radicular, facet) and years of symptoms.

The data-generating model, for patient *i* at follow-up visit *v* (1 = 3 months, 2 = 12 months)::

    y_iv = c_v + b · baseline_i + effect_v · [deep]_i + covariates_i + u_i + e_iv,
    u_i ~ N(0, sd_patient²),  e_iv ~ N(0, sd_residual²)

a special case (compound-symmetric covariance across visits) of the change-from-baseline
MMRM the pipeline fits (``y ~ baseline + visit * arm + covariates`` with an unstructured
residual covariance), so ``effect_v`` is the estimand: the baseline-adjusted difference
deep − sham at visit *v*. Scores are then rounded (RMDQ to whole points, PSFS to 0.1) and kept
inside the scale's range; visits are missed completely at random (8 % at 3 months, 18 % at 12
months). :data:`TRUE_EFFECTS` holds the truths; ``python -m pipeline.demo.trial
data/raw/examples/trial`` writes the data, the configuration and a README that states them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import outputs

TRIAL_PATIENTS = 200
TRIAL_SEED = 14
POINTS = {"0": 0, "3m": 1, "12m": 2}
WEEKS = {"0": 0.0, "3m": 13.0, "12m": 52.0}
ARMS = ("sham", "deep")
DIAGNOSES = ("nonspecific", "radicular", "facet")
PRIMARY_VISIT = 1


@dataclass(frozen=True)
class OutcomeTruth:
    """The generating parameters of one outcome (see the module docstring)."""

    name: str
    low: float
    high: float
    decimals: int
    baseline_mean: float
    baseline_sd: float
    intercept: tuple[float, float]
    baseline_slope: float
    effect: tuple[float, float]
    age_per_year: float
    male: float
    diagnosis: dict[str, float]
    per_symptom_year: float
    sd_patient: float
    sd_residual: float


TRUTHS = (
    OutcomeTruth(
        name="rmdq",
        low=0,
        high=24,
        decimals=0,
        baseline_mean=11.0,
        baseline_sd=4.0,
        intercept=(2.0, 2.5),
        baseline_slope=0.5,
        effect=(-2.5, -1.5),
        age_per_year=0.04,
        male=-0.5,
        diagnosis={"nonspecific": 0.0, "radicular": 1.5, "facet": 0.8},
        per_symptom_year=0.15,
        sd_patient=1.8,
        sd_residual=2.2,
    ),
    OutcomeTruth(
        name="psfs",
        low=0,
        high=10,
        decimals=1,
        baseline_mean=3.5,
        baseline_sd=1.2,
        intercept=(2.4, 2.6),
        baseline_slope=0.45,
        effect=(1.0, 0.6),
        age_per_year=-0.01,
        male=0.1,
        diagnosis={"nonspecific": 0.0, "radicular": -0.4, "facet": -0.2},
        per_symptom_year=-0.05,
        sd_patient=0.7,
        sd_residual=0.9,
    ),
)
TRUE_EFFECTS = {t.name: {v + 1: e for v, e in enumerate(t.effect)} for t in TRUTHS}
"""``{outcome: {visit: deep − sham at that visit, adjusted for baseline}}``."""


def _initials(rng: np.random.Generator, n: int) -> list[str]:
    letters = np.array(list("ABCDEJKLMPRS"))
    first = rng.choice(letters, n)
    last = rng.choice(letters, n)
    return [f"{a}.{b}." for a, b in zip(first, last, strict=True)]


def simulate_trial(n_patients: int = TRIAL_PATIENTS, seed: int = TRIAL_SEED) -> pd.DataFrame:
    """Simulate the trial as a wide table, one row per patient.

    Parameters
    ----------
    n_patients : int
        Patients randomised (alternately to sham and deep within blocks of two, in random order).
    seed : int
        Seed of the random generator; the table depends only on it and ``n_patients``.

    Returns
    -------
    pandas.DataFrame
        ``initials, age, sex (F/M), diagnosis, symptom_years, arm`` and, per time point
        ``0``, ``3m``, ``12m``, the columns ``rmdq_<t>`` and ``psfs_<t>`` (empty when missed).
    """
    rng = np.random.default_rng(seed)
    n = n_patients
    blocks = np.concatenate([rng.permutation(2) for _ in range((n + 1) // 2)])[:n]
    deep = blocks == 1
    age = np.clip(np.round(rng.normal(48, 12, n)), 18, 80).astype(int)
    male = rng.random(n) < 0.45
    diagnosis = rng.choice(DIAGNOSES, n, p=[0.6, 0.25, 0.15])
    years = np.round(np.exp(rng.normal(np.log(2.0), 0.8, n)), 1)
    missed_3m = rng.random(n) < 0.08
    missed_12m = np.where(missed_3m, rng.random(n) < 0.6, rng.random(n) < 0.18)
    table = pd.DataFrame(
        {
            "initials": _initials(rng, n),
            "age": age,
            "sex": np.where(male, "M", "F"),
            "diagnosis": diagnosis,
            "symptom_years": years,
            "arm": np.where(deep, "deep", "sham"),
        }
    )
    for truth in TRUTHS:
        shift = np.array([truth.diagnosis[d] for d in diagnosis])
        base = rng.normal(truth.baseline_mean, truth.baseline_sd, n) + shift
        base = np.clip(np.round(base, truth.decimals), truth.low, truth.high)
        u = rng.normal(0, truth.sd_patient, n)
        table[f"{truth.name}_0"] = base
        for visit, (point, missed) in enumerate((("3m", missed_3m), ("12m", missed_12m))):
            y = (
                truth.intercept[visit]
                + truth.baseline_slope * base
                + truth.effect[visit] * deep
                + truth.age_per_year * (age - 50)
                + truth.male * male
                + shift
                + truth.per_symptom_year * years
                + u
                + rng.normal(0, truth.sd_residual, n)
            )
            y = np.clip(np.round(y, truth.decimals), truth.low, truth.high)
            table[f"{truth.name}_{point}"] = np.where(missed, np.nan, y)
    return table


def _number(value: float, decimals: int) -> str:
    if np.isnan(value):
        return ""
    return f"{value:.{decimals}f}"


def trial_csv(table: pd.DataFrame) -> str:
    """Write the wide table as CSV text (scores with their scale's decimals, empty = missed)."""
    out = table.copy()
    for truth in TRUTHS:
        for point in POINTS:
            column = f"{truth.name}_{point}"
            out[column] = [_number(v, truth.decimals) for v in out[column]]
    out["symptom_years"] = [f"{v:.1f}" for v in out["symptom_years"]]
    return out.to_csv(index=False, lineterminator="\n")


CONFIG = """# A simulated two-arm randomised trial: deep vs sham dry needling (see README.md).
# A wide file without dates or a session log; the initials repeat, so patients are numbered by
# their row. Outcomes, the randomised comparison, covariates and time are declared below
# (docs/study-design.md).

[[sources]]
kind = "wide"
files = ["trial.csv"]
site = "Trial centre"
patient_id = "row"          # the initials repeat: the row number identifies a patient
id_prefix = "T"
units = { symptom_weeks = "years" }   # converted to weeks (365.25 / 7 per year)

[sources.columns]               # patient columns: canonical or declared name = column in the file
age = "age"
sex = "sex"
diagnosis = "diagnosis"
symptom_weeks = "symptom_years"
arm = "arm"

[sources.codes.sex]
"F" = "female"
"M" = "male"

[sources.assessments]
columns = { rmdq = "rmdq_{t}", psfs = "psfs_{t}" }
points = { "0" = 0, "3m" = 1, "12m" = 2 }     # label in the column names -> visit number
weeks = { "0" = 0, "3m" = 13, "12m" = 52 }    # label -> weeks since baseline (no dates)

[outcomes.rmdq]                 # primary outcome: the first declared
instrument = "rmdq"             # Roland-Morris 0-24, higher is worse, MCID 5 points or 30 %

[outcomes.psfs]
instrument = "psfs"             # Patient-Specific Functional Scale 0-10, higher is better

[[comparisons]]
kind = "randomised"
column = "arm"
reference = "sham"
levels = ["sham", "deep"]
label = "randomised arm"

[covariates.diagnosis]
kind = "category"
reference = "nonspecific"

[time]
source = "weeks"                # from the weeks of each time point above
primary_visit = 1               # 3 months: the headline estimate

[model]
covariates = ["age", "sex", "diagnosis", "symptom_weeks"]
random_slope = false            # three visits and no patient-specific slopes in the design:
                                # the trajectory model has a random intercept per patient

[outputs]  # under data/processed/, which git ignores
processed = "../../../processed/examples/trial"
reports = "../../../processed/examples/trial/reports"

[privacy]
demo_key = true  # simulated data: the public demo key is fine; never for real patients
small_cell_threshold = 5

[report]
pdf = false

[estimand]                      # ICH E9(R1) estimand, missing-data sensitivity (docs/estimands.md)
population = "adults with low back pain randomised to deep or sham needling"
outcome = "rmdq"                # the primary outcome at the primary visit ([time] primary_visit)
comparison = "arm"

[estimand.events.discontinued]  # stopped attending: what they would have had off needling
strategy = "treatment policy"
imputation = "J2R"              # jump to the sham arm's mean after the last visit attended
"""


def readme() -> str:
    """Describe the example and state its true effects (Markdown)."""
    lines = [
        "# Example: a two-arm randomised trial (simulated)",
        "",
        "Deep vs sham dry needling, "
        f"{TRIAL_PATIENTS} patients randomised 1:1 in blocks of two, assessed at baseline, "
        "3 months (visit 1, week 13) and 12 months (visit 2, week 52). `trial.csv` is wide (one "
        "row per patient), has no dates and no session log, and identifies patients by "
        'initials that repeat, so `analysis.toml` numbers them by row (`patient_id = "row"`).',
        "",
        "Run it with `outcomes run --config data/raw/examples/trial/analysis.toml`.",
        "",
        "Generated by `python -m pipeline.demo.trial data/raw/examples/trial` "
        f"(seed {TRIAL_SEED}); see `pipeline/demo/trial.py` for the model.",
        "",
        "## True effects (deep − sham, adjusted for baseline)",
        "",
        "| outcome | direction | 3 months (visit 1, primary) | 12 months (visit 2) |",
        "|---|---|---|---|",
    ]
    directions = {"rmdq": "higher is worse", "psfs": "higher is better"}
    for truth in TRUTHS:
        lines.append(
            f"| {truth.name} | {directions[truth.name]} | {truth.effect[0]:+g} | "
            f"{truth.effect[1]:+g} |"
        )
    lines += [
        "",
        "Both effects favour deep needling: RMDQ falls 2.5 points more at 3 months (below the "
        "MCID of 5 points), PSFS rises 1.0 point more (below its MCID of 2 points). These are "
        "the coefficients of the generating model, before scores are rounded and kept inside "
        "their range. Covariate effects (RMDQ): +0.04 per year of age, −0.5 for men, +1.5 "
        "radicular and +0.8 facet against non-specific, +0.15 per year of symptoms; patient "
        "SD 1.8, residual SD 2.2. Missed visits: 8 % at 3 months, 18 % at 12 months, "
        "completely at random.",
        "",
    ]
    return "\n".join(lines)


def trial_files(n_patients: int = TRIAL_PATIENTS, seed: int = TRIAL_SEED) -> dict[str, bytes]:
    """Return ``{file name: bytes}`` of the example: ``trial.csv``, ``analysis.toml``, README."""
    return {
        "trial.csv": trial_csv(simulate_trial(n_patients, seed)).encode(),
        "analysis.toml": CONFIG.encode(),
        "README.md": readme().encode(),
    }


def write_trial(folder: Path) -> list[Path]:
    """Write the example's files into ``folder``."""
    return [outputs.write_bytes(folder / name, data) for name, data in trial_files().items()]


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for written in write_trial(Path(sys.argv[1] if len(sys.argv) > 1 else ".")):
        print(written)
