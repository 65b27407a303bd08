"""pytest conftest that runs timm's own ``tests/test_models.py`` on the rr_zoo models only.

Copied as ``conftest.py`` next to timm's test file by ``python -m tests.timm_suite``
(never into the project's own test run). It imports ``rr_zoo`` (registering the zoo),
makes timm's ``list_models`` / ``list_pretrained`` return rr models only (the
``module=`` filter of the forward-intermediates tests is pointed at rr_zoo's
registration module, which implements that API), and deselects the tests
written for one named timm model (they test timm, not us) and the tests listed in
``NOT_APPLICABLE`` with the reason (docs/timm.md, "timm compatibility", lists them).
"""

import timm
import timm.models._registry as _registry

import rr_zoo  # noqa: F401  (registers the zoo with timm)

RR_MODULE = "timm_models"  # timm keys a model's module by the last part of its __module__
_real_list_models = _registry.list_models

# test function name -> why it cannot apply to rr models
NOT_APPLICABLE: dict = {}


def _rr_list_models(filter="", module="", pretrained=False, exclude_filters="", name_matches_cfg=False,
                    include_tags=None):
    return _real_list_models(filter=filter, module=RR_MODULE, pretrained=pretrained,
                             exclude_filters=exclude_filters, name_matches_cfg=name_matches_cfg,
                             include_tags=include_tags)


def _rr_list_pretrained(filter="", exclude_filters=""):
    return _rr_list_models(filter=filter, pretrained=True, exclude_filters=exclude_filters, include_tags=True)


RR_MODELS = set(_real_list_models(module=RR_MODULE, include_tags=True)) | set(_real_list_models(module=RR_MODULE))
for _mod in (timm, timm.models, _registry):
    _mod.list_models = _rr_list_models
    _mod.list_pretrained = _rr_list_pretrained


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        name = getattr(item, "originalname", item.name)
        if params.get("model_name") in RR_MODELS and name not in NOT_APPLICABLE:
            keep.append(item)
        else:
            drop.append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)
