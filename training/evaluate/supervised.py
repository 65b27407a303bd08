"""The supervised upper bound: the same backbone trained with labels, saved as a checkpoint
that ``python -m training evaluate ... --weights CKPT`` reads like a pretraining one."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from training.data import get_dataset_spec
from training.evaluate.finetune import finetune_model
from training.evaluate.protocols import EvalSpec
from training.evaluate.source import load_backbone
from training.pretrain.checkpoint import TrainingCheckpoint
from training.run_folders import CHECKPOINT


def train_supervised(entry: str, dataset: str | None, epochs: int, out: str | Path, seed: int = 0,
                     data_root: str | None = None, max_train: int | None = None, device: str = "cpu",
                     lr: float = 1e-3, batch_size: int = 128, precision: str = "fp32") -> dict[str, Any]:
    """Train backbone + linear head from random init with cross-entropy (affine + cutout augmentation).

    Args:
        entry: Zoo entry (architecture, preprocessing).
        dataset: Labelled dataset (default: the entry's).
        epochs: Training epochs.
        out: Run folder; ``checkpoint.pt`` (pretrain format, ``recipe.loss = "supervised"``) is written there.
        seed: Seed of init, order and augmentation.
        data_root: Dataset folder.
        max_train: Cap on training images (quick runs).
        device: Training device.
        lr: Adam learning rate (backbone and head).
        batch_size: Images per step.
        precision: ``fp32``, or ``bf16`` autocast in channels-last layout.

    Returns:
        Summary with the test accuracy of the trained classifier and the checkpoint path.
    """
    backbone = load_backbone(entry, "random", seed=seed)
    dataset = dataset or backbone.entry.dataset
    spec = EvalSpec(dataset=dataset, out=str(out), data_root=data_root, seed=seed, epochs=epochs, lr=lr,
                    head_lr=lr, batch_size=batch_size, max_train=max_train, device=device, precision=precision)
    t0 = time.perf_counter()
    result = finetune_model(backbone, spec)
    model = result.pop("model").cpu()
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    path = Path(out) / CHECKPOINT
    TrainingCheckpoint(
        entry=backbone.entry.name, architecture=backbone.entry.architecture, dataset=dataset,
        in_chans=get_dataset_spec(dataset).channels,
        recipe={"loss": "supervised", "epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed,
                "dataset": dataset, "augmentation": "affine+cutout", "precision": precision},
        backbone=state, relation={}, epoch=epochs,
    ).save(path)
    return {"test_accuracy": result["value"], "n_train": result["n_train"], "checkpoint": str(path),
            "seconds": round(time.perf_counter() - t0, 1)}
