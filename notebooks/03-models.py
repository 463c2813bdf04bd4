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
# # 03 · Models: what do the plan's mixed models say, and how much do the choices matter?
#
# **Question.** Fitting the analyses of the statistical analysis plan (SAP §4) through the
# Python API: what are the estimates, how robust are they to one changed choice (time axis,
# twitch threshold, random slope on or off), and do the diagnostics and residuals support the
# model?
#
# Each fit takes about a second on the demo data. Change `CONFIG` to use another analysis
# file, `OUTCOME` to look at `vas` or `odi`.

# %%
CONFIG = "../analysis.toml"

# %%
# %matplotlib inline
import dataclasses

import pandas as pd

from pipeline import api
from pipeline.analyses import plans as analyses
from pipeline.explore import tables as explore
from pipeline.explore import plots

OUTCOME = "nrs"  # "nrs", "vas" or "odi"

study = api.load_study(CONFIG)
data = study.data
settings = study.config.model  # the [model] section of the configuration
settings

# %% [markdown]
# ## The primary analysis: trajectory by needling depth
#
# `y ~ weeks * depth + chronicity (+ site) + (1 + weeks | patient)`: each patient has their
# own starting level and their own rate of change; `weeks:depth` is the difference in the rate
# of change between deep and superficial needling, the quantity the plan's first question
# asks about.

# %%
trajectory = api.fit("trajectory", data, OUTCOME, "depth", settings=settings)
print(trajectory.formula)
trajectory.fixed_effects

# %%
trajectory.variance_components

# %% [markdown]
# The contrasts that answer the question: the difference in slope and the difference between
# the groups at each follow-up visit (model-based, at the mean week of that visit).

# %%
trajectory.contrasts

# %%
slope = trajectory.contrasts.iloc[0]
print(slope["contrast"], "→", explore.describe(slope, unit=f"{OUTCOME.upper()} points"))

# %%
plots.model_means(trajectory.emmeans, xlabel="Weeks since baseline")

# %% [markdown]
# The likelihood-ratio test of the interaction (maximum-likelihood refits), and the
# differences at each visit as standardised effect sizes (divided by the pooled baseline SD).

# %%
trajectory.model_comparison

# %%
trajectory.effect_sizes

# %% [markdown]
# ## The other analyses of the plan, for this outcome
#
# Trajectory by twitch, change from baseline (visit as a category, baseline as covariate),
# the session-level twitch model, the joint depth-and-twitch model, the acute/chronic
# subgroup model, and the trajectory model in the sensitivity populations (the data filtered
# first, then the same call). `tests=False` skips the likelihood-ratio tests (maximum-likelihood
# refits) to save time; leave it out to get each analysis's `model_comparison`.

# %%
completers, completers_note = analyses.completers(data)
per_protocol, per_protocol_note = analyses.per_protocol(data)
print(completers_note, "|", per_protocol_note)

quick = {"settings": settings, "tests": False}  # no likelihood-ratio tests: no ML refits
fits = {
    "trajectory · depth": trajectory,
    "trajectory · twitch": api.fit("trajectory", data, OUTCOME, "twitch", **quick),
    "change · depth": api.fit("change", data, OUTCOME, "depth", **quick),
    "session-level twitch": api.fit("session_twitch", data, OUTCOME, **quick),
    "joint": api.fit("joint", data, OUTCOME, **quick),
    "acute/chronic · depth": api.fit("subgroup", data, OUTCOME, "depth", **quick),
    "completers · depth": api.fit("trajectory", completers, OUTCOME, "depth", **quick),
    "per protocol · depth": api.fit("trajectory", per_protocol, OUTCOME, "depth", **quick),
}
explore.compare(fits, "diagnostics")[
    ["model", "status", "n_obs", "n_patients", "random_effects", "converged", "boundary",
     "warnings"]
]

# %% [markdown]
# Differences in slope (per week) across the analyses: the depth difference should be much
# the same in the full data, the completers and the per-protocol population; the twitch
# difference shrinks once depth is in the model (notebook 04 explains why).

