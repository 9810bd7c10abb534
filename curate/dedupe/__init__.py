"""`curate dedupe`: exact and colour-aware near duplicates (see core.py for the design)."""
