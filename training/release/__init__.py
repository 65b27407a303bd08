"""Releasing weights: export folders (``export``) with their model cards (``model_card``), publishing them
(``publish``) and the provenance every release records (``provenance``).
"""
