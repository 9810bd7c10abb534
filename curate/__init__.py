"""Dataset curation: ingest every common try-on layout into one manifest, dedupe, filter, build triplets
and training arrays. Stages talk only through files (see docs/ARCHITECTURE.md)."""
