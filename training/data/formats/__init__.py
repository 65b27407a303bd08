"""One reader per on-disk format. A reader is a small frozen dataclass holding where the files
are (relative to the data root) and called as ``reader(spec, root, split) -> ImageData``; a new
dataset in a known format reuses one, a new format adds a module here.

- ``npz_pack``: the offline pack's ``.npz`` files (uint8 arrays, or JPEG bytes + offsets)
- ``cifar_pickle``: torchvision's CIFAR-10/100 python pickles
- ``stl10_binary``: STL-10's column-major ``.bin`` files
- ``image_folder``: ``<split>/<class>/<image>`` trees (tiny-ImageNet, SlimageNet64)
- ``idx``: MNIST-style idx files, raw or gzipped (Fashion-MNIST)
- ``user_folder``: a user's own folder of images (``folder:PATH``; any PIL format, classes optional)
"""
