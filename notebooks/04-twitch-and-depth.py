# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Twitch and depth: does the twitch response matter once depth is accounted for?
#
# **Question.** Patients in whom a local twitch response (LTR) is elicited seem to do better.
# Is that the twitch, or is it that twitches happen mostly with deep needling, which may
# itself work better? This notebook shows how the two are tangled in the data, and the two
# ways the analysis plan separates them: the **joint model** (depth and twitch together) and
# the **within/between decomposition** of the session-level twitch exposure.
#
# Written for clinicians: the numbers are printed by the code cells, computed from whatever
# data `CONFIG` points at (change it to look at another analysis file).

# %%
CONFIG = "../analysis.toml"

# %%
# %matplotlib inline
from pipeline import api
from pipeline.explore import tables as explore
from pipeline.explore import plots

OUTCOME = "nrs"  # "nrs", "vas" or "odi"
UNIT = {"nrs": "NRS points", "vas": "mm VAS", "odi": "ODI points"}[OUTCOME]

study = api.load_study(CONFIG)
data = study.data
settings = study.config.model
patients = explore.patient_level(data)

# %% [markdown]
# ## 1. Twitch happens mostly with deep needling
#
# Per needling session: how often a twitch was elicited with superficial and with deep
# needling (per cent, with 95 % confidence intervals).

# %%
explore.twitch_by_depth(study.sessions).round(1)

# %% [markdown]
# Per patient: each patient is classed *deep* or *superficial* by the depth of most of their
# sessions, and *twitch* or *no twitch* by the share of their sessions with a twitch
# (threshold in the configuration). Counts, then percentages of each depth group:

# %%
explore.crosstab(patients, "depth", "twitch")

# %%
explore.crosstab(patients, "depth", "twitch", percent="row").round(1)

# %%
plots.twitch_share_by_depth(patients, study.config.thresholds.twitch_share)

# %% [markdown]
# **Why this matters.** Suppose the twitch did nothing at all but deep needling helped.
# Because twitches are much more frequent with deep needling, the "twitch" group is mostly
# deep-needled patients and the "no twitch" group mostly superficial ones. The twitch group
# would then improve faster, and a twitch-versus-no-twitch comparison would credit the twitch
# with what depth did. This is *confounding*: depth is linked both to the twitch and to the
# outcome.

# %% [markdown]
# ## 2. Each factor alone
#
# The trajectory model with one factor at a time: the difference between the groups in how
# fast the outcome changes per week. Negative means that the group named first in the
# contrast (deep, twitch) improves faster, since lower scores are better.

# %%
alone = {  # tests=False: no likelihood-ratio tests (maximum-likelihood refits) needed here
    "depth alone": api.fit("trajectory", data, OUTCOME, "depth", settings=settings, tests=False),
    "twitch alone": api.fit("trajectory", data, OUTCOME, "twitch", settings=settings, tests=False),
}
joint = api.fit("joint", data, OUTCOME, settings=settings)

# %% [markdown]
# ## 3. Both together: the joint model
#
# `y ~ weeks * depth + weeks * twitch + ...`: the twitch difference is now estimated among
# patients needled at the same depth, and the depth difference among patients with the same
# twitch status. When the two are strongly linked there are few patients to compare (e.g.
# superficially needled patients who usually twitch), so the adjusted intervals are wider.

# %%
slopes = explore.compare({**alone, "joint model": joint}, "contrasts",
                         contains="difference in slope")
slopes["label"] = slopes["question"] + " — " + slopes["model"]
slopes[["label", "contrast", "estimate", "std_err", "ci_low", "ci_high", "p_value"]]

# %%
plots.forest(slopes, label="label",
             xlabel=f"Difference in slope ({UNIT} per week; negative = faster improvement)")

# %% [markdown]
# **How to read it.** If the twitch "effect" seen alone is mostly confounding by depth, it
# moves towards zero in the joint model while the depth difference stays. If the twitch had
# its own effect, it would remain once depth is in the model. The likelihood-ratio tests of
# each interaction, adjusted for the other factor:

# %%
joint.model_comparison

# %% [markdown]
# ## 4. Within and between patients
#
# The twitch is a session-level event: the same patient has sessions with and without one.
# For each follow-up assessment take the share of the patient's *earlier* sessions with a
# twitch, and split it in two:
#
# - **between patients**: the patient's average share (patients who usually twitch against
#   those who rarely do). This comparison is open to the same confounding as before: depth,
#   severity, the clinic, the therapist.
# - **within patients**: how far the share at this assessment is from the patient's own
#   average. Each patient is compared with themselves, so anything constant about the patient
#   (including how they are usually needled) cannot explain it.
#
# How much of the twitch variation is of each kind, and how each part relates to depth:

# %%
explore.twitch_decomposition(data, settings, OUTCOME).round(3)

# %% [markdown]
# The within part has mean zero in every patient, so it is unrelated to depth by
# construction; the between part carries the link with depth. The session-level model
# estimates both (SAP §4.3), on the scale "twitch in every earlier session versus none":

# %%
session = api.fit("session_twitch", data, OUTCOME, settings=settings, tests=False)
session.contrasts[["contrast", "estimate", "std_err", "df", "ci_low", "ci_high", "p_value"]]

# %% [markdown]
# **How to read it.** The *within* estimate is the one free of between-patient confounding;
# when the within variation is a small share of the total (see the table above) it rests on
# little information and its interval is wide. The *between − within* difference (the
# contextual effect) measures how much the comparison between patients adds beyond the
# within-patient effect: a clear one says the between-patient comparison is confounded.
#
# ## 5. What these data say
#
# The lines below are computed from the fits above, for the data `CONFIG` points at.

# %%
within = explore.compare({"session-level": session}, contains="within patients")
by = slopes.set_index(["model", "question"])
per_week = UNIT + " a week"
print("Twitch vs no twitch, alone:           ",
      explore.describe(by.loc[("twitch alone", "twitch")], unit=per_week))
print("Twitch vs no twitch, at the same depth:",
      explore.describe(by.loc[("joint model", "twitch")], unit=per_week))
print("Deep vs superficial, alone:           ",
      explore.describe(by.loc[("depth alone", "depth")], unit=per_week))
print("Deep vs superficial, same twitch:     ",
      explore.describe(by.loc[("joint model", "depth")], unit=per_week))
print("Twitch within patients (all vs none): ",
      explore.describe(within.iloc[0], unit=UNIT))
