"""The data contracts.

pandera models for the raw tables (:mod:`.raw`); the analysis data set and the published output
tables follow the same pattern.
"""
