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
# # 01 · Data quality: what went into the analysis?
#
# **Question.** Before looking at any effect: which rows were read, which were set aside
# (quarantined) and why, how complete are the pain and disability scores at each visit and in
# each group, who stopped coming, and what do NRS, VAS and ODI look like at baseline?
#
# Everything here comes from the `pipeline` package (`pipeline.api`, `pipeline.explore.tables`,
# `pipeline.explore.plots`); the notebook only calls it. To look at another clinic's data,
# change `CONFIG` below to that analysis file (relative to this folder) and run all cells.
# No patient identifier is shown.

# %%
CONFIG = "../analysis.toml"

# %%
# %matplotlib inline
from pipeline import api
from pipeline.explore import tables as explore
from pipeline.validate import quality
from pipeline.describe import summaries
from pipeline.explore import plots

study = api.load_study(CONFIG)
data = study.data

# %% [markdown]
# ## Rows read, kept and quarantined
#
# Every row of every file is either kept (valid) or quarantined with the rule it broke;
# nothing is dropped silently, so `raw_rows = processed_rows + quarantined_rows`.

# %%
study.validation.accounting

# %% [markdown]
# The same per source file, as `outcomes validate` prints it: the kind of file, its encoding,
# lines read, valid, quarantined and not used, and the SHA-256 that identifies the exact file.

# %%
files, file_reasons = quality.file_summary(study.raw, study.validation, top=50)
files

# %% [markdown]
# Why rows were quarantined: one line per table and rule, with the number of rows (a row can
# break more than one rule). The cell values themselves are not shown.

# %%
summaries.quarantine_reasons(study.validation.failures, top=50)

# %% [markdown]
# ## What the analysis rests on
#
# The analysis data set has one row per valid assessment; patient-level facts (site,
# chronicity, needling depth and twitch group) are repeated on each row.

# %%
explore.overview(data, study.sessions, study.patients)

# %%
patients = explore.patient_level(data)
explore.crosstab(patients, "site", "chronicity")

# %% [markdown]
# How the ODI was obtained, per clinic: from the ten section answers (`items`), from a
# recorded total only (`total`), or not at all (`(missing)`: more unanswered sections than
# the configured policy allows, or no ODI recorded). A clinic that records only totals
# cannot contribute section-level checks.

# %%
explore.crosstab(data, "site", "odi_source")

# %% [markdown]
# ## Missing scores by visit and group
#
# For each visit: patients of the group, how many were assessed, and how many have a value.
# A value is missing because the visit was not assessed (missed visit or dropout) or because
# the assessment gave no score (`unscored`, e.g. ODI with too many unanswered sections, VAS
# not recorded).

# %%
missing_depth = explore.missingness_by_visit(data, "depth")
missing_depth.round(1)

# %%
plots.missingness(missing_depth)

# %%
plots.missingness(explore.missingness_by_visit(data, "twitch"))

# %% [markdown]
# ## Dropout
#
# *Retained*: still assessed at this visit or later. *Missed*: no assessment at this visit but
# one later. *Last seen*: the patient's last valid assessment was at this visit (at the final
# visit: the completers). The statistical analysis plan asks for this pattern by group.

# %%
dropout = explore.dropout_pattern(data, "depth")
dropout.round(1)

# %%
plots.retention(dropout)

# %% [markdown]
# Did the patients who stopped coming differ from those who stayed? Below, the mean pain
# score at the last visit before they left, against the patients who came back. If those who
# leave had more pain, a summary of completers only looks too good; the mixed models use
# every observed value and stay valid when dropout depends on what was observed (missing at
# random).

# %%
explore.dropout_by_value(data, "nrs").round(2)

# %% [markdown]
# ## Baseline scores
#
# Distribution of each instrument at the baseline visit, by needling depth. Groups that start
# at different levels need a baseline adjustment; both models of the plan have one (the
# trajectory model's intercept, the change model's baseline covariate).

# %%
explore.baseline_summary(data, "depth").round(1)

# %%
plots.baseline_distributions(data, "depth")

# %%
plots.baseline_distributions(data, "chronicity")
