"""torch.hub entry points: one callable per zoo entry, generated from the manifest.

    torch.hub.load("<owner>/rr-zoo", "rr_conv4_cifar10")          # pretrained, frozen
    torch.hub.load(path, "rr_conv4_cifar10", source="local", pretrained=False)

Each callable is the timm entry point registered by ``rr_zoo`` (same docstring,
same weights, same output).
"""

dependencies = ["torch", "torchvision", "timm", "huggingface_hub", "safetensors"]

import functools as _functools  # noqa: E402

from rr_zoo import create_model as _create_model  # noqa: E402
from rr_zoo import get_entry as _get_entry  # noqa: E402
from rr_zoo import list_models as _list_models  # noqa: E402


def _hub_entry(name):
    @_functools.wraps(_create_model)
    def entry(*, pretrained=True, **kwargs):
        return _create_model(name, pretrained=pretrained, **kwargs)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = (f"{_get_entry(name).description}\n\n"
                     "Keyword args: pretrained=True (verified weights, frozen), trainable=False, "
                     "weights=PATH, num_classes=0. See rr_zoo.create_model.")
    return entry


for _name in _list_models():
    globals()[_name] = _hub_entry(_name)
