"""Speed benchmarks of the training code, run from the checkout root: ``python -m benchmarks.NAME``."""
