"""``python -m rr_zoo.launch SCRIPT [ARGS...]``: run a timm script with the rr models registered.

timm's ``train.py``, ``validate.py`` and ``inference.py`` live in timm's git repository
(huggingface/pytorch-image-models), not in its wheel, and never import ``rr_zoo``,
so ``--model rr_conv4_cifar10`` is unknown to them. This launcher imports ``rr_zoo``
(registering the zoo with timm) and then runs the script as ``__main__`` with the
remaining arguments, exactly as ``python SCRIPT ARGS...`` would::

    python -m rr_zoo.launch pytorch-image-models/train.py --data-dir DATA --model rr_conv4_cifar10 \\
        --pretrained --num-classes 10 --model-kwargs trainable=True
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

USAGE = "usage: python -m rr_zoo.launch SCRIPT [ARGS...]   (e.g. timm's train.py from its git repository)"


def main(argv: list[str] | None = None) -> int:
    """Run ``argv[0]`` as ``__main__`` with ``argv[1:]`` after registering the zoo with timm."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE + "\n\n" + (__doc__ or "").split("\n\n", 1)[1])
        return 0 if argv else 2
    script = Path(argv[0])
    if not script.is_file():
        print(f"rr_zoo.launch: {script} is not a file; pass the path of timm's train.py (git clone "
              "https://github.com/huggingface/pytorch-image-models)", file=sys.stderr)
        return 2
    import rr_zoo  # noqa: F401  (registers the zoo with timm)

    sys.argv = [str(script), *argv[1:]]
    sys.path.insert(0, str(script.resolve().parent))
    runpy.run_path(str(script), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
