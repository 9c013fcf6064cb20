"""Evaluation: surface metrics, the cosine-ranking diagnostic, reports."""
