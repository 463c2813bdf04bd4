"""Descriptive statistics: responders, safety, Table 1, patient flow, summaries (pure functions)."""
