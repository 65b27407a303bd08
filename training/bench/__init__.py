"""Measurements of the training code: the comparison with the original repository (``original``) and
the dry-run estimate of a recipe's wall time (``estimate``).
"""
