"""timm registration, generated from the manifest.

Importing this module registers, for every architecture, a timm model
``<arch>_rr`` whose pretrained tags are the manifest entries (``resnet32_rr.cifar100``:
the entry's default release) and every release (``resnet32_rr.cifar10_jpeg_e30_k4``),
and for every entry an alias model ``rr_<arch>_<dataset>`` with its default release's cfg.
``default_cfgs`` is generated here from the manifest; nothing is written twice.

Pretrained loading goes through timm's builder (``build_model_with_cfg``): timm
adapts the first convolution to another ``in_chans`` and loads the state dict.
Before timm sees anything, the weight file is resolved and verified here (manifest
entry, export folder, Hub repo; a file the user names against ``sha256=`` or
whatever records its hash) and read as safetensors; :class:`StrictFilter` then
loads every tensor of it or fails naming the keys (timm alone would drop a
classifier whose ``num_classes`` differs from the cfg's and re-initialise it).
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model, resolve_pretrained_cfg
from torch import nn

from rr_zoo.errors import CheckpointFormatError, UnpublishedWeightsError
from rr_zoo.manifest import ZooEntry, load_manifest
from rr_zoo.models import ARCHITECTURES, get_architecture
from rr_zoo.models.base import freeze_batchnorm
from rr_zoo.timm_cfg import pretrained_cfg
from rr_zoo.weights import (
    load_safetensors,
    verified_entry_file,
    verified_export_file,
    verified_hub_export_file,
    verified_user_file,
)

_MANIFEST = load_manifest()  # registration; weight lookups re-read load_manifest()


def _entries() -> list[ZooEntry]:
    # published entries first, so an architecture's default tag has weights when any does
    return sorted(_MANIFEST.entries.values(), key=lambda e: (not e.published, e.name))


# per architecture: entry tags first (an entry's tag loads its default release), then one tag per release
default_cfgs = generate_default_cfgs({
    **{e.timm_name: pretrained_cfg(e) for e in _entries()},
    **{e.release_name(tag): pretrained_cfg(e.with_release(tag)) for e in _entries() for tag in e.releases},
    **{e.name: pretrained_cfg(e) for e in _entries()},
})


def _entry_for(cfg: dict[str, Any]) -> ZooEntry | None:
    arch, tag = cfg.get("architecture"), cfg.get("tag")
    name = f"{arch}.{tag}" if tag else arch
    try:
        return load_manifest().get(name) if name else None
    except KeyError:
        return None


def checkpoint_filter_fn(state_dict: dict[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
    """timm ``filter_fn``: backbone tensors of a state dict, whatever wrapped them.

    Accepts a plain backbone state dict, an original-repository or training checkpoint
    dict (``{"backbone": ...}``), and DataParallel/DDP (``module.``) or
    ``RelationalModel`` (``backbone.``) prefixes; relation-head tensors are dropped.
    """
    if isinstance(state_dict.get("backbone"), dict):
        state_dict = state_dict["backbone"]
    out = {}
    for key, value in state_dict.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        if key.startswith(("relation.", "head.")):
            continue
        out[key] = value
    return out


def verified_weights(cfg: dict[str, Any], sha256: str | None = None, cache_dir: str | None = None) -> Path | None:
    """The verified local weight file a resolved pretrained cfg points at.

    Sources, in timm's order: ``hf-hub:`` names and ``local-dir:`` folders (verified
    against the export's ``config.json``), an explicit ``file`` (a file the user names:
    :func:`~rr_zoo.weights.verified_user_file` checks ``sha256``, its folder's
    ``config.json`` or the manifest when any records a hash, and loads a plain
    safetensors file as it is), the entry's bundled copy or Hub file at the manifest's
    pinned revision, any other ``hf_hub_id`` holding an export folder. A ``state_dict``
    given in memory is not a file and is returned as None (nothing to verify).

    Raises:
        UnpublishedWeightsError: an entry without weights and no file given.
        WeightsHashError: a file that differs from its recorded or pinned hash, or is not safetensors.
    """
    source, file, hub_id = cfg.get("source") or "", cfg.get("file"), cfg.get("hf_hub_id")
    if cfg.get("state_dict") is not None and source not in ("hf-hub", "local-dir"):
        return None
    if source == "hf-hub":
        return verified_hub_export_file(hub_id, "backbone", cache_dir)
    if source == "local-dir":
        return verified_export_file(file, "backbone")
    entry = _entry_for(cfg)
    if file is not None:
        return verified_user_file(file, "backbone", sha256, entry)
    if entry is not None:
        return verified_entry_file(entry, "backbone", cache_dir=cache_dir)
    if hub_id:
        return verified_hub_export_file(hub_id, "backbone", cache_dir)
    raise UnpublishedWeightsError(
        f"{cfg.get('architecture')!r} has no zoo entry or weight file; pick a tag (e.g. "
        f"{cfg.get('architecture')}.cifar10) or pass pretrained_cfg_overlay=dict(file=PATH)"
    )


def _listing(keys: set[str] | list[str], limit: int = 6) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


class StrictFilter:
    """timm ``filter_fn`` that loads every tensor of the weights or fails naming the keys.

    After :func:`checkpoint_filter_fn` (wrappers and relation-head tensors removed), the
    state dict must fit the model exactly, except that a model built with a classifier
    (``num_classes > 0``) may take backbone-only weights: its new ``fc`` keeps the
    model's own initialisation, and only because the weights hold no ``fc``. A classifier
    in the weights is loaded when ``num_classes`` matches it; any other difference
    (a classifier the model lacks or sizes differently, keys missing or unexpected,
    shapes) is a :class:`CheckpointFormatError` that names the keys and the fix. The
    first convolution's input channels are left to timm, which adapts them for
    ``in_chans``.

    Attributes:
        source: What the weights are, for error messages (a path).
        variant: The model name asked for.
        file_classes: Classes of the classifier found in the weights (0: none), set when filtering.
    """

    def __init__(self, source: str, variant: str, classifier: str = "fc", first_conv: str | None = None):
        self.source, self.variant, self.classifier, self.first_conv = source, variant, classifier, first_conv
        self.file_classes = 0

    def __call__(self, state_dict: dict[str, Any], model: nn.Module) -> dict[str, torch.Tensor]:
        """Check ``state_dict`` against ``model``; return it with the new classifier's own tensors added."""
        state = checkpoint_filter_fn(state_dict, model)
        own = model.state_dict()
        head_keys = {f"{self.classifier}.weight", f"{self.classifier}.bias"}
        file_head = head_keys & set(state)
        num_classes = int(getattr(model, "num_classes", 0))
        where = f"the weights {self.source}"
        if file_head:
            weight = state.get(f"{self.classifier}.weight")
            self.file_classes = int(weight.shape[0]) if weight is not None and weight.ndim == 2 else -1
            if self.file_classes != num_classes:
                raise CheckpointFormatError(
                    f"{where} hold a {self.file_classes}-class classifier ({_listing(file_head)}) and "
                    f"{self.variant!r} was built with num_classes={num_classes}: pass num_classes={self.file_classes} "
                    "to load it whole (then model.reset_classifier(N) for another head, or reset_classifier(0) for "
                    "features only), or load a file without the head.")
        unexpected = set(state) - set(own)
        missing = set(own) - set(state) - (set() if file_head else head_keys)
        first = f"{self.first_conv}.weight" if self.first_conv else None
        shapes = [k for k in set(state) & set(own) if state[k].shape != own[k].shape
                  and not (k == first and state[k].ndim == 4 and state[k].shape[0] == own[k].shape[0]
                           and state[k].shape[2:] == own[k].shape[2:])]
        problems = []
        if unexpected:
            problems.append(f"{len(unexpected)} key(s) the model has no place for ({_listing(unexpected)})")
        if missing:
            problems.append(f"{len(missing)} key(s) of the model missing from the weights ({_listing(missing)})")
        if shapes:
            problems.append("shape differences (" + ", ".join(
                f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in sorted(shapes)[:4]) + ")")
        if problems:
            arch = self.variant.split(".")[0]
            raise CheckpointFormatError(
                f"{where} do not fit {self.variant!r}: " + "; ".join(problems)
                + f". They are weights of another architecture, or not a {arch} backbone; pick the zoo entry of "
                "their architecture (`python -m rr_zoo list`), or the in_chans they were trained with.")
        for key in (set(own) - set(state)):  # only the new classifier, which the weights do not hold
            state[key] = own[key]
        return state


