"""The maintainers' tool that trains, evaluates, measures and publishes the zoo's backbones.

It is run from a checkout (``python -m training COMMAND``), as timm's and torchvision's training
scripts are, and is not part of the ``rr-zoo`` wheel (pyproject installs ``rr_zoo`` only).
Sub-packages, by what the code is for:

- ``method``: the relational model, its loss and one training step (what benchmarks and estimates time).
- ``pretrain``: the resumable loop, view generation, recipes, checkpoints, ``--init``.
- ``runtime``: precision, ``torch.compile``, the allocator, this machine's description.
- ``data``: datasets decoded once into uint8 tensors.
- ``evaluate``: the paper's protocols, features, the supervised bound.
- ``release``: export folders and model cards, publishing, provenance.
- ``studies``: the K sweep and accuracy-vs-views curves.
- ``bench``: the comparison with the original repository and the dry-run estimate.

``cli`` registers the commands (``flags`` builds their options from dataclass fields) and
``help_choices`` lets every ``--help`` answer without importing torch.
"""
