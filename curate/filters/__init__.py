"""`curate filter`: back/side views, lower-body-only products and extra garments, each with its evidence.

Modules: ``back_view``, ``lower_only``, ``extra_garments`` (pure decisions over arrays), ``body``
(shared geometry and colour), ``detectors`` (MediaPipe fallback), ``pipeline`` (one pair: load inputs,
choose evidence), ``command`` (the CLI and the manifest columns), ``evidence`` and ``thresholds``.
"""