def freeze(model: nn.Module) -> nn.Module:
    """A frozen feature extractor: BatchNorm -> ``FrozenBatchNorm2d``, ``requires_grad=False``, eval mode.

    (timm's ``freeze_batch_norm_2d`` idea; rr_zoo's :class:`~rr_zoo.models.base.FrozenBatchNorm2d`
    keeps the state-dict keys and gives bit-identical features to the eval-mode model.)

    ``model.train()`` cannot change a frozen model's statistics afterwards. A
    classifier ``fc`` with parameters (``num_classes > 0``) stays trainable.
    """
    model = freeze_batchnorm(model)
    head = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_params = {id(p) for p in head.parameters()} if head is not None and getattr(model, "num_classes", 0) else set()
    for param in model.parameters():
        param.requires_grad_(id(param) in head_params)
    return model.eval()


def _create(variant: str, arch: str, pretrained: bool = False, *, trainable: bool = False,
            sha256: str | None = None, **kwargs: Any) -> nn.Module:
    builder = get_architecture(arch).builder
    if kwargs.get("features_only"):
        # default: every stage timm knows of (timm assumes five otherwise)
        n_stages = len(builder(in_chans=kwargs.get("in_chans", 3), device="meta").feature_info)
        kwargs.setdefault("out_indices", tuple(range(n_stages)))
    if not pretrained:
        return build_model_with_cfg(builder, variant, pretrained=False,
                                    pretrained_filter_fn=checkpoint_filter_fn, **kwargs)
    cfg = resolve_pretrained_cfg(variant, kwargs.pop("pretrained_cfg", None),
                                 kwargs.pop("pretrained_cfg_overlay", None)).to_dict()
    path = verified_weights(cfg, sha256=sha256, cache_dir=kwargs.get("cache_dir"))
    if path is not None:  # read here, safetensors only (nothing is unpickled); timm gets the tensors
        cfg.update(state_dict=load_safetensors(path), file=str(path), source="")
    loader = StrictFilter(str(path) if path is not None else "(state_dict)", variant,
                          cfg.get("classifier") or "fc", cfg.get("first_conv"))
    # timm drops a classifier whenever num_classes differs from the cfg's: make them agree, so that every tensor
    # of the weights reaches StrictFilter, which loads it or says why not
    cfg["num_classes"] = 0 if kwargs.get("features_only") else kwargs.setdefault("num_classes", cfg["num_classes"])
    try:
        model = build_model_with_cfg(builder, variant, pretrained=True, pretrained_cfg=cfg,
                                     pretrained_filter_fn=loader, **kwargs)
    except RuntimeError as exc:  # timm's first-conv adaptation or load_state_dict
        raise CheckpointFormatError(
            f"the weights {loader.source} do not fit {variant!r} with the given arguments: {exc}") from exc
    finally:
        cfg["state_dict"] = None
    model.pretrained_cfg.update(state_dict=None)  # the cfg describes the weights: their classes, not a live copy
    if "num_classes" in model.pretrained_cfg:
        model.pretrained_cfg["num_classes"] = max(loader.file_classes, 0)
    return model if trainable else freeze(model)


