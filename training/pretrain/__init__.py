"""Pretraining: the resumable loop (``loop``), view generation (``augment``), recipes and run options
(``recipes``), checkpoints (``checkpoint``) and starting from given weights (``init``).

Nothing is imported here, so ``training.pretrain.recipes`` comes without torch (command-line help).
"""
