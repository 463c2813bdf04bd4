"""The sections of the report, one module each, in reading order (pure functions).

Each ``*_section`` function takes the run's published tables (and what else it needs, never a
file) and returns a :class:`~pipeline.report.html.Section`, or None when the run has not
produced the tables it needs.
"""
