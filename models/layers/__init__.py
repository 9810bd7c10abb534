"""Layers shared by the zoo's models, each written once."""