def _status_doc(entry: ZooEntry) -> str:
    if entry.published:
        others = [entry.release_name(t) for t in entry.releases if t != entry.default_release]
        return (f"Published: pretrained=True loads its default release, {entry.release_name(entry.default_release)} "
                f"({entry.release.summary()}), sha256-verified."
                + (f" Other releases: {', '.join(others)}." if others else ""))
    return ("Unpublished: no weights yet, pretrained=True raises UnpublishedWeightsError (train it with "
            "`python -m training pretrain`, or pass pretrained_cfg_overlay=dict(file=...)).")


_ENTRY_DOC = """{description}

{status} timm name ``{timm_name}``; input {input_size}, mean {mean}, std {std}.

Args:
    pretrained: Load the entry's weights (sha256-verified) and return a frozen feature
        extractor (eval mode, FrozenBatchNorm2d, ``requires_grad=False``).
    trainable: With ``pretrained=True``, return an ordinary trainable model instead.
    sha256: Pin a weight file given through ``pretrained_cfg_overlay`` to this digest.
    **kwargs: timm model kwargs: ``num_classes`` (0: pooled {num_features}-d features; n > 0 adds a linear
        head, trainable even when the backbone is frozen), ``in_chans``, ``global_pool``, ``drop_rate``,
        ``drop_path_rate``, ``drop_block_rate``, ``bn_momentum``, ``bn_eps``, ``features_only``, ``device``,
        ``dtype``, ``pretrained_cfg_overlay=dict(file=PATH)``.
"""

_SIGNATURE = inspect.Signature([
    inspect.Parameter("pretrained", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=False, annotation=bool),
    inspect.Parameter("trainable", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
    inspect.Parameter("sha256", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="str | None"),
    inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD, annotation=Any),
], return_annotation=nn.Module)


def _make_entrypoint(fn_name: str, arch: str, doc: str):
    def entrypoint(pretrained: bool = False, *, trainable: bool = False, sha256: str | None = None,
                   **kwargs: Any) -> nn.Module:
        return _create(fn_name, arch, pretrained=pretrained, trainable=trainable, sha256=sha256, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = fn_name
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = doc
    entrypoint.__signature__ = _SIGNATURE
    setattr(sys.modules[__name__], fn_name, entrypoint)
    return register_model(entrypoint)


for _arch in ARCHITECTURES:
    _make_entrypoint(f"{_arch}_rr", _arch,
                     f"{get_architecture(_arch).description}, relational-reasoning zoo architecture. "
                     f"Pick weights with a tag: timm.create_model('{_arch}_rr.<dataset>', pretrained=True) loads "
                     "that entry's default release, timm.create_model('<arch>_rr.<release tag>', pretrained=True) "
                     "one release (timm.list_pretrained('*_rr*') lists them).")
for _entry in _MANIFEST.entries.values():
    _make_entrypoint(_entry.name, _entry.architecture, _ENTRY_DOC.format(
        description=_entry.description, status=_status_doc(_entry), timm_name=_entry.timm_name,
        input_size=tuple(_entry.preprocessing["input_size"]), mean=tuple(_entry.preprocessing["mean"]),
        std=tuple(_entry.preprocessing["std"]), num_features=_entry.num_features))
