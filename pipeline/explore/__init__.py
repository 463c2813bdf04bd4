"""Exploration tables (:mod:`.tables`) and figures (:mod:`.plots`) for the notebooks."""
