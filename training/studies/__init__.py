"""Studies beyond one run: linear accuracy vs views per image (``ksweep``) and online kNN accuracy vs
views seen (``curves``).
"""
