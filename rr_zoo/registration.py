"""When the zoo's models are registered with timm: as soon as both ``rr_zoo`` and ``timm`` are imported.

``import rr_zoo`` imports neither torch nor timm. If timm is imported already, :func:`register_with_timm`
registers the zoo at once (:mod:`rr_zoo.timm_models`); otherwise it registers it right after timm's
package has been imported, so ``import rr_zoo, timm`` and ``import timm, rr_zoo`` both end with every
entry known to ``timm.create_model``.

timm may also be imported first by one of rr_zoo's own modules (the backbones build on
``timm.layers``); the registration, which imports those modules, then waits until no rr_zoo module is
half-imported. To know that, the imports of rr_zoo's submodules are counted until the zoo is
registered. Only timm's top-level package and rr_zoo's submodules are watched; nothing else about
importing changes.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import threading
from types import ModuleType

_lock = threading.RLock()
_state = {"depth": 0, "pending": False, "done": False}  # rr_zoo imports in progress; timm waiting; registered


def _register() -> None:
    with _lock:
        if _state["done"]:
            return
        _state["done"], _state["pending"] = True, False
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Watcher)]
    from rr_zoo import timm_models  # noqa: F401  (registers every entry and architecture with timm)


class _Loader(importlib.abc.Loader):
    """The module's own loader, with the bookkeeping above around it."""

    def __init__(self, loader: importlib.abc.Loader, is_timm: bool) -> None:
        self.loader, self.is_timm = loader, is_timm

    def __getattr__(self, name: str):
        return getattr(self.loader, name)  # get_code (runpy), get_resource_reader, is_package, ...

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__.loader = module.__loader__ = self.loader  # the module keeps its own loader afterwards
        if self.is_timm:
            self.loader.exec_module(module)
            with _lock:
                now = _state["depth"] == 0
                _state["pending"] = not now
            if now:
                _register()
            return
        with _lock:
            _state["depth"] += 1
        try:
            self.loader.exec_module(module)
        finally:
            with _lock:
                _state["depth"] -= 1
                now = _state["depth"] == 0 and _state["pending"]
        if now:
            _register()


class _Watcher(importlib.abc.MetaPathFinder):
    """Finds nothing itself: hands back the specs of timm and of rr_zoo's submodules with a counting loader."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "timm" and not fullname.startswith("rr_zoo."):
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _Watcher) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _Loader(spec.loader, is_timm=fullname == "timm")
                return spec
        return None


def register_with_timm() -> None:
    """Register the zoo with timm now if timm is imported, else right after timm is imported."""
    if "timm" in sys.modules:
        _register()
        return
    with _lock:
        if not any(isinstance(f, _Watcher) for f in sys.meta_path):
            sys.meta_path.insert(0, _Watcher())
