"""Privacy of what the pipeline writes.

Pseudonyms and days since time zero in processed data (:mod:`.pseudonyms`); small-cell
suppression of published tables (:mod:`.suppression`).
"""
