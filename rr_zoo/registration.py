"""When the zoo's models are registered with timm: as soon as both ``rr_zoo`` and ``timm`` are imported.

``import rr_zoo`` imports neither torch nor timm. If timm is imported already, :func:`register_with_timm`
registers the zoo at once (:mod:`rr_zoo.timm_models`); otherwise it registers it the moment timm's
package has finished importing, so ``import rr_zoo, timm`` and ``import timm, rr_zoo`` both end with
every entry known to ``timm.create_model``. Only the import of the top-level ``timm`` package is
watched, once; nothing else about importing changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType


def _register() -> None:
    from rr_zoo import timm_models  # noqa: F401  (registers every entry and architecture with timm)


class _RegisterAfterTimm(importlib.abc.Loader):
    """timm's own loader, followed by the zoo's registration."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self.loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # timm keeps its own loader afterwards
        self.loader.exec_module(module)
        _register()


class _TimmWatcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself: hands timm's spec back with a loader that registers the zoo after timm."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "timm":
            return None
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _TimmWatcher)]  # once
        for finder in sys.meta_path:
            spec = finder.find_spec(fullname, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _RegisterAfterTimm(spec.loader)
                return spec
        return None


def register_with_timm() -> None:
    """Register the zoo with timm now if timm is imported, else right after timm is imported."""
    if "timm" in sys.modules:
        _register()
    elif not any(isinstance(f, _TimmWatcher) for f in sys.meta_path):
        sys.meta_path.insert(0, _TimmWatcher())
