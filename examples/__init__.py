"""Examples run from the checkout root: ``python -m examples.make_figures``."""
