"""Evaluation: pure metric functions, metric objects, feature caching, FPS and the evaluation runner."""
