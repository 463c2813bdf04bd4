"""needling-outcomes: the dry-needling outcomes pipeline."""
