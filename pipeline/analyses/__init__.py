"""The analyses of the statistical analysis plan.

Plans (:mod:`.plans`), running every plan (:mod:`.run`), fits kept between runs
(:mod:`.cache`) and simulation checks of the inference (:mod:`.stat_validation`).
"""
