"""Leaderboards: tables, plots and sample grids rendered from run records (never recomputed)."""
