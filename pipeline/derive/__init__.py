"""Derivation: from valid canonical tables to scores and the analysis data set (:mod:`.dataset`)."""
