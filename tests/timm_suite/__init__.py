"""Run timm's own model tests (from timm's source distribution) against the rr_zoo models."""