# %%
slopes = explore.compare(fits, "contrasts", contains="difference in slope")
slopes[["model", "contrast", "estimate", "std_err", "df", "ci_low", "ci_high", "p_value"]]

# %%
plots.forest(
    slopes.assign(label=slopes["model"] + ": " + slopes["contrast"]),
    label="label",
    xlabel=f"Difference in slope ({OUTCOME.upper()} points per week)",
)

# %% [markdown]
# The change-from-baseline model reads the same question as a difference at each visit:

# %%
fits["change · depth"].contrasts

# %% [markdown]
# ## Change one choice (1): the time axis
#
# Sessions completed before the assessment instead of weeks since baseline. The slope is now
# per session, so the numbers are on another scale; the direction and the evidence (p, CI
# relative to its width) are what to compare.

# %%
by_sessions = api.fit("trajectory", data, OUTCOME, "depth", **quick, time_axis="sessions")
explore.compare({"weeks": trajectory, "sessions": by_sessions}, "contrasts",
                contains="difference in slope")

# %% [markdown]
# ## Change one choice (2): random slope on or off
#
# Without a random slope every patient is assumed to improve at the same rate (apart from
# their group). Typically the estimate barely moves but its standard error shrinks: the
# model forgets that patients differ in how fast they improve and becomes over-confident
# about the difference in slopes.

# %%
no_slope = api.fit("trajectory", data, OUTCOME, "depth", **quick, random_slope=False)
explore.compare({"random slope": trajectory, "intercept only": no_slope}, "contrasts",
                contains="difference in slope")

# %% [markdown]
# Is the random slope needed? A REML likelihood-ratio test of its variance (and correlation),
# with the boundary-corrected reference distribution.

# %%
if trajectory.fit is not None and trajectory.fit.random_slope is not None:
    test = explore.random_slope_test(trajectory.fit, no_slope.fit)
else:
    test = "the random slope was dropped (boundary fit): see the diagnostics"
test

# %% [markdown]
# ## Change one choice (3): the twitch threshold
#
# A patient is in the twitch group when a twitch was elicited in at least `twitch_share` of
# their sessions (0.5 by default). A threshold is part of the analysis data set, so changing
# it means rebuilding the study with a changed configuration.

# %%
lower = dataclasses.replace(
    study.config, thresholds=dataclasses.replace(study.config.thresholds, twitch_share=0.3)
)
study_lower = api.load_study(lower)
pd.concat(
    {
        f"twitch_share ≥ {study.config.thresholds.twitch_share:g}":
            explore.crosstab(explore.patient_level(study.data), "depth", "twitch"),
        f"twitch_share ≥ {lower.thresholds.twitch_share:g}":
            explore.crosstab(explore.patient_level(study_lower.data), "depth", "twitch"),
    },
    axis=1,
)

# %%
twitch_fits = {
    f"twitch_share ≥ {study.config.thresholds.twitch_share:g}": fits["trajectory · twitch"],
    f"twitch_share ≥ {lower.thresholds.twitch_share:g}": api.fit(
        "trajectory", study_lower.data, OUTCOME, "twitch", **quick
    ),
}
explore.compare(twitch_fits, "contrasts", contains="difference in slope")

# %% [markdown]
# ## Diagnostics and residuals of the primary model
#
# Convergence, the optimiser that won, whether the fit is on the boundary, every warning
# raised, and residual summaries; then every optimiser route tried with its REML criterion
# (lower is better).

# %%
trajectory.diagnostics.T

# %%
trajectory.fit.optimizer_trials

# %% [markdown]
# Residuals against fitted values should scatter evenly around zero (diagonal stripes come
# from scores recorded as whole numbers); in the Q–Q plots the points should follow the line. The random
# intercepts and slopes are the patients' estimated deviations from their group's line.

# %%
plots.residual_plots(trajectory.fit)

# %%
plots.residual_plots(no_slope.fit)
