"""Many clinics, one pooled answer, no patient row moved: share files and their pooling.

A clinic runs ``outcomes share`` and sends one JSON file (:mod:`.share` builds it,
:mod:`.schema` writes and checks it, :mod:`.spec` holds the model specification and its hash)
with only sums over at least ``min_patients_per_cell`` patients (:mod:`.disclosure`); the
coordinating centre runs ``outcomes pool`` (:mod:`.pool`, clinic effects in :mod:`.design`),
which fits the trajectory mixed model exactly as the all-rows fit would (the engine's
:mod:`pipeline.lmm.sufficient`) and, with ``--two-stage``, meta-analyses the clinics' own fits
(:mod:`.meta`); :mod:`.report` writes the tables and the pooled report, and :mod:`.run` holds
the two steps with their file I/O. The network coordinator's guide is docs/federation.md.
"""
