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
# # 02 · Trajectories: how do pain and disability change over the course of care?
#
# **Question.** How do NRS, VAS and ODI evolve for individual patients and on average, with
# superficial versus deep needling and with versus without a twitch response, in acute versus
# chronic patients and in each clinic? And how many sessions did patients receive?
#
# These are observed data, before any model: a difference between the curves is not yet an
# effect of the treatment (see 03 and 04). Change `CONFIG` to explore another analysis file.
# Individual lines are a random sample of patients, drawn without any identifier.

# %%
CONFIG = "../analysis.toml"

# %%
# %matplotlib inline
from pipeline import api
from pipeline.explore import tables as explore
from pipeline.explore import plots

study = api.load_study(CONFIG)
data = study.data
patients = explore.patient_level(data)

# %% [markdown]
# ## How many sessions did patients receive?
#
# Course of care per the clinic protocol: acute pain 1–3 sessions, chronic pain 4–8.

# %%
explore.crosstab(patients, "chronicity", "n_sessions")

# %%
plots.sessions_per_patient(patients, by="chronicity")

# %%
plots.sessions_per_patient(patients, by="depth")

# %% [markdown]
# ## Individual trajectories by needling depth
#
# Thin lines: individual patients (a random sample of at most 40 per panel); bold line: the
# mean of all patients of the panel at each visit, placed at the mean week of that visit.

# %%
plots.spaghetti(data, "nrs", "depth")

# %%
plots.spaghetti(data, "vas_mm", "depth")

# %%
plots.spaghetti(data, "odi", "depth")

# %% [markdown]
# ## Individual trajectories by twitch response
#
# A patient is in the "twitch" group when a local twitch response was elicited in at least
# the configured share of their sessions (`[thresholds] twitch_share`).

# %%
plots.spaghetti(data, "nrs", "twitch")

# %% [markdown]
# ## Acute versus chronic
#
# The same panels split by chronicity (rows). Chronic patients start higher and have more
# sessions.

# %%
plots.spaghetti(data, "nrs", "depth", facet="chronicity")

# %%
plots.mean_trajectories(data, "nrs", "depth", facet="chronicity")

# %% [markdown]
# ## Per clinic
#
# Mean NRS with 95 % confidence intervals in each clinic. Clinics that differ in level only
# are handled by the site term of the models (SAP §4.5); clinics that differ in the gap
# between the groups would deserve a closer look.

# %%
plots.mean_trajectories(data, "nrs", "depth", facet="site")

# %%
plots.mean_trajectories(data, "odi", "depth", facet="site")

# %%
plots.mean_trajectories(data, "nrs", "twitch", facet="site")

# %% [markdown]
# ## Pain against the number of sessions completed
#
# The models can measure time in weeks since baseline or in sessions completed before the
# assessment (`[model] time_axis`). Here is what the second axis looks like.

# %%
plots.spaghetti(data, "nrs", "depth", time="sessions_completed")
