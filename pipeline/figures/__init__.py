"""Figures shared by the report and the notebooks.

The pieces every figure is drawn with (:mod:`.panels`) and their shared look (:mod:`.style`).
"""
