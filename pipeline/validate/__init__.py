"""Validation: every raw row kept as a typed row or quarantined with its reason.

:mod:`.study` validates the study, :mod:`.screen` clears columns that certainly pass their
checks, and :mod:`.quality` summarises the result per source file.
"""
